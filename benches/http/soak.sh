#!/usr/bin/env bash
# Soak run of the audit log: one token reads one block's secrets at full speed (wrk,
# loopback) for DURATION (10 minutes by default) on one store, and reports what the
# issue on the audit log at scale asks:
#   - how much the store grew (SQLite: the database file and its WAL; PostgreSQL:
#     pg_database_size), from before the server started to after it stopped (and
#     while it ran: SQLite's WAL is reused, not grown, once checkpointed);
#   - whether the audit log accounts for every request: the sum of the read records'
#     counts against wrk's request count (it may be above it by at most the requests
#     in flight when wrk stopped, one per connection);
#   - the server's RSS in the first and the last minute (sampled every 10 s);
#   - with PRUNE=N: N old records are planted first and `audit prune` runs while wrk
#     does, and wrk's p99 is reported for a run without the prune and one with it.
#
# Run: benches/http/soak.sh              (STORE=sqlite|postgres, DURATION=10m,
#                                          CONNECTIONS=16, PRUNE=1000000)
# Needs: wrk, python3, a release build (built here), PostgreSQL for STORE=postgres
# (BLOCKYARD_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/../.."
STORE=${STORE:-sqlite}
DURATION=${DURATION:-10m}
CONNECTIONS=${CONNECTIONS:-16}
PRUNE=${PRUNE:-0}
PG_ADMIN=${BLOCKYARD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=${PORT:-4398}

cargo build --release --quiet
BIN=$PWD/target/release/blockyard
work=$(mktemp -d)
server_pid=
sampler_pid=
pg_db=
cleanup() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  [ -n "$pg_db" ] && psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT

export BLOCKYARD_DATA_DIR=$work/data
case $STORE in
  sqlite) export BLOCKYARD_DATABASE_URL=$work/data/blockyard.db ;;
  postgres)
    pg_db=blockyard_soak_$$
    psql "$PG_ADMIN" -qc "CREATE DATABASE $pg_db"
    BLOCKYARD_DATABASE_URL=$(python3 -c "import sys, urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path='/$pg_db').geturl())" "$PG_ADMIN")
    export BLOCKYARD_DATABASE_URL ;;
  *) echo "STORE must be sqlite or postgres" >&2; exit 2 ;;
esac

store_bytes() {
  case $STORE in
    sqlite) stat -c %s "$work"/data/blockyard.db* | awk '{s += $1} END {print s}' ;;
    postgres) psql "$BLOCKYARD_DATABASE_URL" -Atc 'select pg_database_size(current_database())' ;;
  esac
}

"$BIN" init > /dev/null 2>&1
"$BIN" block create crdb-sage --type sqlalchemy-connector \
  --set connection_info.driver=cockroachdb+psycopg2 --set connection_info.database=sage \
  --set connection_info.username=databot --set connection_info.host=localhost \
  --set connection_info.port=26257 --password-stdin <<< 'pw-soak' > /dev/null
token=$("$BIN" token create soak --scope blocks:read-secrets -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

if [ "$PRUNE" -gt 0 ]; then
  echo "planting $PRUNE audit records 400 days old..."
  old=$(( ($(date +%s) - 400 * 86400) * 1000 ))
  sql="INSERT INTO audit_log (at, request_id, actor, action, block, outcome, event_count, last_at)
       SELECT $old + n, 'old-' || n, 'planted', 'read-secrets', 'crdb-sage', 'ok', 1, $old + n
       FROM (WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < $PRUNE) SELECT n FROM c) AS c"
  case $STORE in
    sqlite) python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()" "$BLOCKYARD_DATABASE_URL" "$sql" ;;
    postgres) psql "$BLOCKYARD_DATABASE_URL" -qc "$sql" ;;
  esac
fi

before=$(store_bytes)
"$BIN" server --port "$PORT" --quiet --audit-retention 0 2> "$work/server.log" &
server_pid=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$PORT/api/v1/blocks/crdb-sage?include_secrets=true"

p99() { awk '$1 == "99%" {print $2}' "$1"; }
requests() { awk '/requests in/ {print $1}' "$1"; }

if [ "$PRUNE" -gt 0 ]; then
  echo "$STORE: wrk $DURATION, $CONNECTIONS connections, without a prune"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$url" > "$work/quiet.txt"
  echo "  requests/s $(awk '/Requests\/sec/ {print $2}' "$work/quiet.txt")   p99 $(p99 "$work/quiet.txt")"
  echo "$STORE: wrk $DURATION, $CONNECTIONS connections, while audit prune deletes $PRUNE records"
  start=$(date +%s.%N)
  ( "$BIN" audit prune --before 30d -o json > "$work/prune.json" 2> /dev/null
    date +%s.%N > "$work/prune.end" ) &
  prune_pid=$!
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$url" > "$work/prune.txt"
  if kill -0 "$prune_pid" 2> /dev/null; then
    kill "$prune_pid"; wait "$prune_pid" 2> /dev/null || true
    left=$("$BIN" audit ls --limit 1000000 -o json | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r["actor"] == "planted"))')
    echo "  requests/s $(awk '/Requests\/sec/ {print $2}' "$work/prune.txt")   p99 $(p99 "$work/prune.txt")"
    echo "  the prune was still running when wrk stopped: $(( PRUNE - left )) of $PRUNE records deleted in $DURATION"
  else
    wait "$prune_pid"
    end=$(cat "$work/prune.end")
    echo "  requests/s $(awk '/Requests\/sec/ {print $2}' "$work/prune.txt")   p99 $(p99 "$work/prune.txt")"
    echo "  the prune: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["deleted"])' "$work/prune.json") records deleted in $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') s, within the run"
  fi
  exit 0
fi

# RSS every 10 s: the first and last minute are reported.
( while kill -0 "$server_pid" 2>/dev/null; do
    awk '/VmRSS/ {print $2}' "/proc/$server_pid/status"; sleep 10
  done ) > "$work/rss.txt" 2>/dev/null &
sampler_pid=$!

echo "$STORE: wrk $DURATION, $CONNECTIONS connections, one token reading one block"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$url" > "$work/wrk.txt"
live=$(store_bytes)
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
server_pid=
# SQLite's WAL is a journal of fixed size in use (checkpointed and reused, not grown);
# what the store holds is the database once the WAL is checkpointed into it.
if [ "$STORE" = sqlite ]; then
  wal=$(stat -c %s "$BLOCKYARD_DATABASE_URL-wal" 2>/dev/null || echo 0)
  python3 -c "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA wal_checkpoint(TRUNCATE)')" "$BLOCKYARD_DATABASE_URL"
  echo "  SQLite WAL when the server stopped: $wal bytes (checkpointed into the database before the size below)"
fi
after=$(store_bytes)
made=$(requests "$work/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
echo "  requests $made   requests/s $(awk '/Requests/ {print $2}' "$work/wrk.txt")   p50 $(awk '$1 == "50%" {print $2}' "$work/wrk.txt")   p99 $(p99 "$work/wrk.txt")   non-2xx ${non2xx:-0}   $(grep -o 'Socket errors.*' "$work/wrk.txt" || echo 'no socket errors')"
echo "  store: $before bytes before the server started, $after after it stopped: grew by $(( after - before )) bytes ($live while it ran, SQLite's WAL included)"
"$BIN" audit ls --block crdb-sage --limit 1000 -o json > "$work/audit.json"
python3 - "$work/audit.json" "$made" "$CONNECTIONS" <<'EOF'
import json, sys
records = [r for r in json.load(open(sys.argv[1])) if r["action"] == "read-secrets"]
made, connections = int(sys.argv[2]), int(sys.argv[3])
counted = sum(r["count"] for r in records)
print(f"  audit: {len(records)} read records, counts summing to {counted}; wrk made {made} "
      f"(difference {counted - made}, allowed 0 to {connections})")
EOF
python3 - "$work/rss.txt" <<'EOF'
import sys
kib = [int(l) for l in open(sys.argv[1]) if l.strip()]
first, last = kib[:6], kib[-6:]
print(f"  server RSS: first minute {min(first) / 1024:.1f}-{max(first) / 1024:.1f} MiB, "
      f"last minute {min(last) / 1024:.1f}-{max(last) / 1024:.1f} MiB ({len(kib)} samples)")
EOF
