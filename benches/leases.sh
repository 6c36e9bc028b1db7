#!/usr/bin/env bash
# Lease issue and revoke latency over HTTP (issue 22's figure): a release server on a
# PostgreSQL store, leasing users in a PostgreSQL database (the machine's server, an
# admin block as its superuser), N sequential issue+revoke pairs on one keep-alive
# connection; prints the median and p90 of each. OpenBao's figures for the same work
# (its database engine, raft storage, file audit) were 8.0 ms and 23.2 ms here.
#
# Run: benches/leases.sh        (N=200 to change; BIN= a blockyard binary, else a release
#                                build is made here)
# Needs: PostgreSQL on 127.0.0.1:5432 with trust auth for postgres (as scripts/test sets up).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/blockyard
fi
tag=bl$(date +%s%N | tail -c 9)
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ${tag}_store WITH (FORCE)" \
    -c "DROP DATABASE IF EXISTS ${tag}_app WITH (FORCE)" -c "DROP ROLE IF EXISTS ${tag}_rw" >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE ${tag}_store" -c "CREATE DATABASE ${tag}_app" \
  -c "CREATE ROLE ${tag}_rw NOLOGIN" >/dev/null

export BLOCKYARD_DATA_DIR=$work/data BLOCKYARD_DATABASE_URL=postgres://postgres@127.0.0.1:5432/${tag}_store
printf unused-on-trust | "$BIN" block create pg-admin --url postgresql://postgres@127.0.0.1:5432/postgres --password-stdin >/dev/null
printf unused-on-trust | "$BIN" block create app --url "postgresql://nobody@127.0.0.1:5432/${tag}_app" --password-stdin >/dev/null
"$BIN" block update app --set lease.admin=pg-admin --set "lease.role=${tag}_rw" --set lease.ttl=10m \
  --set "lease.prefix=${tag}_u_" >/dev/null
token=$("$BIN" token create bench --scope blocks:lease -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" server --port "$port" --quiet 2>"$work/server.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done

python3 - "$port" "$token" "$N" <<'PY'
import http.client, json, statistics, sys, time
port, token, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
auth = {"Authorization": f"Bearer {token}"}
issue, revoke = [], []
for _ in range(n):
    t = time.perf_counter()
    conn.request("POST", "/api/v1/blocks/app/leases", headers=auth)
    answer = conn.getresponse(); body = json.loads(answer.read())
    issue.append((time.perf_counter() - t) * 1000)
    assert answer.status == 201, body
    t = time.perf_counter()
    conn.request("DELETE", f"/api/v1/leases/{body['lease_id']}", headers=auth)
    answer = conn.getresponse(); answer.read()
    revoke.append((time.perf_counter() - t) * 1000)
    assert answer.status == 200
for label, xs in (("issue", issue), ("revoke", revoke)):
    xs.sort()
    print(f"{label:<7} median {statistics.median(xs):6.2f} ms   p90 {xs[len(xs) * 9 // 10]:6.2f} ms   ({n} leases)")
PY
left=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, '${tag}_u_')")
echo "managed roles left: $left"
