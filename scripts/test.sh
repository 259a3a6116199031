#!/usr/bin/env bash
# Everything `make test` needs besides the virtualenv: Debian's Chromium for the browser test (the
# PostgreSQL server is started and stopped by the test fixtures, tests/pg_server.py), then the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    echo "installing Debian's chromium for the browser test..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/tmp/tracker-chromium-install.log 2>&1 \
      || { echo "could not install chromium: see /tmp/tracker-chromium-install.log"; exit 1; }
  else
    echo "Debian's chromium is needed for the browser test: sudo apt-get install chromium"; exit 1
  fi
fi

exec .venv/bin/python -m pytest "$@"
