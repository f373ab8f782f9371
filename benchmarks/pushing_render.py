"""Rendering speed of the built-in pushing set, in one process (frames per second per core).

    python benchmarks/pushing_render.py --image_size=64 --clips=20
    python benchmarks/pushing_render.py --image_size=128 --pushing_crf=0

Renders `--clips` clips of `--clip_length` frames with the `--pushing_*` options (the defaults:
every nuisance on) in this process, after one untimed clip, and prints frames per second: the
physics, the TinyRenderer, the noise and the H.264 round trip together.
"""

import time

import numpy as np
from absl import app, flags

from data_pipelines import pushing

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_integer("image_size", 64, "Frame side (a multiple of 16).")
    flags.DEFINE_integer("clips", 20, "Timed clips.")
    flags.DEFINE_integer("clip_length", pushing.CLIP_LENGTH, "Frames per clip.")
    pushing.define_flags()


def main(argv):
    del argv
    options = pushing.PushingOptions.from_flags(FLAGS.flag_values_dict())
    pushing.generate_clip(0, FLAGS.image_size, FLAGS.clip_length, options)  # loads the models
    started = time.perf_counter()
    for index in range(FLAGS.clips):
        pushing.generate_clip(
            np.random.SeedSequence([1, index]), FLAGS.image_size, FLAGS.clip_length, options
        )
    seconds = time.perf_counter() - started
    frames = FLAGS.clips * FLAGS.clip_length
    print(
        f"{FLAGS.image_size}x{FLAGS.image_size}, {FLAGS.clips} clips of {FLAGS.clip_length} "
        f"frames, {options}: "
        f"{frames / seconds:.0f} frames/s in one process ({seconds / FLAGS.clips:.2f} s a clip)"
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
