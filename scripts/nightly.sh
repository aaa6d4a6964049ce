#!/usr/bin/env bash
# Nightly crash-recovery campaign, within a time budget:
#   crash campaigns over every durability mode x fault x configuration in
#   scripts/nightly-configs (option profiles, chained cycles, column
#   families, writers, checkpoints), then the WAL
#   recovery-mode matrix, the mutant selftest and, when present, a short
#   fuzz run. Writes reports/nightly/: JSON, JUnit XML (one testcase per
#   mode x fault x profile), a Markdown summary with an SVG chart, and
#   failure artifacts. Exit 1 on any violation, finding or surviving mutant.
#
# Environment: NIGHTLY_BUDGET (seconds, default 3600), NIGHTLY_SEED
# (default: today's date), NIGHTLY_SHARD (I/N: this runner's share of the
# crash campaigns, for a CI matrix), CRASHCHECK_DIR (where databases live).
set -uo pipefail
cd "$(dirname "$0")/.."
budget="${NIGHTLY_BUDGET:-3600}"
seed="${NIGHTLY_SEED:-$(date +%Y%m%d)}"
shard="${NIGHTLY_SHARD:-}"
out="reports/nightly${shard:+/shard-${shard%/*}}"
mkdir -p "$out"
scripts/deps.sh
cargo build --locked --bin crashcheck || exit 2
bin="${CARGO_TARGET_DIR:-target}/debug/crashcheck"

status=0
note() { echo "nightly: $*" >&2; }
share() { awk -v b="$budget" -v f="$1" 'BEGIN { s = int(b * f); if (s < 5) s = 5; print s }'; }

shard_args=()
[ -n "$shard" ] && shard_args=(--shard "$shard")

# 1. Crash campaigns: 65% of the budget, split over the configurations in
#    scripts/nightly-configs (option profiles, fresh and chained, column
#    families with atomic flush and 8 writers, checkpoints/backups/copies with
#    16 writers over 3 column families). The CI soundness gate
#    (tests/soundness.rs) runs every one of them too.
configs=()
while read -r name _gate flags; do
  case "$name" in ''|'#'*) continue ;; esac
  configs+=("$name|$flags")
done < scripts/nightly-configs
per=$(awk -v b="$budget" -v n="${#configs[@]}" 'BEGIN { s = int(b * 0.65 / n); if (s < 5) s = 5; print s }')
reports=()
for c in "${configs[@]}"; do
  profile="${c%%|*}"
  read -r -a args <<< "${c#*|}"
  note "crash campaign '$profile' for ${per}s"
  "$bin" crash --mode all --fault all --duration "${per}s" --seed "$seed" "${args[@]}" "${shard_args[@]}" \
    --report "$out/crash-$profile.json" --junit "$out/crash-$profile.xml" --markdown "$out/crash-$profile.md" \
    --artifacts "$out/artifacts/$profile" > "$out/crash-$profile.txt" 2>&1
  rc=$?
  [ $rc -ne 0 ] && { note "crash campaign '$profile' exited $rc"; status=1; }
  [ -f "$out/crash-$profile.json" ] && reports+=("$out/crash-$profile.json")
done
if [ ${#reports[@]} -gt 0 ]; then
  "$bin" merge-reports --sequential "${reports[@]}" --report "$out/crash.json" --junit "$out/junit.xml" \
    --markdown "$out/crash.md" --svg "$out/chart.svg" > "$out/crash.txt" 2>&1 || status=1
fi

# 2. WAL recovery-mode matrix: 10%.
trials=$(awk -v b="$budget" 'BEGIN { t = int(b / 120); if (t < 2) t = 2; if (t > 50) t = 50; print t }')
note "recovery-mode matrix, $trials trials per cell"
"$bin" recovery-modes --trials "$trials" --seed "$seed" --report "$out/recovery-modes.json" \
  --markdown "$out/recovery-modes.md" > "$out/recovery-modes.txt" 2>&1 || { note "recovery-mode findings"; status=1; }

# 3. Selftest (every mutant must be caught, the control clean): 15%.
note "selftest for $(share 0.15)s"
"$bin" selftest --budget "$(share 0.15)s" --seed "$seed" --report "$out/selftest.json" \
  > "$out/selftest.txt" 2>&1 || { note "selftest failed"; status=1; }

# 4. A short fuzz run, when the fuzz targets exist: 10%.
if [ -x scripts/fuzz.sh ] && [ -d fuzz ]; then
  note "fuzzing for $(share 0.10)s"
  scripts/fuzz.sh "$(share 0.10)" > "$out/fuzz.txt" 2>&1 || { note "fuzz findings"; status=1; }
else
  echo "fuzz targets not present in this checkout" > "$out/fuzz.txt"
fi

# Summary.
{
  echo "# crashcheck nightly ($(date -u +%Y-%m-%dT%H:%MZ), seed $seed, budget ${budget}s${shard:+, shard $shard})"
  echo
  if [ $status -eq 0 ]; then echo "**Result: clean.**"; else echo "**Result: FAILED** (see below)."; fi
  echo
  echo "![cycles and writes lost per mode](chart.svg)"
  echo
  [ -f "$out/crash.md" ] && sed 's/^# crashcheck crash campaign/## Crash campaigns (all profiles)/' "$out/crash.md"
  echo
  echo "## WAL recovery modes"
  echo
  [ -f "$out/recovery-modes.md" ] && cat "$out/recovery-modes.md"
  grep '^FINDING' "$out/recovery-modes.txt" 2>/dev/null | sed 's/^/- /'
  echo
  echo "## Selftest"
  echo
  echo '```'
  cat "$out/selftest.txt" 2>/dev/null
  echo '```'
  echo
  echo "## Fuzz"
  echo
  echo '```'
  tail -n 20 "$out/fuzz.txt" 2>/dev/null
  echo '```'
} > "$out/summary.md"
note "reports in $out (summary.md, junit.xml, crash.json, recovery-modes.json, selftest.json)"
exit $status
