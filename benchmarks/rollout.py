"""Generation speed: milliseconds per generated frame of the compiled rollout, per frame size.

    python benchmarks/rollout.py --flagfile=configs/synthetic.flags
    python benchmarks/rollout.py --flagfile=configs/synthetic.flags --generator=unet \
        --sizes=64,128 --rollout_steps=30 --batch=1

The networks are the ones the flags describe, with fresh weights (speed does not depend on
them); every size in `--sizes` must be divisible by the networks' downsampling. Each row times
`--repeats` calls of `rollout.make_rollout_fn` (two passes per frame, the `generate` command's
path) after one untimed call, and reports the median call divided by the frames it generated.
"""

# Before TensorFlow: fgbg_keras turns its oneDNN kernels on (fgbg_keras/__init__.py).
import fgbg_keras  # noqa: F401  # isort: skip

import os
import statistics
import sys
import time

import tensorflow as tf
from absl import app, flags

from fgbg_keras import flags as fgbg_flags
from fgbg_keras import mask_ops, rollout
from fgbg_keras.models.factory import build_networks
from fgbg_keras.training import loop

FLAGS = flags.FLAGS


def define_flags():
    # The network flags of train.py, so that a flagfile describes the networks timed.
    fgbg_flags.define_config_flags()
    flags.adopt_module_key_flags(fgbg_flags)
    flags.DEFINE_list("sizes", ["64", "128"], "Frame sizes to time.")
    flags.DEFINE_integer("rollout_steps", 30, "Frames generated per call.")
    flags.DEFINE_integer("batch", 1, "Trajectories generated together.")
    flags.DEFINE_integer("repeats", 5, "Timed calls per row; the median is reported.")


def time_rollout(config, size, mask_mode):
    """Median seconds of one rollout call of `FLAGS.rollout_steps` frames at `size`."""
    mask_generator, frame_generator = build_networks(config.model, create_weights=True)
    frames = tf.random.uniform([FLAGS.batch, size, size, 3], -1.0, 1.0, seed=0)
    offsets = tf.ones([FLAGS.batch, FLAGS.rollout_steps, 2])
    controls = mask_ops.translation_controls(offsets)
    fn = rollout.make_rollout_fn(mask_generator, frame_generator, mask_mode, image_size=size)
    fn(frames, controls)["frames"].numpy()
    times = []
    for _ in range(FLAGS.repeats):
        start = time.perf_counter()
        fn(frames, controls)["frames"].numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv):
    del argv
    try:
        config = fgbg_flags.config_from_flags()
        sizes = [int(s) for s in FLAGS.sizes]
        for size in sizes:
            config.model.image_size = size
            build_networks(config.validate().model)  # checks the size suits the networks
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    loop.setup_runtime(config)
    lines = [
        f"generator {config.model.generator}, precision {config.train.precision}, "
        f"batch {FLAGS.batch}, {FLAGS.rollout_steps} frames per call, "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()} threads",
        f"{'size':>6}{'mask_mode':>12}{'ms/frame':>10}{'frames/s':>10}",
    ]
    for size in sizes:
        config.model.image_size = size
        for mask_mode in rollout.MASK_MODES:
            seconds = time_rollout(config, size, mask_mode)
            per_frame = seconds / (FLAGS.rollout_steps * FLAGS.batch)
            lines.append(f"{size:>6}{mask_mode:>12}{1000 * per_frame:>10.2f}{1 / per_frame:>10.1f}")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    define_flags()
    app.run(main)
