#!/usr/bin/env bash
# The version matrix: for each RocksDB version crashcheck builds against
# (scripts/versions.sh), the default crash campaign (every mode x every
# fault the version supports, CYCLES cycles), the library's unit tests and
# the mutant selftest (BUDGET), then one table with a row per engine
# (`crashcheck matrix`).
#
#   scripts/matrix.sh                      all four versions, 200 cycles, 60s
#   VERSIONS="0.22 0.25" CYCLES=400 BUDGET=120s scripts/matrix.sh
#   scripts/matrix.sh --only 0.23          one version's reports (a CI matrix
#                                          job), merged later by --merge
#   scripts/matrix.sh --merge DIR...       the table from such directories
#
# Writes reports/matrix/<version>/ (crash.json, junit.xml, crash.md,
# unit-tests.txt, selftest.json, build.txt with the build time, artifacts/) and
# reports/matrix/matrix.{md,json}. Exit 1 when a version shows a
# violation or fails its selftest, 2 when a build fails.
set -uo pipefail
cd "$(dirname "$0")/.."
versions=${VERSIONS:-0.22 0.23 0.24 0.25}
cycles=${CYCLES:-200}
budget=${BUDGET:-60s}
seed=${CRASHCHECK_SEED:-1}
out=${MATRIX_OUT:-reports/matrix}
merge_only=0
dirs=()
case "${1:-}" in
  --only) versions=$2 ;;
  --merge) merge_only=1; shift; dirs=("$@") ;;
  "") ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
note() { echo "matrix: $*" >&2; }
status=0

if [ $merge_only -eq 0 ]; then
  for v in $versions; do
    d=$out/$v
    mkdir -p "$d"
    note "building crashcheck against rust-rocksdb $v"
    start=$(date +%s)
    if ! scripts/versions.sh "$v" --version > "$d/version.txt" 2> "$d/build.log"; then
      note "build for $v failed (see $d/build.log)"
      status=2
      continue
    fi
    echo "build_s=$(($(date +%s) - start))" > "$d/build.txt"
    note "$(head -1 "$d/version.txt"): crash campaign, $cycles cycles"
    scripts/versions.sh "$v" crash --mode all --fault all --cycles "$cycles" --seed "$seed" -q \
      --report "$d/crash.json" --junit "$d/junit.xml" --markdown "$d/crash.md" \
      --artifacts "$d/artifacts" > "$d/crash.txt" 2>&1
    rc=$?
    [ $rc -ne 0 ] && { note "$v: crash campaign exited $rc (see $d/crash.txt)"; status=1; }
    note "$v: the library's unit tests"
    scripts/versions.sh "$v" --unit-tests -q > "$d/unit-tests.txt" 2>&1
    rc=$?
    [ $rc -ne 0 ] && { note "$v: unit tests exited $rc (see $d/unit-tests.txt)"; status=1; }
    note "$v: selftest, budget $budget"
    scripts/versions.sh "$v" selftest --budget "$budget" --seed "$seed" \
      --report "$d/selftest.json" > "$d/selftest.txt" 2>&1
    rc=$?
    [ $rc -ne 0 ] && { note "$v: selftest exited $rc (see $d/selftest.txt)"; status=1; }
  done
  dirs=("$out")
fi

reports=()
for d in "${dirs[@]}"; do
  while IFS= read -r f; do reports+=("$f"); done \
    < <(find "$d" -name crash.json -o -name selftest.json | sort)
done
if [ ${#reports[@]} -eq 0 ]; then
  note "no reports to merge"
  exit 2
fi
mkdir -p "$out"
scripts/versions.sh 0.25 matrix "${reports[@]}" --markdown "$out/matrix.md" --report "$out/matrix.json"
rc=$?
[ $rc -ne 0 ] && [ $status -eq 0 ] && status=$rc
exit $status
