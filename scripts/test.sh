#!/usr/bin/env bash
# Runs the whole test suite from a fresh checkout: the Python environment in .venv (installed
# only when it is missing or pyproject.toml changed since), Debian's Chromium for the browser
# tests when we may install it, then pytest (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv/.civicfeed-installed
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[test]'
    echo "$wanted" > "$stamp"
fi

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "note: Chromium is not installed, so the browser tests will be skipped" \
            "(install it with: sudo apt-get install chromium)" >&2
    fi
fi

if [ -z "${CIVICFEED_TEST_POSTGRES:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "note: no PostgreSQL server (CIVICFEED_TEST_POSTGRES unset, Debian's postgresql not" \
        "installed), so the PostgreSQL store tests will be skipped" \
        "(install it with: sudo apt-get install postgresql)" >&2
fi

exec .venv/bin/python -m pytest "$@"
