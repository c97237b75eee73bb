#!/usr/bin/env bash
# The main job on a fresh machine: install into .venv, then run atelier (default: `atelier serve`,
# gRPC on :50051 and REST + /metrics on :8080 until SIGTERM / Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
if [ "$#" -eq 0 ]; then
  set -- serve
fi
exec .venv/bin/atelier "$@"
