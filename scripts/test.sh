#!/usr/bin/env bash
# The test command: installs missing system packages, then runs the whole
# test suite (unit, property/state-machine, CLI end-to-end, quick selftest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --locked "$@"
