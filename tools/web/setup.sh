#!/usr/bin/env bash
# Installs what the web page's tests (tests/test_web.py) need besides pip: Debian's Chromium,
# which Playwright drives headless (never `playwright install`, which downloads a browser), and
# npm, which fetches the pinned LiteRT.js runtime (export/site/package-lock.json) once into
# fgbg's cache. Run from the environment where fgbg is installed (pip install -e ".[test]").
# Without root or apt-get it says what is missing, and those tests are skipped, saying why.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
  || command -v google-chrome >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; then
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "tools/web/setup.sh: cannot install ${need[*]} here (no apt-get or no root):" \
      "tests/test_web.py will be skipped." >&2
    exit 0
  fi
fi
python3 -c "from export import webpage; print('LiteRT.js runtime:', webpage.runtime_modules())"
