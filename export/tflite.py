r"""Exports the one-step model of a trained run as TFLite, for on-device preview.

    python -m export.tflite --model_dir=runs/synthetic/phase2 --output=model.tflite \
        [--quantize=none|float16|dynamic]

One function at the run's fixed frame size S, float32 frames in [-1, 1]:
`frame` `[1, S, S, 3]`, `mask` `[1, S, S, 1]` and `control` `[1, 2]` (dx, dy in model pixels,
rounded to whole pixels) -> `Identity` the next frame `[1, S, S, 3]` and `Identity_1` its mask
`[1, S, S, 1]`: one rollout step with the mask carried. Given an empty mask (the first call),
the model finds the object itself with the mask network. Only TFLite builtin ops are used (no
Flex delegate); the weights are constants of the file. Mixed-precision runs are rebuilt in
float32, since bfloat16 convolutions have no TFLite kernel.
"""

import sys

import keras
import tensorflow as tf
from absl import app, flags
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from fgbg_keras import mask_ops
from fgbg_keras.models.factory import build_frame_generator, build_mask_generator
from fgbg_keras.training import loop

QUANTIZATIONS = ("none", "float16", "dynamic")


def float32_networks(run):
    """The networks of a `loop.RestoredRun` rebuilt with the float32 policy and its weights."""
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        mask_generator = build_mask_generator(run.config.model)
        frame_generator = build_frame_generator(run.config.model, run.phase)
    finally:
        keras.config.set_dtype_policy(policy)
    size = run.config.model.image_size
    frame = tf.zeros([1, size, size, 3])
    mask = mask_generator(frame)
    frame_generator({"frame": frame, "mask": mask, "target_mask": mask})
    mask_generator.set_weights(run.mask_generator.get_weights())
    frame_generator.set_weights(run.frame_generator.get_weights())
    return mask_generator, frame_generator


def step_function(mask_generator, frame_generator, image_size):
    """The one-step `tf.function` that the file holds (see the module docstring)."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([1, image_size, image_size, 3], tf.float32, name="frame"),
            tf.TensorSpec([1, image_size, image_size, 1], tf.float32, name="mask"),
            tf.TensorSpec([1, 2], tf.float32, name="control"),
        ]
    )
    def step(frame, mask, control):
        mask = mask_ops.binarize(mask)
        mask = tf.cond(
            tf.reduce_max(mask) > 0.0,
            lambda: mask,
            lambda: mask_ops.binarize(mask_generator(frame, training=False)),
        )
        target = mask_ops.shift_whole_pixels(mask, control)
        inputs = {"frame": frame, "mask": mask, "target_mask": target}
        return {"frame": frame_generator(inputs, training=False)["frame"], "mask": target}

    return step


def convert(run, quantize="none"):
    """The TFLite flatbuffer (bytes) of a `loop.RestoredRun`'s one-step model, and the float32
    `tf.function` it was converted from (for parity checks)."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"--quantize={quantize!r}: must be one of {QUANTIZATIONS}.")
    step = step_function(*float32_networks(run), run.config.model.image_size)
    frozen = convert_variables_to_constants_v2(step.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert(), step


FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        run = loop.restore_networks(FLAGS.model_dir)
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
    flags.DEFINE_string("model_dir", None, "The run directory of train.py.")
    flags.DEFINE_string("output", None, "The .tflite file to write.")
    flags.DEFINE_enum("quantize", "none", QUANTIZATIONS, "Weight quantisation of the file.")
    flags.mark_flags_as_required(["model_dir", "output"])
    app.run(main)
