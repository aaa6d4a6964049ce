#!/usr/bin/env bash
# Runs one of the standalone reproducers (examples/*.rs that use only
# rust-rocksdb: wal_recyclable_hang, atomic_flush_wait) against another
# rust-rocksdb release, to learn which RocksDB versions a finding affects.
#
#   scripts/reproduce-on.sh 0.23.0 atomic_flush_wait 400
#   scripts/reproduce-on.sh 0.22.0 wal_recyclable_hang
#   scripts/reproduce-on.sh 0.23.0:0.17.1+9.9.3 wal_recyclable_hang
#
# VERSION is a rust-rocksdb release, optionally `:` a librocksdb-sys
# release to pin (cargo otherwise takes the newest compatible one, e.g.
# rust-rocksdb 0.23.0 gets librocksdb-sys 0.17.3+10.4.2, RocksDB 10.4.2).
#
# A scratch crate outside the clone (under ~/.cache/crashcheck/) depends on
# rocksdb = "=<version>" and builds the example as its binary, in its own
# target directory: the first run per version compiles that RocksDB
# (15-20 minutes on 2 cores), later runs reuse it. Prints the RocksDB
# version the crate bundles, then the reproducer's output; exits with the
# reproducer's status (1: the bug showed).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  sed -n '2,14p' "$0" >&2
  exit 2
fi
ver=${1%%:*} example=$2
pin=""
[ "$1" != "$ver" ] && pin=${1#*:}
shift 2
src="examples/$example.rs"
if [ ! -f "$src" ] || grep -q 'crashcheck::' "$src"; then
  echo "reproduce-on: $src is not a standalone reproducer" >&2
  exit 2
fi
scripts/deps.sh
dir="${CRASHCHECK_CACHE:-$HOME/.cache/crashcheck}/rust-rocksdb-$ver${pin:+-sys-$pin}"
mkdir -p "$dir/src"
# rust-rocksdb before 0.23 has no `bindgen-runtime` feature (its bindgen
# always loads libclang at run time).
features='"lz4", "zstd", "snappy", "bindgen-runtime"'
case "$ver" in 0.1* | 0.20.* | 0.21.* | 0.22.*) features='"lz4", "zstd", "snappy"' ;; esac
pin_line=""
if [ -n "$pin" ]; then
  pin_line="librocksdb-sys = { version = \"=$pin\", default-features = false, features = [$features] }"
fi
cat > "$dir/Cargo.toml" <<EOF
[package]
name = "reproduce-on"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rocksdb = { version = "=$ver", default-features = false, features = [$features] }
$pin_line

[profile.dev]
opt-level = 3
EOF
cp "$src" "$dir/src/main.rs"
cd "$dir"
CARGO_TARGET_DIR="$dir/target" cargo build >&2
sys=$(cargo tree -p rocksdb --depth 1 -e normal 2>/dev/null | grep -o 'librocksdb-sys v[^ ]*' | head -1)
echo "reproduce-on: rust-rocksdb $ver ($sys)"
exec "$dir/target/debug/reproduce-on" "$@"
