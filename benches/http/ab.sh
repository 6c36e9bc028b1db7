#!/usr/bin/env bash
# Two builds side by side on the read benchmark (GET /api/v1/blocks/<name>?include_secrets=true,
# every read audited): each build serves its own copy of the same store (1,000 blocks) at the
# same time, and wrk measures them in turn, A B A B ..., so the drift of a shared machine falls
# on both alike. Prints each run and the medians (requests/s, p99) with B's difference from A.
#
# Run: benches/http/ab.sh BINARY_A BINARY_B   (STORE=postgres|sqlite RUNS=5 DURATION=10s
#                                              CONNECTIONS=64 BLOCKS=1000)
# E.g. the last landed build against this one, for what a change costs on the hot path.
# Needs: wrk (Debian package), PostgreSQL for STORE=postgres (BLOCKYARD_TEST_PG_URL).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/http/common.sh
source benches/http/common.sh
[ $# -eq 2 ] || { echo "usage: $0 BINARY_A BINARY_B" >&2; exit 2; }
STORE=${STORE:-postgres}
RUNS=${RUNS:-5}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
BLOCKS=${BLOCKS:-1000}
PG_ADMIN=${BLOCKYARD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
work=$(mktemp -d)
pids=()
dbs=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; done
  for db in "${dbs[@]}"; do psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# start LABEL BINARY PORT: a store of BLOCKS blocks and a server on it; sets TOKEN_<LABEL>.
start() {
  local label=$1 bin=$2 port=$3
  export BLOCKYARD_DATA_DIR=$work/$label
  if [ "$STORE" = postgres ]; then
    local db=blockyard_ab_${label,,}_$$
    psql "$PG_ADMIN" -qc "CREATE DATABASE $db"
    dbs+=("$db")
    export BLOCKYARD_DATABASE_URL=${PG_ADMIN%/*}/$db
  else
    export BLOCKYARD_DATABASE_URL=$work/$label/blockyard.db
  fi
  "$bin" init > /dev/null 2>&1
  for i in $(seq 1 "$BLOCKS"); do
    printf '  - {name: crdb-%d, type: sqlalchemy-connector, data: {connection_info: {driver: cockroachdb+psycopg2, database: sage, username: databot, host: localhost, port: 26257, password: {from_env: BENCH_PW}}}}\n' "$i"
  done | { echo "blocks:"; cat; } > "$work/$label.yaml"
  BENCH_PW=pw-bench "$bin" apply -f "$work/$label.yaml" -o json > /dev/null
  printf -v "TOKEN_$label" "%s" "$("$bin" token create bench --scope blocks:read-secrets 2>/dev/null)"
  "$bin" server --port "$port" --quiet 2> "$work/$label.log" &
  pids+=($!)
  until curl -fs "http://127.0.0.1:$port/health" > /dev/null; do sleep 0.1; done
}

# measure LABEL PORT: one wrk run; appends "requests/s p99-ms" to $work/LABEL.txt.
measure() {
  local label=$1 port=$2 token_var="TOKEN_$1"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer ${!token_var}" \
    "http://127.0.0.1:$port/api/v1/blocks/crdb-$((BLOCKS / 2))?include_secrets=true" > "$work/wrk.txt"
  local rps p99
  rps=$(rps "$work/wrk.txt")
  p99=$(p99_ms "$work/wrk.txt")
  echo "  $label: $rps requests/s, p99 $p99 ms$(grep -q Non-2xx "$work/wrk.txt" && echo ' (ERRORS)')"
  echo "$rps $p99" >> "$work/$label.txt"
}


start A "$(realpath "$1")" 4396
start B "$(realpath "$2")" 4397
for run in $(seq 1 "$RUNS"); do
  echo "run $run ($STORE, $CONNECTIONS connections, $DURATION):"
  measure A 4396
  measure B 4397
done
a=$(cut -d' ' -f1 "$work/A.txt" | median); b=$(cut -d' ' -f1 "$work/B.txt" | median)
ap=$(cut -d' ' -f2 "$work/A.txt" | median); bp=$(cut -d' ' -f2 "$work/B.txt" | median)
echo "median of $RUNS: A $a requests/s (p99 $ap ms), B $b requests/s (p99 $bp ms);" \
  "B/A $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%+.1f%%", (b / a - 1) * 100}') requests/s," \
  "$(awk -v a="$ap" -v b="$bp" 'BEGIN {printf "%+.1f%%", (b / a - 1) * 100}') p99"
