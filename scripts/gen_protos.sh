#!/usr/bin/env bash
# Generate the Python gRPC stubs from protos/ into service/api/v1/ (or into the folder given as $1).
# The stubs are checked in; tests/test_protos.py regenerates them into a temporary folder and fails if the
# checked-in files differ, so they can never be stale.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${1:-service/api/v1}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$PYTHON" -m grpc_tools.protoc -Iprotos \
  --python_out="$TMP" --pyi_out="$TMP" --grpc_python_out="$TMP" \
  protos/atelier/v1/atelier.proto
mkdir -p "$OUT"
# protoc writes atelier/v1/*.py importing "from atelier.v1 import ..."; the package lives at
# service.api.v1, so rewrite that one import (the descriptor keeps the proto path for reflection).
for f in atelier_pb2.py atelier_pb2.pyi atelier_pb2_grpc.py; do
  sed -e 's/^from atelier\.v1 import /from service.api.v1 import /' "$TMP/atelier/v1/$f" > "$OUT/$f"
done
