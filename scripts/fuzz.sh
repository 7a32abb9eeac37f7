#!/usr/bin/env bash
# Fuzzes every RPC of enrollment, dosing and outcomes for a bounded time (default 30 s) with
# requests generated from the contracts and mutated at the byte level; prints the inputs run per
# service, the answers by code, and the findings. Exits 1 on any finding.
#
#   scripts/fuzz.sh [seconds] [extra trialops-fuzz options, e.g. --seed 42 --workers 8]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
cargo run --quiet -p trialops-fuzz -- --seconds "$seconds" "$@"
