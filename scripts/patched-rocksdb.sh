#!/usr/bin/env bash
# Runs crashcheck (or one of its examples) against the bundled RocksDB with
# a patch from patches/ applied: the experiment that proves or refutes a
# finding's root cause (docs/findings.md).
#
#   scripts/patched-rocksdb.sh PATCH crash --mode no-wal ...     # crashcheck
#   scripts/patched-rocksdb.sh PATCH --example NAME [ARGS...]    # an example
#
# How: the librocksdb-sys crate that Cargo.lock pins is copied out of the
# cargo registry into a cache directory (outside the clone), the patch is
# applied to its rocksdb/ sources, and a copy of this checkout's tracked
# files is built with `[patch.crates-io] librocksdb-sys = { path = ... }`
# in its own target directory. Nothing in the clone changes. The first run
# compiles RocksDB (about 14 minutes on 2 cores); later runs with the same
# patch reuse that build. The binary reports the patch in `--version` and
# in every report (CRASHCHECK_ROCKSDB_PATCH at build time).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
patch_file=$1
shift
if [ ! -f "$patch_file" ]; then
  echo "patched-rocksdb: no patch file $patch_file" >&2
  exit 2
fi
name=$(basename "$patch_file" .patch)
cache="${CRASHCHECK_CACHE:-$HOME/.cache/crashcheck}/patched-$name"
scripts/deps.sh
cargo fetch --locked >/dev/null
ver=$(awk '/^name = "librocksdb-sys"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"librocksdb-sys-$ver" 2>/dev/null | head -1)
if [ -z "$src" ]; then
  echo "patched-rocksdb: librocksdb-sys $ver is not in the cargo registry" >&2
  exit 2
fi
stamp="$ver $(sha256sum < "$patch_file")"
mkdir -p "$cache"
if [ "$(cat "$cache/stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$cache/librocksdb-sys"
  cp -a "$src" "$cache/librocksdb-sys"
  patch -p1 -d "$cache/librocksdb-sys" < "$patch_file"
  echo "$stamp" > "$cache/stamp"
fi
# This checkout's tracked files, with the patched crate.
rm -rf "$cache/src"
mkdir -p "$cache/src"
git ls-files -z | grep -zv '^fuzz/' | xargs -0 tar -c | tar -x -m -C "$cache/src" # -m: fresh mtimes, so cargo rebuilds what changed
cat >> "$cache/src/Cargo.toml" <<EOF

[patch.crates-io]
librocksdb-sys = { path = "../librocksdb-sys" }
EOF
cd "$cache/src"
export CARGO_TARGET_DIR="$cache/target" CRASHCHECK_ROCKSDB_PATCH="$name"
if [ "$1" = "--example" ]; then
  example=$2
  shift 2
  cargo build --example "$example" >&2
  exec "$CARGO_TARGET_DIR/debug/examples/$example" "$@"
fi
cargo build --bin crashcheck >&2
exec "$CARGO_TARGET_DIR/debug/crashcheck" "$@"
