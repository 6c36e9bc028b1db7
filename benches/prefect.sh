#!/usr/bin/env bash
# What Blockyard adds in front of a Prefect server (`--prefect-upstream`): wrk, one
# connection (so the figures are latencies, not a queue), against a forwarded route
# (`GET /flows/{id}`) with and without Blockyard in front, and against the block read a
# flow's `load()` sends, which Blockyard answers itself. Prints p50/p99 for each and the
# p50 Blockyard adds to the forwarded route.
#
# Run: benches/prefect.sh         (DURATION=10s to change; BIN= a blockyard binary, else a
#                                  release build is made here)
# Needs: wrk (Debian package), the Prefect venv of scripts/test (target/prefect-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
PY=${BLOCKYARD_TEST_PYTHON:-$PWD/target/prefect-venv/bin/python}
PREFECT=$(dirname "$PY")/prefect
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/blockyard
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 1 900); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done; echo "not up: $1" >&2; exit 1; }

pport=$(free_port)
PREFECT_HOME=$work/prefect PREFECT_UI_ENABLED=false PREFECT_SERVER_ANALYTICS_ENABLED=false \
  "$PREFECT" server start --host 127.0.0.1 --port "$pport" >"$work/prefect.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$pport/api/health"

export BLOCKYARD_DATA_DIR=$work/data
printf 'bench-password' | "$BIN" block create crdb-sage \
  --url cockroachdb+psycopg2://databot@db.internal:26257/sage --password-stdin >/dev/null 2>&1
token=$("$BIN" token create bench --scope blocks:read-secrets -o json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
bport=$(free_port)
"$BIN" server --port "$bport" --quiet --prefect-upstream "http://127.0.0.1:$pport/api" 2>"$work/server.log" &
pids+=($!)
wait_for "http://127.0.0.1:$bport/health"

flow=$(curl -sf -X POST -H 'Content-Type: application/json' -d '{"name": "bench"}' \
  "http://127.0.0.1:$pport/api/flows/" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')

# One wrk run: prints p50/p99 and appends the p50 (ms) to $work/p50.
measure() {
  local label=$1; shift
  wrk -t1 -c1 -d"$DURATION" --latency "$@" | "$PY" -c '
import re, sys
label, out = sys.argv[1], sys.stdin.read()
def ms(pct):
    value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
print(f"{label:<40} p50 {ms(50):7.3f} ms   p99 {ms(99):7.3f} ms   {rps} req/s")
open(sys.argv[2], "a").write(f"{ms(50)}\n")
' "$label" "$work/p50"
}

direct="http://127.0.0.1:$pport/api/flows/$flow"
through="http://127.0.0.1:$bport/prefect/api/flows/$flow"
block="http://127.0.0.1:$bport/prefect/api/block_types/slug/sqlalchemy-connector/block_documents/name/crdb-sage?include_secrets=true"
measure "GET /flows/{id}, Prefect alone" "$direct"
measure "GET /flows/{id}, through Blockyard" -H "Authorization: Bearer $token" "$through"
measure "block load(), answered by Blockyard" -H "Authorization: Bearer $token" "$block"
"$PY" -c 'import sys; a, b, _ = (float(x) for x in open(sys.argv[1])); print(f"Blockyard adds {b - a:.3f} ms at p50 to a forwarded route")' "$work/p50"
