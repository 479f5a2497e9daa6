#!/usr/bin/env bash
# Installs what the browser tests of the clinic's staff pages (tests/browser) need on a fresh
# machine of this kind, and fails loudly if something cannot be had:
#   - Debian's chromium at /usr/bin/chromium (apt-get, as root, only if it is missing; playwright
#     drives this system browser, `playwright install` is never run)
#   - playwright and pytest from tests/browser/requirements.txt
#   - axe-core from tests/browser/package-lock.json (npm ci into tests/browser/node_modules)
# Safe to run repeatedly.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { echo ".ci/browser-setup.sh: $*" >&2; exit 1; }

python="${PYTHON:-python3}"
chromium=/usr/bin/chromium
command -v "$python" >/dev/null || die "$python not found"
command -v npm >/dev/null || die "npm not found (axe-core comes from npm: apt-get install npm)"

if [[ ! -x "$chromium" ]]; then
    [[ "$(id -u)" -eq 0 ]] || die "$chromium is missing and this is not root: run as root, or apt-get install chromium first"
    echo "==> apt-get install chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || die "apt-get update failed"
    apt-get install -y -q chromium || die "apt-get install chromium failed"
fi

echo "==> pip install -r tests/browser/requirements.txt"
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/browser/requirements.txt \
    || die "pip install of the browser test requirements failed"

echo "==> npm ci --prefix tests/browser"
npm ci --prefix tests/browser --no-audit --no-fund || die "npm ci of tests/browser (axe-core) failed"

echo "==> checking playwright, chromium and axe-core"
"$python" -c 'import playwright, pytest' || die "playwright/pytest still not importable after pip install"
"$chromium" --version || die "$chromium does not run"
[[ -f tests/browser/node_modules/axe-core/axe.min.js ]] \
    || die "tests/browser/node_modules/axe-core/axe.min.js is missing after npm ci"
echo "axe-core $(sed -n 's/^ *"version": "\(.*\)",$/\1/p' tests/browser/node_modules/axe-core/package.json | head -1)"

echo "browser setup done"
