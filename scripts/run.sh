#!/usr/bin/env bash
# The main job on a fresh machine: install into .venv, then run atelier (default: classify a sample photo).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
if [ "$#" -eq 0 ]; then
  set -- classify docs/samples/chelsea.jpg
fi
exec .venv/bin/atelier "$@"
