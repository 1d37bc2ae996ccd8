#!/usr/bin/env bash
# Sets up everything the test suite needs, from the project's own files, then runs it.
# Usage: ./scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# Debian packages the tests use (scripts/debian-packages.txt), installed when missing.
missing=()
while read -r package; do
  case "$package" in ""|"#"*) continue ;; esac
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done < scripts/debian-packages.txt
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  # Postfix asks how to configure itself: the tests configure their own instance.
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The W3C Nu HTML checker for the mail's HTML (run with Debian's Java), from the npm registry.
VNU_VERSION=26.9.27
if ! grep -qs "\"version\": \"$VNU_VERSION\"" .venv/vnu/node_modules/vnu-jar/package.json; then
  npm install --silent --no-audit --no-fund --prefix .venv/vnu "vnu-jar@$VNU_VERSION" >/dev/null
fi

exec .venv/bin/python -m pytest "$@"
