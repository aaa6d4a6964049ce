#!/usr/bin/env bash
# Builds crashcheck against another rust-rocksdb release, and the RocksDB
# it bundles, then runs it: "does *my* version keep my data?"
#
#   scripts/versions.sh list                      the supported versions
#   scripts/versions.sh 0.23 crash --mode all --cycles 200
#   scripts/versions.sh 0.22 selftest --budget 60s
#   scripts/versions.sh 0.24 --version
#   scripts/versions.sh 0.24 --manifest          prepare only; print the Cargo.toml
#   scripts/versions.sh 0.22 --unit-tests        the library's unit tests on that engine
#   scripts/versions.sh 0.23 --example resume_hang 5  an example (reproducer) on that engine
#
#   VERSION  rust-rocksdb      librocksdb-sys    RocksDB
#   0.22     0.22.0            0.16.0+8.10.0     8.10.0
#   0.23     0.23.0            0.17.1+9.9.3      9.9.3
#   0.24     0.24.0            0.17.3+10.4.2     10.4.2
#   0.25     0.25.0 (default)  0.19.0+11.8.1     11.8.1
#
# Two librocksdb-sys versions cannot share one build graph (both say
# `links = "rocksdb"`), so each version gets its own build directory outside
# the clone, ${CRASHCHECK_CACHE:-~/.cache/crashcheck}/versions/VERSION: a
# Cargo.toml made from the repository's with only the rocksdb and
# librocksdb-sys lines changed, links to the repository's src/, csrc/ and
# build.rs (the one checker, compiled against that engine), its own
# Cargo.lock and target directory. The first build of a version compiles
# its RocksDB (about 15-20 minutes on 2 cores); later runs reuse it and
# rebuild only crashcheck. 0.25 is the repository's own build (the
# CARGO_TARGET_DIR of scripts/test.sh).
#
# rust-rocksdb before 0.25 keeps its C API handles crate-private, so the
# build uses a copy of that release with patches/rust-rocksdb/as_raw_ptr.rs
# added (accessors only: AsRawPtr, as 0.25's `raw-ptr` feature has it).
# What else differs between versions lives in src/store/compat.rs. The
# older releases are built without the default feature `txn-db` (the
# `transaction-db` store needs 0.25's TransactionDB flush and checkpoint);
# `optimistic-transaction-db` is there on every version.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n '2,19p' "$0" >&2; }
[ $# -ge 1 ] || { usage; exit 2; }
ver=$1
shift
features='"lz4", "zstd", "snappy", "bindgen-runtime"'
case "$ver" in
  list)
    sed -n '13,17p' "$0" | sed 's/^# *//'
    exit 0
    ;;
  0.22) rr=0.22.0 sys=0.16.0 features='"lz4", "zstd", "snappy"' ;;
  0.23) rr=0.23.0 sys=0.17.1 ;;
  0.24) rr=0.24.0 sys=0.17.3 ;;
  0.25) rr=0.25.0 sys=0.19.0 ;;
  *)
    echo "versions.sh: unknown version '$ver' (one of 0.22 0.23 0.24 0.25; see 'scripts/versions.sh list')" >&2
    exit 2
    ;;
esac
"$root/scripts/deps.sh"
cache=${CRASHCHECK_CACHE:-$HOME/.cache/crashcheck}

if [ "$ver" = 0.25 ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
  if [ "${1:-}" = --unit-tests ]; then
    shift
    exec cargo test --locked --manifest-path "$root/Cargo.toml" --lib "$@"
  fi
  if [ "${1:-}" = --example ]; then
    shift
    exec cargo run --quiet --locked --manifest-path "$root/Cargo.toml" --example "$@"
  fi
  cargo build --quiet --manifest-path "$root/Cargo.toml" --bin crashcheck >&2
  exec "$CARGO_TARGET_DIR/debug/crashcheck" "$@"
fi

dir=$cache/versions/$ver
mkdir -p "$dir"
for f in src csrc build.rs examples; do
  ln -sfn "$root/$f" "$dir/$f"
done
# The manifest: the repository's, with this version's rocksdb and
# librocksdb-sys (the raw-ptr feature is 0.25's; the backport needs none).
sed -e "s|^rocksdb = .*|rocksdb = { version = \"=$rr\", default-features = false, features = [$features] }|" \
  -e "s|^librocksdb-sys = .*|librocksdb-sys = { version = \"=$sys\", default-features = false, features = [$features] }|" \
  "$root/Cargo.toml" > "$dir/Cargo.toml.new"
grep -q "^rocksdb = { version = \"=$rr\"" "$dir/Cargo.toml.new" || {
  echo "versions.sh: could not set the rocksdb dependency in $dir/Cargo.toml" >&2
  exit 1
}
export CARGO_TARGET_DIR=$dir/target

# The rust-rocksdb copy with the AsRawPtr backport, made once per version
# (and again when the backport changes).
crate=$dir/rust-rocksdb
stamp=$(cat "$root/patches/rust-rocksdb/as_raw_ptr.rs" "$0" | sha256sum | cut -c1-16)
if [ "$(cat "$crate/.crashcheck-stamp" 2>/dev/null)" != "$stamp" ]; then
  cp "$dir/Cargo.toml.new" "$dir/Cargo.toml"
  cargo fetch --quiet --manifest-path "$dir/Cargo.toml" >&2
  archive=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/rocksdb-$rr.crate | head -1)
  rm -rf "$crate.tmp"
  mkdir -p "$crate.tmp"
  tar -xzf "$archive" -C "$crate.tmp" --strip-components=1
  cp "$root/patches/rust-rocksdb/as_raw_ptr.rs" "$crate.tmp/src/crashcheck_as_raw_ptr.rs"
  printf '\n// Added by crashcheck (scripts/versions.sh).\nmod crashcheck_as_raw_ptr;\npub use crate::crashcheck_as_raw_ptr::AsRawPtr;\n' \
    >> "$crate.tmp/src/lib.rs"
  # A path dependency's warnings are shown; a registry crate's are not.
  { echo '#![allow(warnings)]'; cat "$crate.tmp/src/lib.rs"; } > "$crate.tmp/src/lib.rs.new"
  mv "$crate.tmp/src/lib.rs.new" "$crate.tmp/src/lib.rs"
  echo "$stamp" > "$crate.tmp/.crashcheck-stamp"
  rm -rf "$crate"
  mv "$crate.tmp" "$crate"
fi
{
  cat "$dir/Cargo.toml.new"
  printf '\n[patch.crates-io]\nrocksdb = { path = "rust-rocksdb" }\n'
} > "$dir/Cargo.toml.final"
rm -f "$dir/Cargo.toml.new"
# Replaced only when it changed, so an unchanged build stays fresh.
if cmp -s "$dir/Cargo.toml.final" "$dir/Cargo.toml"; then
  rm "$dir/Cargo.toml.final"
else
  mv "$dir/Cargo.toml.final" "$dir/Cargo.toml"
fi
# The version's lock file is committed (versions/VERSION/Cargo.lock) and
# the build is --locked to it. Without one (a new version), it is seeded
# from the repository's, so every other dependency keeps its pinned
# version and cargo changes only what this version needs.
locked=()
if [ -f "$root/versions/$ver/Cargo.lock" ]; then
  cmp -s "$root/versions/$ver/Cargo.lock" "$dir/Cargo.lock" || cp "$root/versions/$ver/Cargo.lock" "$dir/Cargo.lock"
  locked=(--locked)
elif [ ! -f "$dir/Cargo.lock" ]; then
  cp "$root/Cargo.lock" "$dir/Cargo.lock"
fi
if [ "${1:-}" = --manifest ]; then
  # For scripts and CI: prepare the build directory, print its manifest.
  echo "$dir/Cargo.toml"
  exit 0
fi
if [ "${1:-}" = --unit-tests ]; then
  # The library's unit tests against this engine (the integration tests
  # under tests/ run on the default build: scripts/test.sh).
  shift
  exec cargo test "${locked[@]}" --no-default-features --manifest-path "$dir/Cargo.toml" --lib "$@"
fi
if [ "${1:-}" = --example ]; then
  # One of examples/ (the reproducers that use crashcheck's shim) built
  # against this engine; its exit status is the example's.
  shift
  echo "versions.sh: example $1 with rust-rocksdb $rr (librocksdb-sys $sys) in $dir" >&2
  exec cargo run --quiet "${locked[@]}" --no-default-features --manifest-path "$dir/Cargo.toml" --example "$@"
fi
echo "versions.sh: crashcheck with rust-rocksdb $rr (librocksdb-sys $sys) in $dir" >&2
cargo build "${locked[@]}" --no-default-features --manifest-path "$dir/Cargo.toml" --bin crashcheck >&2
exec "$CARGO_TARGET_DIR/debug/crashcheck" "$@"
