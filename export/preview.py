r"""Previews a TFLite model of `export.tflite` on a desktop, driven as a phone drives it.

    python -m export.preview --model=model.tflite --image=in.png --trajectory="1,0;1,0" \
        --steps=40 --output=out.gif [--overlay] [--scale=4] [--threads=2]

The LiteRT interpreter (`--threads` threads) runs the one-step model in a loop, as an app would
(`export.litert`). The image is resized to the model's fixed input size by the training
preprocessing, and the preview says so when its size differs. `--trajectory` is "dx,dy" per step
in pixels of the image, the last step repeating up to `--steps` (as in `fgbg_keras.generate`).
Writes `.gif`, `.mp4` or `.png` at the model's size times `--scale`, frame 0 being the input, and
prints the time per step.
"""

import sys

from absl import app, flags

from export.litert import preview

FLAGS = flags.FLAGS


def define_flags():
    """This command's flags."""
    from fgbg_keras import flags as fgbg_flags

    flags.DEFINE_string("model", None, "A .tflite file written by export.tflite.")
    flags.DEFINE_string("image", None, "The first frame: an image file of any size.")
    fgbg_flags.define_trajectory_flag(default="1,0")
    flags.DEFINE_integer("steps", 40, "Frames to generate.")
    flags.DEFINE_string("output", None, "Output file: .gif, .mp4 or .png (a strip of frames).")
    fgbg_flags.define_display_flags(scale=4)
    flags.DEFINE_integer("threads", 2, "LiteRT interpreter threads (XNNPACK).")
    flags.mark_flags_as_required(["model", "image", "output"])
    flags.adopt_module_key_flags(fgbg_flags)


def main(argv):
    from fgbg_keras.controls import parse_trajectory

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        result = preview(
            FLAGS.model,
            FLAGS.image,
            parse_trajectory(FLAGS.trajectory),
            FLAGS.steps,
            FLAGS.output,
            overlay=FLAGS.overlay,
            scale=FLAGS.scale,
            threads=FLAGS.threads,
        )
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    size = result["image_size"]
    lines = []
    if result["resized_from"] is not None:
        height, width = result["resized_from"]
        lines.append(
            f"{FLAGS.image} is {width}x{height}; this model takes {size}x{size} frames, so the "
            f"image was resized to {size}x{size} (export a model of another size for other "
            "frames)."
        )
    lines.append(
        f"Wrote {result['output']} ({FLAGS.steps} generated frames at {size}x{size}): "
        f"{result['ms_per_frame']:.1f} ms per frame (median; the first step, which finds the "
        f"object, {result['first_ms']:.1f} ms), {FLAGS.threads or 'default'} LiteRT threads."
    )
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    define_flags()
    app.run(main)
