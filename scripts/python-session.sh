#!/usr/bin/env bash
# Generates a Python client from proto/, starts the three services on free
# ports with throw-away SQLite databases, and runs the examples in examples/python against
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

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
enrollment_port=$(free_port)
dosing_port=$(free_port)
outcomes_port=$(free_port)
TRIALOPS_LISTEN_ADDR="127.0.0.1:$enrollment_port" TRIALOPS_DATA_DIR="$work/data" \
  "$TARGET/trialops-enrollment" >"$work/enrollment.log" 2>&1 &
pids+=($!)
TRIALOPS_LISTEN_ADDR="127.0.0.1:$dosing_port" TRIALOPS_DATA_DIR="$work/data" \
  TRIALOPS_ENROLLMENT_URL="http://127.0.0.1:$enrollment_port" \
  "$TARGET/trialops-dosing" >"$work/dosing.log" 2>&1 &
pids+=($!)
TRIALOPS_LISTEN_ADDR="127.0.0.1:$outcomes_port" TRIALOPS_DATA_DIR="$work/data" \
  TRIALOPS_ENROLLMENT_URL="http://127.0.0.1:$enrollment_port" TRIALOPS_DOSING_URL="http://127.0.0.1:$dosing_port" \
  "$TARGET/trialops-outcomes" >"$work/outcomes.log" 2>&1 &
pids+=($!)

export PYTHONPATH="$work/gen:examples/python"
"$PYTHON" examples/python/session.py "127.0.0.1:$enrollment_port"
"$PYTHON" -c "import grpc; grpc.channel_ready_future(grpc.insecure_channel('127.0.0.1:$dosing_port')).result(timeout=30)"
"$PYTHON" examples/python/pharmacy.py "127.0.0.1:$enrollment_port" "127.0.0.1:$dosing_port"
"$PYTHON" examples/python/statistician.py "127.0.0.1:$enrollment_port" "127.0.0.1:$dosing_port" "127.0.0.1:$outcomes_port"
for pid in "${pids[@]}"; do kill -TERM "$pid"; wait "$pid"; done
pids=()
echo "python client sessions: ok"
