#!/usr/bin/env bash
# Throughput of `blockyard run`'s masking: a program printing 1 GB of log lines (some
# holding the block's password), its output through `run` (masked) and through `cat`,
# side by side in one hyperfine run. MB/s = 1024 / mean seconds.
# Usage: benches/run.sh [BINARY]     (default: the release build; SIZE=512M for less)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --quiet --release
  bin=$PWD/target/release/blockyard
fi
command -v hyperfine >/dev/null || apt-get install -y -q hyperfine >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export BLOCKYARD_DATA_DIR=$work/data
"$bin" block create bench-pg --url postgresql://app@db.internal:5432/app \
  --password-stdin <<< 'bench-Secret-4711' >/dev/null 2>&1
size=${SIZE:-1G}
# A program whose output is log lines, one in eight holding the password.
printer="yes '2026-12-06T01:00:00Z INFO request served in 3 ms path=/api/v1/blocks status=200
2026-12-06T01:00:00Z INFO connected to postgresql://app:bench-Secret-4711@db.internal/app
a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 6 7 8 9 a b c d e f g h
a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 6 7 8 9 a b c d e f g h
a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 6 7 8 9 a b c d e f g h
a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 6 7 8 9 a b c d e f g h
a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 6 7 8 9 a b c d e f g h
a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 6 7 8 9 a b c d e f g h' | head -c $size"
hyperfine --warmup 1 --runs "${RUNS:-5}" \
  -n "cat" "sh -c \"$printer\" | cat > /dev/null" \
  -n "blockyard run" "$bin run --block bench-pg -- sh -c \"$printer\" > /dev/null"
