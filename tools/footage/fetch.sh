#!/usr/bin/env bash
# Fetches two real still-camera videos that fgbg's recipe for real footage is developed and
# tested on, from Debian's opencv-doc package (OpenCV's sample data, about 95 MB; no other
# download): a hand moving a box above a table (box.mp4, 640x480, 30 fps, 455 frames) and
# pedestrians on a campus walkway (vtest.avi, 768x576, 10 fps, 795 frames). They are written to
# data/footage/ (or $FGBG_FOOTAGE). Run it once; it does nothing when both are there. Without
# apt-get it says so, and the tests that read them are skipped, saying why.
set -euo pipefail
cd "$(dirname "$0")/../.."

dest="${FGBG_FOOTAGE:-data/footage}"
if [ -s "$dest/box.mp4" ] && [ -s "$dest/vtest.avi" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "tools/footage/fetch.sh: no apt-get or dpkg here, so no opencv-doc:" \
    "the tests on real footage will be skipped." >&2
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# `apt-get download` needs the package lists; a fresh machine has none until an update.
if ! (cd "$work" && apt-get download -qq opencv-doc 2>/dev/null); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -z "$sudo" ] || sudo -n true 2>/dev/null; then
    $sudo apt-get update -qq
  fi
  (cd "$work" && apt-get download -qq opencv-doc)
fi
dpkg -x "$work"/opencv-doc_*.deb "$work/pkg"
doc="$work/pkg/usr/share/doc/opencv-doc"
mkdir -p "$dest"
gunzip -c "$doc/opencv4/html/box.mp4.gz" > "$dest/box.mp4"
cp "$doc/examples/data/vtest.avi" "$dest/vtest.avi"
echo "Real footage: $dest/box.mp4, $dest/vtest.avi"
