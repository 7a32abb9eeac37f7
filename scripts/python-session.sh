#!/usr/bin/env bash
# Generates a Python client from proto/, starts the three services on ports they pick
# themselves with throw-away SQLite databases, and runs the examples in examples/python against
# them. Proves the contracts work outside Rust and that the README's examples are right.
#
# Needs: python3 with the packages in examples/python/requirements.txt (PYTHON selects it),
# and built binaries in TARGET (default target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TARGET=${TARGET:-target/debug}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/gen"
"$PYTHON" -m grpc_tools.protoc -I proto --python_out="$work/gen" --grpc_python_out="$work/gen" \
  proto/trialops/common/v1/common.proto proto/trialops/enrollment/v1/enrollment.proto \
  proto/trialops/dosing/v1/dosing.proto proto/trialops/outcomes/v1/outcomes.proto

# Each service binds port 0 itself and names the address in its JSON "listening" line: no port
# is picked here and released for another process to take.
listening() { # log file -> host:port, waiting up to 30 s
  for _ in $(seq 1 300); do
    addr=$("$PYTHON" -c 'import json,sys
for line in open(sys.argv[1]):
    try: entry = json.loads(line)
    except ValueError: continue
    if entry.get("message") == "listening": print(entry["address"]); break' "$1" 2>/dev/null || true)
    if [ -n "$addr" ]; then echo "$addr"; return 0; fi
    sleep 0.1
  done
  echo "no listening line in $1" >&2; cat "$1" >&2; return 1
}
export TRIALOPS_LISTEN_ADDR=127.0.0.1:0 TRIALOPS_DATA_DIR="$work/data" TRIALOPS_LOG_FORMAT=json
"$TARGET/trialops-enrollment" >"$work/enrollment.log" 2>&1 &
pids+=($!)
enrollment=$(listening "$work/enrollment.log")
TRIALOPS_ENROLLMENT_URL="http://$enrollment" "$TARGET/trialops-dosing" >"$work/dosing.log" 2>&1 &
pids+=($!)
dosing=$(listening "$work/dosing.log")
TRIALOPS_ENROLLMENT_URL="http://$enrollment" TRIALOPS_DOSING_URL="http://$dosing" \
  "$TARGET/trialops-outcomes" >"$work/outcomes.log" 2>&1 &
pids+=($!)
outcomes=$(listening "$work/outcomes.log")

export PYTHONPATH="$work/gen:examples/python"
"$PYTHON" examples/python/session.py "$enrollment"
"$PYTHON" examples/python/pharmacy.py "$enrollment" "$dosing"
"$PYTHON" examples/python/statistician.py "$enrollment" "$dosing" "$outcomes"
for pid in "${pids[@]}"; do kill -TERM "$pid"; wait "$pid"; done
pids=()
echo "python client sessions: ok"
