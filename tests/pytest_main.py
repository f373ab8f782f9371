"""Runs one test file under pytest: the `main` of each Bazel py_test (tests/BUILD)."""

import os
import sys

import pytest

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    # No cache folder: Bazel's runfiles tree is read-only. One process: Bazel runs the files
    # side by side already.
    args = [os.path.join(here, sys.argv[1]), "-q", "-p", "no:cacheprovider", "-n", "0"]
    sys.exit(pytest.main(args))
