import json
import os
import subprocess
import sys

import pytest

from benchmarks import side_by_side


def test_both_implementations_time_the_same_networks_and_fgbg_the_references_step():
    # In a process of its own: the benchmark's flags would clash with train.py's here.
    code = (
        "import json, sys; from benchmarks import side_by_side as s; s.define_flags(); "
        "s.FLAGS(sys.argv); print(json.dumps(s.commands('bfloat16')))"
    )
    args = ["--reference=REF", "--torch_python=TORCH", "--mask_ngf=16", "--generator_filters=8,16"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    commands = json.loads(done.stdout.strip().splitlines()[-1])
    fgbg, reference = commands["fgbg"], commands["reference"]
    assert reference[:2] == [
        "TORCH",
        os.path.join(side_by_side.HERE, "reference_phase1.py"),
    ]
    for flag in ("--mask_ngf=16", "--generator_filters=8,16", "--image_size=64", "--steps=20"):
        assert flag in fgbg and flag in reference
    assert "--precision=mixed_bfloat16" in fgbg and "--precision=bfloat16" in reference
    assert "--reference=REF" in reference
    for choice in side_by_side.REFERENCE_CHOICES:
        assert choice in fgbg


def test_a_run_reports_its_pairs_per_second_and_a_failed_run_is_named():
    printing = [
        sys.executable,
        "-c",
        "print('step time  5 ms'); print('throughput   12.5 pairs/s')",
    ]
    assert side_by_side.throughput("fgbg", printing) == 12.5
    with pytest.raises(SystemExit, match=r"the reference benchmark failed \(exit 3\)"):
        side_by_side.throughput("reference", [sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(SystemExit, match="the fgbg benchmark failed"):
        side_by_side.throughput("fgbg", [sys.executable, "-c", "print('no figure')"])
