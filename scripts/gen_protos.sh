#!/usr/bin/env bash
# Generate the Python gRPC stubs from protos/: atelier/v1 into service/api/v1/ (or into the folder given
# as $1) and the Open Inference Protocol (inference/) into service/api/inference/ (or $2).
# The stubs are checked in; tests/test_protos.py regenerates them into a temporary folder and fails if the
# checked-in files differ, so they can never be stale.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${1:-service/api/v1}
OUT_V2=${2:-service/api/inference}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$PYTHON" -m grpc_tools.protoc -Iprotos \
  --python_out="$TMP" --pyi_out="$TMP" --grpc_python_out="$TMP" \
  protos/atelier/v1/atelier.proto protos/inference/open_inference_grpc.proto
mkdir -p "$OUT" "$OUT_V2"
# protoc writes atelier/v1/*.py importing "from atelier.v1 import ..."; the package lives at
# service.api.v1, so rewrite that one import (the descriptor keeps the proto path for reflection).
for f in atelier_pb2.py atelier_pb2.pyi atelier_pb2_grpc.py; do
  sed -e 's/^from atelier\.v1 import /from service.api.v1 import /' "$TMP/atelier/v1/$f" > "$OUT/$f"
done
# The same import rewrite for inference/, and its messages go into a descriptor pool of their own: their
# names (inference.ModelInferRequest, ...) are also defined by tritonclient's stubs of Triton's
# grpc_service.proto, and two files defining one name in the default pool fail to import together.
# The wire format does not depend on the pool; only server reflection (default pool) does not list it.
for f in open_inference_grpc_pb2.py open_inference_grpc_pb2.pyi open_inference_grpc_pb2_grpc.py; do
  sed -e 's/^from inference import /from service.api.inference import /' \
    -e 's/^DESCRIPTOR = _descriptor_pool\.Default()\.AddSerializedFile(/POOL = _descriptor_pool.DescriptorPool()\nDESCRIPTOR = POOL.AddSerializedFile(/' \
    "$TMP/inference/$f" > "$OUT_V2/$f"
done
