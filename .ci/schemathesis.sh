#!/usr/bin/env bash
# Fuzz the HTTP API with schemathesis against its own OpenAPI document: a real server on
# a fresh SQLite store and on a fresh PostgreSQL database, an admin token; fails on any
# 5xx or any response that does not match the document.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${BLOCKYARD_TEST_PYTHON:-$PWD/target/prefect-venv/bin/python}
PG_ADMIN=${BLOCKYARD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cargo build --quiet
BIN=$PWD/target/debug/blockyard
work=$(mktemp -d)
pid=
db=blockyard_fuzz_$$
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$PG_ADMIN" -qc "CREATE DATABASE $db"
pg_url=$("$PY" -c "import sys, urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path='/' + sys.argv[2]).geturl())" "$PG_ADMIN" "$db")

for store in "$work/sqlite/blockyard.db" "$pg_url"; do
  export BLOCKYARD_DATA_DIR=$work/data BLOCKYARD_DATABASE_URL=$store
  rm -rf "$work/data"
  "$BIN" init >/dev/null 2>&1
  token=$("$BIN" token create fuzz --scope admin -o json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$BIN" server --port "$port" --quiet 2>"$work/server.log" &
  pid=$!
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/openapi.json" > "$work/openapi.json"
  (cd "$work" && "$(dirname "$PY")/schemathesis" run "$work/openapi.json" --url "http://127.0.0.1:$port" \
    -H "Authorization: Bearer $token" --checks not_a_server_error,response_schema_conformance \
    --max-examples 40 --no-color)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  pid=
done
