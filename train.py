r"""Trains fgbg.

    python train.py --phase=1 --flagfile=configs/synthetic.flags --model_dir=runs/synthetic/phase1
    python train.py --phase=2 --flagfile=configs/synthetic_phase2.flags \
        --init_from=runs/synthetic/phase1 --model_dir=runs/synthetic/phase2

Phase 1 learns the foreground masks and the frame generator together, with no labels, on the
built-in synthetic video set. Phase 2 freezes the mask network and fine-tunes the frame generator
to draw the object where a target mask says, with PatchGAN discriminators; then the object can be
steered (`python -m fgbg_keras.generate`). Run a phase again with the same --model_dir to resume
from its last checkpoint. TensorBoard: `tensorboard --logdir <model_dir>`. `python train.py
--help` lists every flag of ours (`fgbg_keras.flags` defines them).
"""

import os
import sys

from absl import app, flags, logging

from fgbg_keras import distribute, run_guard, runs
from fgbg_keras import flags as fgbg_flags
from fgbg_keras.evaluation import evaluator
from fgbg_keras.training import loop, phases

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    phase = phases.get(FLAGS.phase)
    try:
        config = phase.validate(fgbg_flags.config_from_flags())
        runs.check_model_dir(FLAGS.model_dir)
        loop.require_init_from(phase, FLAGS.init_from)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    # Under --strategy=multi_worker, only the chief writes the run's files and evaluates.
    chief = distribute.is_chief(config.train.strategy)
    if not chief:
        _train(config, phase)
        return
    # One process writes a run directory (`run_guard.sole_writer`): a second is refused before
    # it writes anything, flags.json included.
    try:
        with run_guard.sole_writer(FLAGS.model_dir):
            fgbg_flags.write_flags(FLAGS.model_dir)
            _train(config, phase)
            _report(phase)
    except run_guard.RunDirectoryBusy as error:
        raise app.UsageError(str(error)) from None


def _train(config, phase):
    try:
        loop.train_and_evaluate(config, FLAGS.model_dir, phase.name, init_from=FLAGS.init_from)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    except (loop.TrainingDiverged, run_guard.CheckpointNotWritten) as error:
        logging.error("%s", error)
        sys.exit(f"error: {error}")


def _report(phase):
    """What the run gave, and where to look."""
    if not phase.fgbg_networks:
        sys.stdout.write(phase.next_steps(FLAGS.model_dir))
    elif FLAGS.evaluate:
        sys.stdout.write(evaluator.evaluate_and_report(FLAGS.model_dir))
    checkpoints = os.path.join(FLAGS.model_dir, runs.CHECKPOINT_DIR)
    logging.info("Checkpoints: %s", checkpoints)
    sys.stdout.write(
        f"\nCheckpoints: {checkpoints}\nTensorBoard: tensorboard --logdir {FLAGS.model_dir}\n"
    )


if __name__ == "__main__":
    fgbg_flags.define_train_flags()
    flags.adopt_module_key_flags(fgbg_flags)
    flags.mark_flag_as_required("model_dir")
    app.run(main)
