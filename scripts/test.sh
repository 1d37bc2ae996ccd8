#!/usr/bin/env bash
# Sets up everything the test suite needs, from the project's own files, then runs it.
# Usage: ./scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# Debian packages some tests use: GNU gettext's msgfmt checks every .po file,
# Chromium opens the rendered mails and web pages.
missing=()
command -v msgfmt >/dev/null 2>&1 || missing+=(gettext)
# Fonts too, so screenshots show Latin and Arabic text rather than empty boxes.
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-liberation fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

exec .venv/bin/python -m pytest "$@"
