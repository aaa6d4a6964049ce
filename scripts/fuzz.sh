#!/usr/bin/env bash
# Coverage-guided fuzzing: builds the cargo-fuzz targets (ops, crash,
# wal_recovery) and runs each for SECONDS (default 60), keeping corpora in
# fuzz/corpus/<target> (seeded from crashcheck's workload generator).
# Prints execs/s per target; exits 1 on a finding, with the command that
# turns the artifact into a crashcheck repro file.
#
# Stable toolchain: targets are built with `--sanitizer none`. The
# sanitizers need nightly (-Zsanitizer; RUSTC_BOOTSTRAP=1 would force it)
# and would not instrument RocksDB's C++ anyway unless RocksDB itself were
# rebuilt with them; the findings crashcheck looks for are consistency
# violations (panics of the target), which need no sanitizer.
#
# To plant a bug: CRASHCHECK_FUZZ_STORE=mutant:early-ack scripts/fuzz.sh 60
#
# RocksDB is compiled once: the fuzz crate links the static librocksdb.a
# (and libsnappy.a) that the main build (scripts/test.sh, .ci/run) already
# produced in its librocksdb-sys build output, through librocksdb-sys's
# ROCKSDB_LIB_DIR / ROCKSDB_STATIC and SNAPPY_LIB_DIR / SNAPPY_STATIC. The
# C++ needs no coverage instrumentation for consistency fuzzing (the
# targets' panics are the findings), so nothing is lost. Only the Rust
# code, lz4/zstd (C, a few seconds) and the fault-injection shim are built
# for the fuzz crate. Without a main build, the script makes one first.
set -uo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
scripts/deps.sh
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz --version 0.13.2 || exit 2
fi
main_target="${CARGO_TARGET_DIR:-target}"
CARGO_TARGET_DIR="$main_target" cargo build --locked --bin crashcheck || exit 2
bin="$main_target/debug/crashcheck"
"$bin" fuzz-seed --out fuzz/corpus --count 16 >/dev/null || exit 2
rocks_a=$(ls -t "$main_target"/debug/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1)
if [ -z "$rocks_a" ]; then
  echo "fuzz: no librocksdb.a under $main_target (the main build links a system RocksDB?)" >&2
  exit 2
fi
export ROCKSDB_LIB_DIR="$(dirname "$rocks_a")" ROCKSDB_STATIC=1
export SNAPPY_LIB_DIR="$ROCKSDB_LIB_DIR" SNAPPY_STATIC=1
# The fuzz crate has its own target dir (different compiler flags).
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-fuzz/target}"
cargo fuzz build --sanitizer none --release || exit 2
mkdir -p fuzz/logs
status=0
for t in ops crash wal_recovery; do
  log="fuzz/logs/$t.log"
  cargo fuzz run --sanitizer none --release "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 > "$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' | tail -1)
  [ -z "$took" ] && took="$secs"
  rate=$(awk -v r="${runs:-0}" -v s="$took" 'BEGIN { if (s < 1) s = 1; printf "%.1f", r / s }')
  if [ $rc -eq 0 ]; then
    echo "fuzz: $t: ${runs:-0} execs in ${took}s ($rate execs/s), exit $rc"
  else
    echo "fuzz: $t: finding after ${runs:-0} execs, exit $rc"
  fi
  if [ $rc -ne 0 ]; then
    status=1
    art=$(ls -t "fuzz/artifacts/$t"/* 2>/dev/null | head -1)
    grep -m1 'crashcheck finding' "$log" || tail -n 20 "$log"
    [ -n "$art" ] && [ "$t" != wal_recovery ] && echo "fuzz: repro: crashcheck fuzz-repro $t $art"
  fi
done
exit $status
