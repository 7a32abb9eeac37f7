#!/usr/bin/env bash
# The performance suite in one command: every benchmark, each printing its figures beside the
# baselines measured in the same run, then the JSON of all of them in one file.
#
#   scripts/bench.sh [OUT]        # OUT defaults to target/bench/results.json
#
# Needs PostgreSQL and pgbench (TRIALOPS_TEST_POSTGRES_URL, default the local server as CI uses
# it) and python3 for the reference statistics (lifelines, scipy and pandas are installed into a
# virtual environment at $TRIALOPS_BENCH_VENV, default /tmp/trialops-statsbench). Nothing here
# asserts a timing: the figures are for reading. Takes about 30 minutes on a 2-core machine, most
# of it loading and integrating a million rows for the list benchmark (TRIALOPS_BENCH_ROWS makes
# that smaller); TRIALOPS_BENCH_SECONDS sets each measurement's length.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/bench/results.json}"
mkdir -p "$(dirname "$out")"
export TRIALOPS_TEST_POSTGRES_URL="${TRIALOPS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
command -v pgbench >/dev/null || { echo "pgbench is not installed (it ships with PostgreSQL)"; exit 1; }
psql "$TRIALOPS_TEST_POSTGRES_URL" -Atc 'select 1' >/dev/null || { echo "PostgreSQL at $TRIALOPS_TEST_POSTGRES_URL is unreachable"; exit 1; }

venv="${TRIALOPS_BENCH_VENV:-/tmp/trialops-statsbench}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import lifelines, scipy, pandas' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check lifelines scipy pandas
fi
export TRIALOPS_BENCH_PYTHON="$venv/bin/python"

logs="$(dirname "$out")"
run() {
  local name="$1"; shift
  echo "== $name"
  cargo bench "$@" 2>/dev/null | tee "$logs/$name.txt"
}
run read_path -p trialops-stack --bench read_path
run lists -p trialops-stack --bench lists
run write_path -p trialops-enrollment --bench write_path
run record_administration -p trialops-stack --bench record_administration
run trial_report -p trialops-stack --bench trial_report
run analysis -p trialops-outcomes --bench analysis

# Each benchmark's last line is its figures as JSON.
python3 - "$logs" "$out" <<'EOF'
import json, sys
logs, out = sys.argv[1], sys.argv[2]
results = {}
for name in ["read_path", "lists", "write_path", "record_administration", "trial_report", "analysis"]:
    lines = [l for l in open(f"{logs}/{name}.txt") if l.startswith("{")]
    results[name] = json.loads(lines[-1]) if lines else None
json.dump(results, open(out, "w"), indent=1)
print(f"all figures: {out}")
EOF
