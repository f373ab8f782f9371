#!/usr/bin/env bash
# Builds every Bazel target and runs a few Bazel tests, offline (tools/bazel/README.md).
# Run from an environment where fgbg is installed (pip install -e ".[test]"): its python is the
# one the targets run with. Installs Debian's Bazel 4.2.3 with apt-get when there is no bazel.
#   bash tools/bazel/check.sh                 # build //... and the tests in QUICK_TESTS
#   bash tools/bazel/check.sh //tests:test_x  # build //... and these tests instead
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
QUICK_TESTS=(//tests:test_mask_ops //tests:test_schedules //tests:test_preview)

if ! command -v bazel >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bazel-bootstrap bazel-rules-java
fi
if [ ! -d /usr/share/bazel/rules/java ]; then
  echo "tools/bazel/check.sh: /usr/share/bazel/rules/java is missing: apt-get install bazel-rules-java" >&2
  exit 1
fi
python="$(command -v python3)"
"$python" -c "import fgbg_keras, keras" 2>/dev/null || {
  echo "tools/bazel/check.sh: $python cannot import fgbg_keras: activate the environment where" \
    'fgbg is installed (pip install -e ".[test]") first.' >&2
  exit 1
}
cat > .bazelrc.local <<LOCAL
# Written by tools/bazel/check.sh for this checkout and interpreter.
common --override_repository=rules_cc=$root/tools/bazel/rules_cc
common --override_repository=remote_coverage_tools=$root/tools/bazel/remote_coverage_tools
common --override_repository=rules_java=/usr/share/bazel/rules/java
build --python_path=$python
LOCAL
bazel build //...
if [ $# -gt 0 ]; then
  bazel test "$@"
else
  bazel test "${QUICK_TESTS[@]}"
fi
