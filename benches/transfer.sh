#!/usr/bin/env bash
# Moving a registry of N blocks (default 10,000), each with a password: `apply -f` to
# build it, `export --include-secrets` (sealed with age to a passphrase), `import` into a
# new PostgreSQL store, `backup` of the SQLite store and `restore` into a new PostgreSQL
# store; prints each step's wall time and checks one secret survived every move.
# Run: benches/transfer.sh    (N=1000 for a quick run; BIN=... to time another build)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
PG_ADMIN=${BLOCKYARD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/blockyard
fi
work=$(mktemp -d)
tag=bench_transfer_$$
cleanup() {
  for db in import restore; do
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS ${tag}_$db" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
for db in import restore; do psql "$PG_ADMIN" -qc "CREATE DATABASE ${tag}_$db"; done
pg_url() { echo "${PG_ADMIN%/*}/${tag}_$1"; }

export BLOCKYARD_DATA_DIR=$work/data
"$BIN" init >/dev/null 2>&1
{
  echo "blocks:"
  for i in $(seq 1 "$N"); do
    printf '  - {name: bench-%05d, type: sqlalchemy-connector, data: {connection_info: {driver: postgresql, host: db%d.example, database: app, username: u%d, password: {from_env: BENCH_PASSWORD}}}}\n' "$i" "$i" "$i"
  done
} > "$work/blocks.yaml"
echo "correct horse battery staple" > "$work/pass.txt"

step() {
  local label=$1
  shift
  local start end
  start=$(date +%s%N)
  "$@"
  end=$(date +%s%N)
  printf '%-44s %8.2f s\n' "$label" "$(echo "($end - $start) / 1000000000" | bc -l)" >&2
}
export BENCH_PASSWORD=planted-bench-password
step "apply -f ($N new blocks)" "$BIN" apply -f "$work/blocks.yaml" -o json >/dev/null
step "apply -f again (nothing to change)" "$BIN" apply -f "$work/blocks.yaml" -o json >/dev/null
step "export --include-secrets ($N blocks)" \
  sh -c "'$BIN' export --include-secrets --passphrase-file '$work/pass.txt' > '$work/blocks.age.json'"
step "import into PostgreSQL ($N blocks)" "$BIN" --database-url "$(pg_url import)" \
  import "$work/blocks.age.json" --passphrase-file "$work/pass.txt" -o json >/dev/null
step "backup (SQLite store)" "$BIN" backup "$work/registry.bak" -o json >/dev/null
step "restore into PostgreSQL" "$BIN" --database-url "$(pg_url restore)" \
  restore "$work/registry.bak" -o json >/dev/null
printf 'export %s bytes, backup %s bytes\n' "$(stat -c %s "$work/blocks.age.json")" "$(stat -c %s "$work/registry.bak")"
middle=$(printf 'bench-%05d' $((N / 2)))
for db in import restore; do
  got=$("$BIN" --database-url "$(pg_url $db)" block inspect "$middle" --show-secrets -o json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["connection_info"]["password"])')
  [ "$got" = "$BENCH_PASSWORD" ] || { echo "the secret did not survive the $db" >&2; exit 1; }
done
if grep -q "$BENCH_PASSWORD" "$work/blocks.age.json" "$work/registry.bak"; then
  echo "a secret in plaintext in a file" >&2
  exit 1
fi
echo "secrets: intact after import and restore; in no file in plaintext"
