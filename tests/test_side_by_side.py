import json
import os
import subprocess
import sys

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
    for flag in ("--mask_ngf=16", "--generator_filters=8,16", "--image_size=64", "--steps=10"):
        assert flag in fgbg and flag in reference
    assert "--blocks=4" in fgbg and "--blocks=4" in reference
    assert "--precision=mixed_bfloat16" in fgbg and "--precision=bfloat16" in reference
    assert "--reference=REF" in reference
    for choice in side_by_side.REFERENCE_CHOICES:
        assert choice in fgbg
