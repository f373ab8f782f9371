"""How much faster a model trains in bfloat16 than in float32 on this machine.

    python benchmarks/bfloat16_speedup.py [--runs=4] -- [train.py's flags]

for instance `-- --flagfile=configs/synthetic.flags` for the model of the README's main job. Each
run starts `train_step.py` twice with the same flags, once with `--precision=float32` and once
with `--precision=mixed_bfloat16`, and times the two processes in alternation (`--rounds` blocks
of `--steps` steps each, one process at a time, the order flipped every round, and every other
run starting bfloat16's first: `timed_blocks.alternate`), so that a drift in the machine's speed,
or the place of each, meets both. It prints each run's pairs/s in both precisions and their ratio,
then the median ratio. A CPU without bfloat16 instructions emulates it: there the ratio is far
below 1 (docs/results/distribution.md).
"""

# Before TensorFlow: fgbg_keras turns its oneDNN kernels on (fgbg_keras/__init__.py).
import fgbg_keras  # noqa: F401  # isort: skip

import os
import sys

from absl import app, flags

from benchmarks import timed_blocks
from fgbg_keras import hardware

FLAGS = flags.FLAGS
HERE = os.path.dirname(os.path.abspath(__file__))
PRECISIONS = ("float32", "mixed_bfloat16")


def define_flags():
    timed_blocks.define_flags("precision")


def commands(train_flags):
    """`train_step.py`'s command line in each precision, with `train_flags` (train.py's flags)."""
    for flag in train_flags:
        if flag.lstrip("-").split("=")[0] in ("precision", "steps", "warmup", "blocks"):
            raise app.UsageError(
                f"{flag}: set by this benchmark (--steps and --warmup are its own flags)"
            )
    command = [
        sys.executable,
        os.path.join(HERE, "train_step.py"),
        *train_flags,
        *timed_blocks.timing_args(),
    ]
    return {precision: [*command, f"--precision={precision}"] for precision in PRECISIONS}


def main(argv):
    train_flags = argv[1:]
    both = commands(train_flags)
    print(f"cpu     {hardware.cpu().describe()}")
    print(f"step    train_step.py {' '.join(train_flags) or '(the defaults)'}")
    print(f"timing  {FLAGS.rounds} x {FLAGS.steps} steps of each per run, alternated")
    print(f"{'run':>3s} {'float32 pairs/s':>16s} {'bfloat16 pairs/s':>17s} {'bf16 / f32':>11s}")

    def report(run_index, rates, ratio):
        print(
            f"{run_index + 1:3d} {rates['float32']:16.1f} {rates['mixed_bfloat16']:17.1f} "
            f"{ratio:10.2f}x",
            flush=True,
        )

    median = timed_blocks.median_ratio(
        both, "mixed_bfloat16", "float32", FLAGS.runs, FLAGS.rounds, report
    )
    print(f"median  {median:.2f}x", flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
