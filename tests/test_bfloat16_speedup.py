import json
import subprocess
import sys

# In a process of its own: the benchmark's flags would clash with train.py's here.
CODE = """
import json, sys
from absl import app
from benchmarks import bfloat16_speedup as b
b.define_flags()
rest = b.FLAGS(sys.argv)[1:]
try:
    print(json.dumps(b.commands(rest)))
except app.UsageError as error:
    print(json.dumps(str(error)))
"""


def commands(*args):
    done = subprocess.run(
        [sys.executable, "-c", CODE, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_both_precisions_run_the_same_training_flags_block_by_block():
    runs = commands("--rounds=3", "--steps=7", "--", "--flagfile=configs/synthetic.flags")
    assert sorted(runs) == ["float32", "mixed_bfloat16"]
    for precision, command in runs.items():
        assert command[1].endswith("benchmarks/train_step.py")
        assert command[2:] == [
            "--flagfile=configs/synthetic.flags",
            "--steps=7",
            "--warmup=3",
            "--blocks=3",
            f"--precision={precision}",
        ]


def test_a_precision_among_the_training_flags_is_refused():
    assert "--precision=float32: set by this benchmark" in commands("--", "--precision=float32")
    assert "--steps=5: set by this benchmark" in commands("--", "--steps=5")
