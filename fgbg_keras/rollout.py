"""Controlled generation: masks moved by controls, and the two-pass rollout of METHOD.md.

Coordinates follow the synthetic set: a point is `(x, y) = (column, row)` in pixel units, pixel
`(i, j)` (row i, column j) has its centre at `(j, i)`, and y points down. A control is a 2x3
affine `[L | t]` acting about the mask's own centroid c: a point p goes to `c + L (p - c) + t`.
So `[[1, 0, dx], [0, 1, dy]]` shifts the mask by (dx, dy) pixels, the identity leaves it as it is,
and `L = [[cos a, -sin a], [sin a, cos a]]` turns the object in place by `a` (clockwise on screen,
since y points down).
"""

import tensorflow as tf
from keras import ops

MASK_MODES = ("carry", "reestimate")
DEFAULT_MASK_MODE = "carry"
# Controls whose linear part has a smaller |determinant| collapse the mask: the warp is empty.
_MIN_DETERMINANT = 1e-6


def binarize(masks, threshold=0.5):
    """Masks as float32 {0, 1}: 1 where `masks > threshold`."""
    return ops.cast(ops.greater(ops.cast(masks, "float32"), threshold), "float32")


def mask_centroids(masks):
    """The centroid of each mask's pixels above 0.5.

    Args:
        masks: `[B, H, W, 1]`.

    Returns:
        `(centroids, valid)`: `centroids` float32 `[B, 2]`, the (x, y) = (column, row) mean of
        the pixels `> 0.5` (the synthetic set's convention); `valid` bool `[B]`, False for an
        empty mask, whose centroid is then the image centre `((W - 1) / 2, (H - 1) / 2)`.
    """
    masks = binarize(masks)[..., 0]
    shape = ops.shape(masks)
    rows = ops.cast(ops.arange(shape[1]), "float32")
    cols = ops.cast(ops.arange(shape[2]), "float32")
    count = ops.sum(masks, axis=(1, 2))
    x_sum = ops.sum(ops.sum(masks, axis=1) * cols, axis=1)
    y_sum = ops.sum(ops.sum(masks, axis=2) * rows, axis=1)
    valid = count > 0
    safe_count = ops.maximum(count, 1.0)
    centre_x = (ops.cast(shape[2], "float32") - 1.0) / 2.0
    centre_y = (ops.cast(shape[1], "float32") - 1.0) / 2.0
    x = ops.where(valid, x_sum / safe_count, centre_x)
    y = ops.where(valid, y_sum / safe_count, centre_y)
    return ops.stack([x, y], axis=-1), valid


def translation_controls(offsets):
    """Offsets `[..., 2]` (dx, dy) as affine controls `[..., 2, 3]`: `[[1, 0, dx], [0, 1, dy]]`."""
    offsets = ops.cast(offsets, "float32")
    dx, dy = offsets[..., 0], offsets[..., 1]
    one, zero = ops.ones_like(dx), ops.zeros_like(dx)
    return ops.stack(
        [ops.stack([one, zero, dx], axis=-1), ops.stack([zero, one, dy], axis=-1)], axis=-2
    )


def identity_controls(batch_size):
    """`batch_size` identity controls `[B, 2, 3]`."""
    return translation_controls(ops.zeros((batch_size, 2)))


def compose_controls(second, first):
    """The control of `first` then `second`, both about the moving object's centroid.

    `first = [L1 | t1]` takes the centroid c to `c + t1`; `second = [L2 | t2]` then acts about
    that point. Together: `p -> c + t1 + t2 + L2 L1 (p - c)`, i.e. `[L2 L1 | t1 + t2]` about c.
    """
    linear = ops.matmul(second[..., :2], first[..., :2])
    translation = first[..., 2:] + second[..., 2:]
    return ops.concatenate([linear, translation], axis=-1)


def warp_masks(masks, controls):
    """Moves each binarised mask by its control, about the mask's own centroid.

    A point p of the mask goes to `c + L (p - c) + t` (see the module docstring). Pixels are
    sampled bilinearly from the inverse map, outside the frame counts as 0, and the result is
    binarised at 0.5 again, so a shift by whole pixels is exact (a shifted copy with zeros filled
    in), the identity returns the mask unchanged, and an empty mask stays empty. A control whose
    linear part is singular (|det L| < 1e-6) gives an empty mask.

    Args:
        masks: `[B, H, W, 1]`, binarised at 0.5 first.
        controls: `[B, 2, 3]` affine controls `[L | t]` on (x, y) = (column, row).

    Returns:
        float32 {0, 1} masks `[B, H, W, 1]`.
    """
    masks = binarize(masks)
    controls = ops.cast(controls, "float32")
    centroids, _ = mask_centroids(masks)
    cx, cy = centroids[:, 0], centroids[:, 1]
    a, b, tx = controls[:, 0, 0], controls[:, 0, 1], controls[:, 0, 2]
    c, d, ty = controls[:, 1, 0], controls[:, 1, 1], controls[:, 1, 2]
    determinant = a * d - b * c
    invertible = ops.abs(determinant) >= _MIN_DETERMINANT
    determinant = ops.where(invertible, determinant, 1.0)
    # The inverse map, output -> input: p = c + L^-1 (q - c - t). It is written as
    # L^-1 q + (c - L^-1 c) - L^-1 t so that for L = I the offset is exactly -t.
    i00, i01 = d / determinant, -b / determinant
    i10, i11 = -c / determinant, a / determinant
    offset_x = (cx - (i00 * cx + i01 * cy)) - (i00 * tx + i01 * ty)
    offset_y = (cy - (i10 * cx + i11 * cy)) - (i10 * tx + i11 * ty)
    zero = ops.zeros_like(cx)
    # keras' affine_transform takes the projective coefficients of the output -> input map on
    # (column, row) pixel-index coordinates: in = (a0 x + a1 y + a2, b0 x + b1 y + b2).
    transform = ops.stack([i00, i01, offset_x, i10, i11, offset_y, zero, zero], axis=-1)
    warped = ops.image.affine_transform(
        masks, transform, interpolation="bilinear", fill_mode="constant", fill_value=0
    )
    keep = ops.cast(invertible, "float32")[:, None, None, None]
    return binarize(warped) * keep


def fit_translations(masks, next_masks):
    """The translation that best moves each binarised mask onto the next one (METHOD.md's
    "parameterized control").

    The least-squares translation between two point sets of equal weight,
    `argmin_t sum_ij |p_i + t - q_j|^2`, is the difference of their means, so the fit is
    `centroid(next_mask) - centroid(mask)`.

    Args:
        masks: `[B, H, W, 1]`.
        next_masks: `[B, H, W, 1]`.

    Returns:
        float32 offsets `[B, 2]` (dx, dy); zero where either mask is empty.
    """
    start, start_valid = mask_centroids(masks)
    end, end_valid = mask_centroids(next_masks)
    valid = ops.logical_and(start_valid, end_valid)[:, None]
    return ops.where(valid, end - start, 0.0)


def _check_mask_mode(mask_mode):
    if mask_mode not in MASK_MODES:
        raise ValueError(
            f"`mask_mode` must be one of {MASK_MODES}. Received: mask_mode={mask_mode!r}"
        )


def rollout(mask_generator, frame_generator, frames, controls, mask_mode="carry"):
    """Generates T frames from one frame and T controls: the two passes of METHOD.md.

    `m_0 = binarize(M(f_0))`. Step k moves the mask by `controls[:, k]` to the target
    `m_{k+1}`, and draws `f_{k+1} = G(f_k, m_k, m_{k+1})`. With `mask_mode="carry"` the target
    becomes the next step's mask; it is computed as `m_0` moved by the composition of controls
    0..k (`compose_controls`), which is the same map as moving the previous target by control k,
    without rounding each step's sub-pixel part away (a 0.3 px step would otherwise never move
    a binary mask). With `"reestimate"` the next mask is `binarize(M(f_{k+1}))`.

    Once the target mask is empty (the object has left the frame) G draws the background only:
    the foreground stream is empty, and `"empty"` flags the step. The rollout goes on; with
    `"carry"` a trajectory that returns brings the mask back, but the object's appearance is
    gone from the frames by then.

    Built on `tf.while_loop` with `tf.TensorArray` outputs: one traced graph serves every T, and
    memory other than the outputs does not grow with T. See `make_rollout_fn` for a compiled
    version.

    Args:
        mask_generator: M, called as `M(frames, training=False)` -> masks `[B, H, W, 1]`.
        frame_generator: G, called as `G({"frame", "mask", "target_mask"}, training=False)` ->
            a dict with `"frame"` `[B, H, W, 3]`.
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

    def step(k, frame, mask, total, frames_out, masks_out, empty_out):
        control = controls[:, k]
        if mask_mode == "carry":
            total = compose_controls(control, total)
            target = warp_masks(initial_mask, total)
        else:
            target = warp_masks(mask, control)
        inputs = {"frame": frame, "mask": mask, "target_mask": target}
        next_frame = tf.cast(frame_generator(inputs, training=False)["frame"], tf.float32)
        next_frame = tf.ensure_shape(next_frame, frame.shape)
        next_mask = target if mask_mode == "carry" else estimate_mask(next_frame)
        next_mask = tf.ensure_shape(next_mask, mask.shape)
        empty = ops.equal(ops.max(target, axis=(1, 2, 3)), 0.0)
        return (
            k + 1,
            next_frame,
            next_mask,
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
        identity_controls(batch),
        array(tf.float32, frames),
        array(tf.float32, initial_mask),
        array(tf.bool, initial_mask[:, 0, 0, 0]),
    )
    outputs = tf.while_loop(lambda k, *_: k < steps, step, loop_vars)

    def stacked(tensor_array):
        values = tensor_array.stack()
        order = [1, 0] + list(range(2, values.shape.rank))
        return tf.transpose(values, order)

    return {
        "frames": stacked(outputs[4]),
        "masks": stacked(outputs[5]),
        "empty": stacked(outputs[6]),
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
