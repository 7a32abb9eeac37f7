#!/usr/bin/env bash
# Generates a Python client from proto/, starts the enrollment service on a free port with a
# throw-away SQLite database, and runs examples/python/session.py against it. Proves the
# contracts work outside Rust and that the README's example session is right.
#
# Needs: python3 with the packages in examples/python/requirements.txt (PYTHON selects it),
# and a built binary (BIN, default target/debug/trialops-enrollment).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BIN=${BIN:-target/debug/trialops-enrollment}
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid"; wait "$server_pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/gen"
"$PYTHON" -m grpc_tools.protoc -I proto --python_out="$work/gen" --grpc_python_out="$work/gen" \
  proto/trialops/common/v1/common.proto proto/trialops/enrollment/v1/enrollment.proto \
  proto/trialops/dosing/v1/dosing.proto proto/trialops/outcomes/v1/outcomes.proto

port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TRIALOPS_LISTEN_ADDR="127.0.0.1:$port" TRIALOPS_DATA_DIR="$work/data" "$BIN" >"$work/server.log" 2>&1 &
server_pid=$!
PYTHONPATH="$work/gen" "$PYTHON" examples/python/session.py "127.0.0.1:$port"
kill -TERM "$server_pid"
wait "$server_pid"
server_pid=""
echo "python client session: ok"
