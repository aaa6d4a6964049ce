#!/usr/bin/env bash
# A default crash campaign: every durability mode x every fault, 400 cycles
# (CYCLES=N for another count); reports under reports/campaign/. Extra
# arguments go to `crashcheck crash` (e.g. --chain, --option-profile randomized).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --locked --bin crashcheck
bin="${CARGO_TARGET_DIR:-target}/debug/crashcheck"
mkdir -p reports/campaign
exec "$bin" crash --mode all --fault all --cycles "${CYCLES:-400}" --seed "${CRASHCHECK_SEED:-1}" \
  --report reports/campaign/report.json --junit reports/campaign/junit.xml \
  --markdown reports/campaign/summary.md --artifacts reports/campaign/artifacts "$@"
