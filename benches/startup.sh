#!/usr/bin/env bash
# Start-up time of the whole `blockyard` process, side by side with /bin/true in one
# hyperfine run: `blockyard --version` and `blockyard block inspect crdb-sage` on a
# fresh SQLite store. Usage: benches/startup.sh [BINARY] (default: a release build).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=$PWD/target/release/blockyard
fi
command -v hyperfine >/dev/null || apt-get install -y -q hyperfine >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export BLOCKYARD_DATA_DIR=$work/data
"$bin" block create crdb-sage --type sqlalchemy-connector \
  --set connection_info.driver=cockroachdb+psycopg2 --set connection_info.database=sage \
  --set connection_info.username=databot --set connection_info.host=localhost \
  --set connection_info.port=26257 --password-stdin <<< 's3cr3t' >/dev/null 2>&1
echo "shared libraries: $(ldd "$bin" | wc -l)"
hyperfine -N --warmup 5 --runs "${RUNS:-50}" \
  -n true /bin/true \
  -n version "$bin --version" \
  -n inspect "$bin block inspect crdb-sage"
