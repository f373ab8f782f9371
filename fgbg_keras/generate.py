"""Generates a video from one image and a trajectory of controls.

    python -m fgbg_keras.generate --model_dir=runs/synthetic/phase2 --image=in.png \
        --trajectory="2,0;2,0;0,-1" --steps=30 --output=out.gif [--mask_mode=carry|reestimate] \
        [--overlay] [--scale=4]
    python -m fgbg_keras.generate --model_dir=runs/synthetic/phase2 --image=in.jpg \
        --affine_file=controls.txt --steps=12 --output=out.mp4

Any image, resized to the model's frame size; controls in the image's pixels, the last one
repeated up to `--steps` (`fgbg_keras.generation`; `fgbg_keras.controls` says how
`--trajectory` and `--affine_file` are written).

Writes `.gif` (10 fps, looping), `.mp4` (H.264, yuv420p) or `.png` (all frames side by side); frame
0 is the input frame, then one frame per step. If the object leaves the frame, a warning names the
step and the following frames show the background only. Prints the path written and the time per
generated frame.
"""

import sys

import numpy as np
from absl import app, flags

from fgbg_keras import controls as user_controls
from fgbg_keras import flags as fgbg_flags
from fgbg_keras import mask_ops
from fgbg_keras.generation import generate

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        if (FLAGS.trajectory is None) == (FLAGS.affine_file is None):
            raise ValueError("Give exactly one of --trajectory and --affine_file.")
        if FLAGS.trajectory is not None:
            offsets = user_controls.parse_trajectory(FLAGS.trajectory)
            controls = np.asarray(mask_ops.translation_controls(offsets))
        else:
            controls = user_controls.read_affine_file(FLAGS.affine_file)
        result = generate(
            FLAGS.model_dir,
            FLAGS.image,
            controls,
            FLAGS.steps,
            FLAGS.output,
            mask_mode=FLAGS.mask_mode,
            overlay=FLAGS.overlay,
            scale=FLAGS.scale,
        )
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    # The path and the timing are this command's output, not log messages.
    sys.stdout.write(
        f"Wrote {result['output']} ({FLAGS.steps} generated frames, "
        f"{result['ms_per_frame']:.1f} ms per frame)\n"
    )


if __name__ == "__main__":
    fgbg_flags.define_generate_flags()
    flags.adopt_module_key_flags(fgbg_flags)
    app.run(main)
