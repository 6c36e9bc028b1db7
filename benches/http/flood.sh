#!/usr/bin/env bash
# A flood of bad tokens from one address against a good client's reads: wrk reads one
# block with its secrets (a good token, 8 connections) alone, then while a second wrk
# sends made-up tokens (a new random token id each request) from the same address: 4
# connections, each waiting FLOOD_DELAY_MS (1) between requests, so about 2,800 a second here,
# near the last security review's flood (about 4,000 a second); DURATION=36s sends about
# 100,000. FLOOD_DELAY_MS=0 floods as fast as the machine allows. Reports the good client's requests/s and p99 both times, the flood's requests
# and how they were answered (429 once the address's failures are used up), and the
# server's RSS before and after. FLOOD_ARGS="--auth-failures-burst 0" turns the limit off
# for comparison.
#
# Run: benches/http/flood.sh [BINARY]   (DURATION=25s STORE=sqlite|postgres FLOOD_DELAY_MS=1)
# Needs: wrk (Debian package), a release build (built here unless BINARY is given).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/http/common.sh
source benches/http/common.sh
DURATION=${DURATION:-25s}
STORE=${STORE:-sqlite}
PORT=${PORT:-4398}
PG_ADMIN=${BLOCKYARD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if [ $# -gt 0 ]; then
  BIN=$(realpath "$1")
else
  cargo build --release --quiet
  BIN=$PWD/target/release/blockyard
fi
with_cleanup

export BLOCKYARD_DATA_DIR=$work/data
if [ "$STORE" = postgres ]; then
  pg_db=blockyard_flood_$$
  psql "$PG_ADMIN" -qc "CREATE DATABASE $pg_db"
  export BLOCKYARD_DATABASE_URL=${PG_ADMIN%/*}/$pg_db
fi
"$BIN" init > /dev/null 2>&1
echo flood-bench-secret | "$BIN" block create app --type secret --password-stdin > /dev/null
token=$("$BIN" token create bench --scope admin)
# shellcheck disable=SC2086
"$BIN" server --port "$PORT" --quiet ${FLOOD_ARGS:-} > "$work/server.log" 2>&1 &
server_pid=$!
until curl -fs "http://127.0.0.1:$PORT/health" > /dev/null; do sleep 0.1; done
url="http://127.0.0.1:$PORT/api/v1/blocks/app?include_secrets=true"

rss() { awk '/^VmRSS/ {print $2 " kB"}' "/proc/$server_pid/status"; }
good() {
  wrk -t1 -c8 -d"$DURATION" --latency -H "Authorization: Bearer $token" "$url" > "$work/$1.txt"
  echo "  good client: $(awk '/Requests\/sec/ {print $2}' "$work/$1.txt") requests/s, p50 $(awk '$1 == "50%" {print $2}' "$work/$1.txt"), p99 $(awk '$1 == "99%" {print $2}' "$work/$1.txt"), non-2xx $(awk '/Non-2xx/ {print $NF}' "$work/$1.txt" | grep . || echo 0)"
}
{ echo "FLOOD_DELAY = ${FLOOD_DELAY_MS:-1}"; cat; } > "$work/flood.lua" <<'EOF'
-- A made-up token per request: a random 16-hex id and a random secret.
math.randomseed(os.time())
request = function()
  local id = string.format("%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
  return wrk.format("GET", "/api/v1/blocks/app", {["Authorization"] = "Bearer byd_" .. id .. "_made-up"})
end
delay = function() return FLOOD_DELAY end
done = function(summary)
  io.write(string.format("  flood: %d requests\n", summary.requests))
end
EOF


echo "server RSS at start: $(rss)"
good warm > /dev/null
rss_before=$(rss)
for run in $(seq 1 "${RUNS:-1}"); do
  echo "run $run, without a flood:"
  good alone
  p99_ms "$work/alone.txt" >> "$work/alone.p99"
  echo "run $run, with a flood of made-up tokens from the same address (4 connections, ${FLOOD_DELAY_MS:-1} ms between requests):"
  wrk -t1 -c4 -d"$DURATION" -s "$work/flood.lua" "http://127.0.0.1:$PORT/" > "$work/flood.txt" &
  flood_pid=$!
  good flooded
  wait "$flood_pid"
  p99_ms "$work/flooded.txt" >> "$work/flooded.p99"
  grep -E "flood:" "$work/flood.txt" | sed 's/^ */  /'
done
echo "how the server answered the floods (its /metrics):"
curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT/metrics" |
  grep -E '^blockyard_auth_failures_total\{reason="(invalid|rate_limited)"' | sed 's/^/  /'
alone=$(median < "$work/alone.p99")
flooded=$(median < "$work/flooded.p99")
echo "good client's median p99: ${alone} ms alone, ${flooded} ms under the flood ($(awk -v a="$alone" -v f="$flooded" 'BEGIN {printf "%+.0f%%", (f / a - 1) * 100}'))"
echo "server RSS: $rss_before before the floods, $(rss) after (peak $(awk '/^VmHWM/ {print $2 " kB"}' "/proc/$server_pid/status"))"
