#!/usr/bin/env bash
# The web UI's block list with N blocks (default 10,000) in an SQLite store: time to
# first byte of the first page (RUNS times, default 50; min, median, max) and its weight
# (HTML, the stylesheet and htmx, gzipped as browsers fetch it), signed in as an admin.
# Run: benches/ui.sh    (BIN=... to time another build)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
RUNS=${RUNS:-50}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/blockyard
fi
work=$(mktemp -d)
export BLOCKYARD_DATA_DIR=$work/data
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
  kill "${server:-0}" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$BIN" init >/dev/null 2>&1
{
  echo "blocks:"
  for i in $(seq 1 "$N"); do
    printf '  - {name: bench-%05d, type: sqlalchemy-connector, data: {connection_info: {driver: postgresql, host: db%d.example, database: app, password: {from_env: P}}}}\n' "$i" "$i"
  done
} > "$work/blocks.yaml"
P=bench "$BIN" apply -f "$work/blocks.yaml" -o json >/dev/null
token=$("$BIN" token create ui-bench --scope admin -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$BIN" server --port "$port" >"$work/server.log" 2>&1 &
server=$!
base=http://127.0.0.1:$port
until curl -fs "$base/health" >/dev/null; do :; done
jar=$work/cookies
csrf=$(curl -s -c "$jar" "$base/ui/login" | grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 | sed 's/.*value="//; s/"//')
curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "token=$token" --data-urlencode "csrf=$csrf" "$base/ui/login"
: > "$work/ttfb"
for _ in $(seq 1 "$RUNS"); do
  curl -s -b "$jar" -o /dev/null -w '%{time_starttransfer}\n' "$base/ui" >> "$work/ttfb"
done
sort -n "$work/ttfb" | awk '{ a[NR] = $1 * 1000 } END { printf "TTFB of /ui with %d blocks over %d runs: min %.1f ms, median %.1f ms, max %.1f ms\n", '"$N"', NR, a[1], a[int((NR + 1) / 2)], a[NR] }'
html=$(curl -s -b "$jar" "$base/ui" | wc -c)
css=$(curl -s "$base/ui/style.css" | wc -c)
js=$(curl -s -H 'Accept-Encoding: gzip' "$base/ui/htmx.js" | wc -c)
echo "page weight: HTML $html bytes + stylesheet $css bytes + htmx $js bytes (gzip) = $((html + css + js)) bytes"
