"""The one-step model of a trained run for a phone, converted to TFLite.

One function at the run's fixed frame size S, float32 frames in [-1, 1]:
`frame` `[1, S, S, 3]`, `mask` `[1, S, S, 1]` and `control` `[1, 2]` (dx, dy in model pixels,
rounded to whole pixels) -> `Identity` the next frame `[1, S, S, 3]` and `Identity_1` its mask
`[1, S, S, 1]`: one rollout step with the mask carried. Given an empty mask (the first call),
the model finds the object itself with the mask network. Only TFLite builtin ops are used (no
Flex delegate); the weights are constants of the file. Mixed-precision runs are restored in
float32, since bfloat16 convolutions have no TFLite kernel.
"""

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from fgbg_keras import mask_ops
from fgbg_keras.models import generators

QUANTIZATIONS = ("none", "float16", "dynamic")


def step_function(mask_generator, frame_generator, image_size):
    """The one-step `tf.function` that the file holds (see the module docstring).

    Raises:
        ValueError: for a frame generator that reads the rollout's memory.
    """
    generators.check_memoryless(frame_generator, "The one-step TFLite model")

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
    """The TFLite flatbuffer (bytes) of a `runs.RestoredRun`'s one-step model, and the
    `tf.function` it was converted from (for parity checks). The run must be restored in float32
    (`runs.restore_networks(model_dir, precision="float32")`): bfloat16 convolutions have no
    TFLite kernel."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"--quantize={quantize!r}: must be one of {QUANTIZATIONS}.")
    if run.mask_generator.dtype_policy.compute_dtype != "float32":
        raise ValueError(
            "The TFLite export needs float32 networks: restore the run with "
            "runs.restore_networks(model_dir, precision='float32')."
        )
    step = step_function(run.mask_generator, run.frame_generator, run.config.model.image_size)
    return to_tflite(step, quantize), step


def to_tflite(step, quantize="none"):
    """The TFLite flatbuffer (bytes) of a `step_function`, builtin ops only."""
    frozen = convert_variables_to_constants_v2(step.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], step)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()
