#!/usr/bin/env bash
# Ensure what the console tests need is installed (idempotent; needs root for apt):
#   Debian's chromium + a CJK font (for Chinese screenshots), and Playwright for Python in .venv
#   WITHOUT its browser download: the tests drive /usr/bin/chromium through executable_path.
# Used by .ci/run; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[console.sh] $*" >&2; }
VENV=${VENV:-.venv}

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q "ok installed" || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! "$VENV/bin/python" -c "import playwright" >/dev/null 2>&1; then
  log "installing playwright into $VENV (no browser download)"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$VENV/bin/pip" install -q --disable-pip-version-check playwright
fi

chromium --version >&2
"$VENV/bin/python" -c "import playwright, importlib.metadata as m; print('playwright', m.version('playwright'))" >&2
log "ready"
