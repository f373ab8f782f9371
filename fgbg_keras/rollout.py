"""Controlled generation: the two-pass rollout of docs/method.md, for any number of steps.

Controls are 2x3 affine maps about the object's centroid; `fgbg_keras.mask_ops` says how they
move a mask.
"""

import tensorflow as tf
from keras import ops

from fgbg_keras.mask_ops import binarize, carry_target, identity_controls, warp_masks
from fgbg_keras.models import generators

MASK_MODES = ("carry", "reestimate")
DEFAULT_MASK_MODE = "carry"


def stepped(frame_generator, frame, mask, targets, training=False):
    """A rollout step by step in Python (eager or inside a `tf.function`), to given target
    masks: step k draws from the previous step's output and target mask, with the first frame
    and the previous step's inputs as memory, as `rollout` does.

    Args:
        frame_generator: called as in `rollout`.
        frame, mask: f_0 `[B, H, W, 3]` and m_0 `[B, H, W, 1]`.
        targets: the target mask of each step, a sequence of `[B, H, W, 1]`.
        training: passed to `frame_generator`.

    Returns:
        Per step, `(frame, mask, target, outputs)`: what the step was fed and G's output dict.
    """
    first = previous = (frame, mask)
    steps = []
    for target in targets:
        inputs = generators.rollout_inputs(frame, mask, target, first, previous)
        output = frame_generator(inputs, training=training)
        steps.append((frame, mask, target, output))
        previous = (frame, mask)
        frame, mask = ops.cast(output["frame"], "float32"), target
    return steps


def _check_mask_mode(mask_mode):
    if mask_mode not in MASK_MODES:
        raise ValueError(
            f"`mask_mode` must be one of {MASK_MODES}. Received: mask_mode={mask_mode!r}"
        )


def _stacked(tensor_array):
    """A `tf.TensorArray` of T per-step `[B, ...]` values as one `[B, T, ...]` tensor."""
    values = tensor_array.stack()
    order = [1, 0] + list(range(2, values.shape.rank))
    return tf.transpose(values, order)


def rollout(mask_generator, frame_generator, frames, controls, mask_mode="carry"):
    """Generates T frames from one frame and T controls: the two passes of docs/method.md.

    `m_0 = binarize(M(f_0))`. Step k moves the mask by `controls[:, k]` to the target
    `m_{k+1}`, and draws `f_{k+1} = G(f_k, m_k, m_{k+1})`; G is also given f_0, m_0 and the
    previous step's f_{k-1}, m_{k-1} (f_0, m_0 at step 0; `generators.MEMORY`), which it may
    read. With `mask_mode="carry"` the target becomes the next step's mask; it is computed as
    `m_0` moved by the composition of controls 0..k (`mask_ops.carry_target`). With
    `"reestimate"` the next mask is `binarize(M(f_{k+1}))`.

    Once the target mask is empty (the object has left the frame) G draws the background only:
    the foreground stream is empty, and `"empty"` flags the step. The rollout goes on; with
    `"carry"` a trajectory that returns brings the mask back, but the object's appearance is
    gone from the frames by then.

    Built on `tf.while_loop` with `tf.TensorArray` outputs: one traced graph serves every T, and
    memory other than the outputs does not grow with T. See `make_rollout_fn` for a compiled
    version.

    Args:
        mask_generator: M, called as `M(frames, training=False)` -> masks `[B, H, W, 1]`.
        frame_generator: G, called as `G(inputs, training=False)` -> a dict with `"frame"`
            `[B, H, W, 3]`; `inputs` holds `"frame"`, `"mask"`, `"target_mask"` and the
            memory (`generators.rollout_inputs`).
        frames: f_0, `[B, H, W, 3]` in [-1, 1].
        controls: `[B, T, 2, 3]` affine controls (see `warp_masks`), T >= 1 (may be dynamic).
        mask_mode: `"carry"` or `"reestimate"`.

    Returns:
        A dict of float32 tensors (bool for `"empty"`): `"frames"` `[B, T, H, W, 3]`, the
        generated f_1..f_T; `"masks"` `[B, T, H, W, 1]`, the target mask of each step;
        `"empty"` `[B, T]`, True where that target mask is empty; `"initial_mask"`
        `[B, H, W, 1]`, m_0.
    """
    _check_mask_mode(mask_mode)
    frames = tf.convert_to_tensor(frames, tf.float32)
    controls = tf.convert_to_tensor(controls, tf.float32)
    steps = tf.shape(controls)[1]
    tf.debugging.assert_positive(steps, message="`controls` must hold at least one step.")

    def estimate_mask(frame):
        return binarize(mask_generator(frame, training=False))

    initial_mask = estimate_mask(frames)

    def step(k, frame, mask, previous, total, frames_out, masks_out, empty_out):
        control = controls[:, k]
        if mask_mode == "carry":
            target, total = carry_target(initial_mask, control, total)
        else:
            target = warp_masks(mask, control)
        inputs = generators.rollout_inputs(frame, mask, target, (frames, initial_mask), previous)
        next_frame = tf.cast(frame_generator(inputs, training=False)["frame"], tf.float32)
        next_frame = tf.ensure_shape(next_frame, frame.shape)
        next_mask = target if mask_mode == "carry" else estimate_mask(next_frame)
        next_mask = tf.ensure_shape(next_mask, mask.shape)
        empty = ops.equal(ops.max(target, axis=(1, 2, 3)), 0.0)
        return (
            k + 1,
            next_frame,
            next_mask,
            (frame, mask),
            total,
            frames_out.write(k, next_frame),
            masks_out.write(k, target),
            empty_out.write(k, empty),
        )

    def array(dtype, element):
        return tf.TensorArray(dtype, size=steps, element_shape=element.shape)

    batch = tf.shape(frames)[0]
    loop_vars = (
        tf.constant(0),
        frames,
        initial_mask,
        (frames, initial_mask),
        identity_controls(batch),
        array(tf.float32, frames),
        array(tf.float32, initial_mask),
        array(tf.bool, initial_mask[:, 0, 0, 0]),
    )
    outputs = tf.while_loop(lambda k, *_: k < steps, step, loop_vars)

    return {
        "frames": _stacked(outputs[5]),
        "masks": _stacked(outputs[6]),
        "empty": _stacked(outputs[7]),
        "initial_mask": initial_mask,
    }


def make_rollout_fn(mask_generator, frame_generator, mask_mode="carry", image_size=None):
    """`rollout` compiled once as a `tf.function` for any batch size and any number of steps.

    The input signature leaves the batch and T dimensions unknown, so calls with other T reuse
    one traced graph. Build the networks (call them once) before the first call.

    Args:
        mask_generator: M, as in `rollout`.
        frame_generator: G, as in `rollout`.
        mask_mode: `"carry"` or `"reestimate"`.
        image_size: `None` for any frame size, an int, or a `(height, width)` pair to fix it.

    Returns:
        A `tf.function` `fn(frames, controls)` with `frames` `[B, H, W, 3]` float32 and
        `controls` `[B, T, 2, 3]` float32, returning `rollout`'s dict.
    """
    _check_mask_mode(mask_mode)
    if image_size is None:
        height = width = None
    elif isinstance(image_size, int):
        height = width = image_size
    else:
        height, width = image_size
    signature = [
        tf.TensorSpec([None, height, width, 3], tf.float32, name="frames"),
        tf.TensorSpec([None, None, 2, 3], tf.float32, name="controls"),
    ]

    @tf.function(input_signature=signature)
    def rollout_fn(frames, controls):
        return rollout(mask_generator, frame_generator, frames, controls, mask_mode=mask_mode)

    return rollout_fn
