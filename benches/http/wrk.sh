#!/usr/bin/env bash
# Load benchmark of the HTTP API: wrk against GET /api/v1/blocks/<name>?include_secrets=true
# and against the route stock Prefect clients use (/prefect/api/block_types/slug/.../
# block_documents/name/...?include_secrets=true), with 1,000 blocks stored, 16 connections,
# 20 s, on SQLite and PostgreSQL, against the masked lookup (no include_secrets: nothing
# to record, but the kept block is still checked against the store), and against the static /health route of the same server
# (the framework's ceiling). Reports requests/s,
# p50/p99 latency, errors and the server's peak RSS.
#
# Run: benches/http/wrk.sh            (DURATION=20s CONNECTIONS=16 BLOCKS=1000 RUNS=1 to change;
#                                      STORES=sqlite or STORES=postgres for one store;
#                                      SERVER_ARGS for the server, e.g. --audit-writers 2)
# With RUNS=N the lookup and the static route are measured N times, alternating (a shared
# machine drifts), and the medians and their ratio are printed.
# Needs: wrk (Debian package), a release build (built here), PostgreSQL for the PG run
# (BLOCKYARD_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/http/common.sh
source benches/http/common.sh
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-16}
BLOCKS=${BLOCKS:-1000}
RUNS=${RUNS:-1}
PG_ADMIN=${BLOCKYARD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=${PORT:-4399}

cargo build --release --quiet
BIN=$PWD/target/release/blockyard
with_cleanup

# wrk prints latency percentiles with --latency. Prints one line and appends
# "requests/s p99-in-ms" to the file $3.
run_wrk() {
  local url=$1 token=$2 record=$3
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$url" > "$work/wrk.txt"
  local rps p50 p99 non2xx
  rps=$(rps "$work/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
  echo "  requests/s $rps   p50 $p50   p99 $p99   errors ${non2xx:-0} non-2xx, $(grep -o 'Socket errors.*' "$work/wrk.txt" || echo 'no socket errors')"
  echo "$rps $(p99_ms "$work/wrk.txt")" >> "$record"
}


bench_store() {
  local label=$1 url=$2
  export BLOCKYARD_DATA_DIR=$work/$label
  export BLOCKYARD_DATABASE_URL=$url
  "$BIN" init > /dev/null 2>&1
  echo "$label: storing $BLOCKS blocks..."
  {
    echo "blocks:"
    for i in $(seq 1 "$BLOCKS"); do
      printf '  - {name: crdb-%d, type: sqlalchemy-connector, data: {connection_info: {driver: cockroachdb+psycopg2, database: sage, username: databot, host: localhost, port: 26257, password: {from_env: BENCH_PW}}}}\n' "$i"
    done
  } > "$work/blocks.yaml"
  BENCH_PW=pw-bench "$BIN" apply -f "$work/blocks.yaml" -o json > /dev/null
  local token
  token=$("$BIN" token create "bench-$label" --scope blocks:read-secrets -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  "$BIN" server --port "$PORT" --quiet ${SERVER_ARGS:-} 2> "$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break; sleep 0.1; done
  : > "$work/lookup.txt"
  : > "$work/prefect.txt"
  : > "$work/static.txt"
  : > "$work/masked.txt"
  for run in $(seq 1 "$RUNS"); do
    echo "$label: GET /api/v1/blocks/crdb-$((BLOCKS / 2))?include_secrets=true (run $run)"
    run_wrk "http://127.0.0.1:$PORT/api/v1/blocks/crdb-$((BLOCKS / 2))?include_secrets=true" "$token" "$work/lookup.txt"
    echo "$label: GET /prefect/api/.../block_documents/name/crdb-$((BLOCKS / 2))?include_secrets=true (run $run)"
    run_wrk "http://127.0.0.1:$PORT/prefect/api/block_types/slug/sqlalchemy-connector/block_documents/name/crdb-$((BLOCKS / 2))?include_secrets=true" "$token" "$work/prefect.txt"
    echo "$label: GET /api/v1/blocks/crdb-$((BLOCKS / 2)), masked (run $run)"
    run_wrk "http://127.0.0.1:$PORT/api/v1/blocks/crdb-$((BLOCKS / 2))" "$token" "$work/masked.txt"
    echo "$label: GET /health, static route (run $run)"
    run_wrk "http://127.0.0.1:$PORT/health" "$token" "$work/static.txt"
  done
  local lookup prefect static
  lookup=$(cut -d' ' -f1 "$work/lookup.txt" | median)
  prefect=$(cut -d' ' -f1 "$work/prefect.txt" | median)
  static=$(cut -d' ' -f1 "$work/static.txt" | median)
  echo "  median of $RUNS: lookup $lookup requests/s (p99 $(cut -d' ' -f2 "$work/lookup.txt" | median) ms), static $static requests/s; lookup/static $(awk -v a="$lookup" -v b="$static" 'BEGIN {printf "%.0f%%", 100 * a / b}')"
  echo "  median of $RUNS: prefect $prefect requests/s (p99 $(cut -d' ' -f2 "$work/prefect.txt" | median) ms); prefect/lookup $(awk -v a="$prefect" -v b="$lookup" 'BEGIN {printf "%.0f%%", 100 * a / b}')"
  echo "  median of $RUNS: masked $(cut -d' ' -f1 "$work/masked.txt" | median) requests/s (p99 $(cut -d' ' -f2 "$work/masked.txt" | median) ms)"
  echo "  server peak RSS: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$server_pid/status)"
  echo "  audit records written: $("$BIN" audit ls --limit 1 -o json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[0]["id"] if r else 0)')"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  server_pid=
}

STORES=${STORES:-sqlite postgres}
[[ " $STORES " == *" sqlite "* ]] && bench_store sqlite "$work/sqlite/blockyard.db"
[[ " $STORES " == *" postgres "* ]] || exit 0
pg_db=blockyard_bench_$$
psql "$PG_ADMIN" -qc "CREATE DATABASE $pg_db"
pg_url=$(python3 -c "import sys, urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path='/$pg_db').geturl())" "$PG_ADMIN")
bench_store postgres "$pg_url"
