#!/usr/bin/env bash
# Start-up time of the whole `blockyard` process, side by side with /bin/true in one
# hyperfine run: `blockyard --version` and `blockyard block inspect crdb-sage` on a
# fresh SQLite store, for the release build and the dist build with static OpenSSL
# (what `cargo install --path . --profile dist --features static-openssl` gives).
# Usage: benches/startup.sh            (builds both; RUNS=N sets the run count)
#        benches/startup.sh BINARY...  (times the given binaries instead)
set -euo pipefail
cd "$(dirname "$0")/.."
bins=("$@")
if [ ${#bins[@]} -eq 0 ]; then
  cargo build --quiet --release
  CARGO_TARGET_DIR=target/dist-static cargo build --quiet --profile dist --features static-openssl
  bins=("$PWD/target/release/blockyard" "$PWD/target/dist-static/dist/blockyard")
fi
command -v hyperfine >/dev/null || apt-get install -y -q hyperfine >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export BLOCKYARD_DATA_DIR=$work/data
"${bins[0]}" block create crdb-sage --type sqlalchemy-connector \
  --set connection_info.driver=cockroachdb+psycopg2 --set connection_info.database=sage \
  --set connection_info.username=databot --set connection_info.host=localhost \
  --set connection_info.port=26257 --password-stdin <<< 's3cr3t' >/dev/null 2>&1
commands=(-n true /bin/true)
for bin in "${bins[@]}"; do
  echo "$bin: $(ldd "$bin" 2>/dev/null | wc -l) shared libraries, $(du -h "$bin" | cut -f1)"
  label=$(basename "$(dirname "$bin")")
  commands+=(-n "$label --version" "$bin --version" -n "$label inspect" "$bin block inspect crdb-sage")
done
hyperfine -N --warmup 5 --runs "${RUNS:-50}" "${commands[@]}"
