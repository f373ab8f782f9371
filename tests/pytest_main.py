"""Runs one test file under pytest: the `main` of each Bazel py_test (tests/BUILD)."""

import os
import sys

import pytest

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    # No cache folder: Bazel's runfiles tree is read-only.
    sys.exit(pytest.main([os.path.join(here, sys.argv[1]), "-q", "-p", "no:cacheprovider"]))
