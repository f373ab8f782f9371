r"""Trains and evaluates the ablation grid at a fixed budget per run.

    python -m fgbg_keras.ablate --flagfile=configs/synthetic.flags --budget_minutes=2 \
        --seeds=2 --output=runs/ablation

`fgbg_keras.ablation` says which rows there are, how `--budget_minutes` becomes a
number of steps and what is written to `--output`. Every training flag of train.py applies to
every run (not `--phase`, `--init_from`, `--model_dir` or `--evaluate`: each run is Phase I in its
own folder, evaluated by the grid).
"""

import os
import sys

from absl import app, flags

from fgbg_keras import ablation
from fgbg_keras import flags as fgbg_flags
from fgbg_keras.training import phases

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = phases.get(1).validate(fgbg_flags.config_from_flags())
        if config.train.strategy != "default":
            raise ValueError(
                f"--strategy={config.train.strategy}: the ablation times and runs its grid on "
                "one device; train a chosen row with train.py under a strategy instead."
            )
        if FLAGS.budget_minutes <= 0:
            raise ValueError(f"--budget_minutes={FLAGS.budget_minutes}: must be > 0.")
        seeds = [int(s) for s in FLAGS.seeds_list] if FLAGS.seeds_list else list(range(FLAGS.seeds))
        if len(seeds) < 1:
            raise ValueError(f"--seeds={FLAGS.seeds}: must be >= 1.")
        os.makedirs(FLAGS.output, exist_ok=True)
        summary = ablation.run_grid(
            config, FLAGS.budget_minutes, seeds, FLAGS.output, FLAGS.ablation_rollout_steps
        )
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    sys.stdout.write(ablation.format_table(summary, config))
    sys.stdout.write(f"\nWritten to {os.path.join(FLAGS.output, 'ablation.md')}\n")


if __name__ == "__main__":
    fgbg_flags.define_ablate_flags()
    flags.adopt_module_key_flags(fgbg_flags)
    app.run(main)
