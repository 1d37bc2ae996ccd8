#!/usr/bin/env bash
# Sets up postbode in .venv and runs the main job on the sample project:
# the sample newsletter, localised per subscriber, sent to every sample
# subscriber through the outbox (one .eml per mail under outbox/). No server needed.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/python send.py send newsletters/2018-07-resultaten.yaml --segment everyone --yes "$@"
