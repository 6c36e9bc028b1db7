#!/usr/bin/env bash
# `db create` end to end on the local PostgreSQL: role + database (from template1) +
# block, RUNS times (default 20), each with new names; prints every time and the median.
# Everything it made is dropped afterwards.
# Run: benches/db_create.sh    (BIN=target/debug/blockyard to time a debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
PG_ADMIN=${BLOCKYARD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/blockyard
fi
work=$(mktemp -d)
export BLOCKYARD_DATA_DIR=$work/data
tag=bench$$
cleanup() {
  for i in $(seq 1 "$RUNS"); do
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS ${tag}_db_$i" -c "DROP ROLE IF EXISTS ${tag}_role_$i" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
"$BIN" init >/dev/null 2>&1
"$BIN" block create pg-admin --url "$PG_ADMIN" </dev/null >/dev/null
: > "$work/times"
for i in $(seq 1 "$RUNS"); do
  start=$(date +%s%N)
  "$BIN" db create "${tag}_db_$i" --admin pg-admin --owner "${tag}_role_$i" --block "bench-$i" >/dev/null
  end=$(date +%s%N)
  echo $(( (end - start) / 1000000 )) >> "$work/times"
done
echo "db create, ms: $(tr '\n' ' ' < "$work/times")"
echo "median of $RUNS: $(sort -n "$work/times" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}') ms"
