#!/usr/bin/env bash
# Runs the whole test suite from a fresh checkout: the Python environment in .venv, Debian's
# Chromium for the browser tests, then pytest (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "The browser tests need Chromium: sudo apt-get install chromium" >&2
        exit 1
    fi
fi

exec .venv/bin/python -m pytest "$@"
