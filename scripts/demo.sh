#!/usr/bin/env bash
# Sets up postbode in .venv and runs the main job on the sample project.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/python send.py build newsletters/2018-07-resultaten.yaml "$@"
