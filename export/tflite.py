r"""Exports the one-step model of a trained run as TFLite, for on-device preview.

    python -m export.tflite --model_dir=runs/synthetic/phase2 --output=model.tflite \
        [--quantize=none|float16|dynamic]

`export.step_model` says what the file holds: one rollout step at the run's frame size, builtin
ops only, frame + mask + control in, next frame + mask out.
"""

import sys

from absl import app, flags

from export.step_model import QUANTIZATIONS, convert
from fgbg_keras import flags as fgbg_flags
from fgbg_keras import runs

FLAGS = flags.FLAGS


def define_flags():
    """This command's flags."""
    fgbg_flags.define_export_flags("The .tflite file to write.")
    flags.DEFINE_enum("quantize", "none", QUANTIZATIONS, "Weight quantisation of the file.")
    flags.adopt_module_key_flags(fgbg_flags)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        run = runs.restore_networks(FLAGS.model_dir, precision="float32")
        model, _ = convert(run, FLAGS.quantize)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    with open(FLAGS.output, "wb") as f:
        f.write(model)
    size = run.config.model.image_size
    sys.stdout.write(
        f"Wrote {FLAGS.output} ({len(model) / 2**20:.1f} MiB, {size}x{size}, "
        f"quantize={FLAGS.quantize}).\n"
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
