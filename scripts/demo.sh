#!/usr/bin/env bash
# Install carecollect into ./.venv and run its main job on the embedded default (SQLite in
# ./carecollect-data, no other service). Extra arguments go to `carecollect demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/carecollect demo --data-dir "${CARECOLLECT_DATA_DIR:-carecollect-data}" "$@"
