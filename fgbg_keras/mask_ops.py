"""Mask geometry: binarising, centroids, and moving masks and frames by affine controls.

Coordinates follow the synthetic set: a point is `(x, y) = (column, row)` in pixel units, pixel
`(i, j)` (row i, column j) has its centre at `(j, i)`, and y points down. A control is a 2x3
affine `[L | t]` acting about the mask's own centroid c: a point p goes to `c + L (p - c) + t`.
So `[[1, 0, dx], [0, 1, dy]]` shifts the mask by (dx, dy) pixels, the identity leaves it as it is,
and `L = [[cos a, -sin a], [sin a, cos a]]` turns the object in place by `a` (clockwise on screen,
since y points down).
"""

import numpy as np
import tensorflow as tf
from keras import ops

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
    """The translation that best moves each binarised mask onto the next one (docs/method.md's
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


def resize_scale(from_size, to_size):
    """The (x, y) scale factors `[2]` of resizing an image of `from_size` (height, width) to
    `to_size`; an offset (dx, dy) scales by them."""
    return np.array([to_size[1] / from_size[1], to_size[0] / from_size[0]], np.float32)


def rescale_points(points, from_size, to_size):
    """(x, y) pixel coordinates `[..., 2]` in an image of `from_size` (height, width) moved to
    the same place in the image resized to `to_size`: `(p + 0.5) * scale - 0.5`, since pixel
    centres sit at half-pixels of the resized grid."""
    return (np.asarray(points, np.float32) + 0.5) * resize_scale(from_size, to_size) - 0.5


def clip_translations(masks):
    """`fit_translations` between consecutive masks of clips: `[B, T, H, W, 1]` -> offsets
    `[B, T - 1, 2]`, the parameterized control of docs/method.md."""
    shape = ops.shape(masks)
    batch, length = shape[0], shape[1]
    height, width = masks.shape[2], masks.shape[3]
    fitted = fit_translations(
        ops.reshape(masks[:, :-1], (-1, height, width, 1)),
        ops.reshape(masks[:, 1:], (-1, height, width, 1)),
    )
    return ops.reshape(fitted, (batch, length - 1, 2))


# What may carry the mask along a Phase II training rollout (`--train_controls`): the
# translations of M's masks of the true frames (`fitted_controls`), or the data's labelled offsets
# (`translation_controls`).
TRAIN_CONTROLS = ("fitted", "true")


def fitted_controls(masks):
    """The parameterized controls of clips' masks `[B, T, H, W, 1]`: the translations between
    consecutive masks (`clip_translations`) as affine controls `[B, T - 1, 2, 3]`."""
    return translation_controls(clip_translations(masks))


def fit_offset_map(offsets, steps):
    """The linear map from an object's labelled offsets to the steps of M's masks, fitted by
    least squares with no intercept (a still object makes a still mask): `steps ~ offsets @ A`.

    Labels such as a robot's actions or the whole arm's centroid steps need not move as M's mask
    does (M may hold only the gripper and lower links); the ConvLSTM baseline learns that relation
    from its labels, and this is fgbg's one-matrix version of it.

    Args:
        offsets: labelled offsets `[N, 2]` (dx, dy).
        steps: the mask steps (`fit_translations`) of the same N pairs `[N, 2]`.

    Returns:
        `A`, float32 `[2, 2]`.

    Raises:
        ValueError: when the offsets do not span both axes (too few or degenerate pairs).
    """
    offsets = np.asarray(offsets, np.float64).reshape(-1, 2)
    steps = np.asarray(steps, np.float64).reshape(-1, 2)
    if offsets.shape != steps.shape:
        raise ValueError(f"offsets {offsets.shape} and steps {steps.shape} must be equal.")
    if len(offsets) < 2 or np.linalg.matrix_rank(offsets) < 2:
        raise ValueError(f"{len(offsets)} offsets do not span both axes: nothing to fit.")
    matrix, *_ = np.linalg.lstsq(offsets, steps, rcond=None)
    return matrix.astype(np.float32)


def carry_target(initial_mask, control, total):
    """One step of a carried mask: the step's `control` composed after the `total` of the
    steps before, and `initial_mask` moved by the result. Moving `m_0` by the composition, not
    the previous target by one control, keeps each step's sub-pixel part (a 0.3 px step would
    otherwise never move a binary mask).

    Args:
        initial_mask: m_0 `[B, H, W, 1]`, binarised.
        control: this step's affine controls `[B, 2, 3]`.
        total: the composition of the earlier steps' controls `[B, 2, 3]`
            (`identity_controls` before the first step).

    Returns:
        `(target, total)`: the target mask `[B, H, W, 1]` and the composition including this
        step's control.
    """
    total = compose_controls(control, total)
    return warp_masks(initial_mask, total), total


def shift_images(images, offsets):
    """Moves each image by its offset (dx, dy) in pixels, filling with zeros.

    Bilinear, so a whole-pixel offset moves pixels exactly.

    Args:
        images: `[B, H, W, C]`.
        offsets: `[B, 2]` (dx, dy).

    Returns:
        float32 `[B, H, W, C]`.
    """
    offsets = ops.cast(offsets, "float32")
    one, zero = ops.ones_like(offsets[:, 0]), ops.zeros_like(offsets[:, 0])
    transform = ops.stack([one, zero, -offsets[:, 0], zero, one, -offsets[:, 1], zero, zero], 1)
    return ops.image.affine_transform(
        ops.cast(images, "float32"),
        transform,
        interpolation="bilinear",
        fill_mode="constant",
        fill_value=0,
    )


def shift_whole_pixels(images, offsets):
    """Moves each image by whole pixels, filling with zeros: `out[y, x] = in[y - dy, x - dx]`.

    The exact equal of `shift_images` for whole-pixel offsets (fractions are rounded), built
    from gathers only, so that it runs as TFLite builtins on a phone.

    Args:
        images: `[B, H, W, C]`.
        offsets: `[B, 2]` (dx, dy), rounded to whole pixels.

    Returns:
        float32 `[B, H, W, C]`.
    """
    images = tf.cast(images, tf.float32)
    offsets = tf.cast(tf.round(tf.cast(offsets, tf.float32)), tf.int32)
    shape = tf.shape(images)
    rows = tf.range(shape[1])[None, :] - offsets[:, 1:2]
    cols = tf.range(shape[2])[None, :] - offsets[:, 0:1]
    row_valid = tf.cast((rows >= 0) & (rows < shape[1]), tf.float32)
    col_valid = tf.cast((cols >= 0) & (cols < shape[2]), tf.float32)
    out = tf.gather(images, tf.clip_by_value(rows, 0, shape[1] - 1), axis=1, batch_dims=1)
    out = tf.gather(out, tf.clip_by_value(cols, 0, shape[2] - 1), axis=2, batch_dims=1)
    return out * row_valid[:, :, None, None] * col_valid[:, None, :, None]


def fill_from_surroundings(images, known, levels=8):
    """Fills the unknown pixels of each image with a smooth estimate from the known ones.

    Push-pull: the known pixels are averaged down a pyramid of 2x2 blocks (each level keeps,
    per block, the mean of its known pixels and their fraction), then every level is read
    back up, an unknown pixel taking the bilinearly upsampled estimate of the coarser level.
    Known pixels are returned exactly, a region of one colour fills with that colour, and a
    hole is filled if it is smaller than the `2**levels` blocks of the top level.

    Args:
        images: `[B, H, W, C]`, any size.
        known: `[B, H, W, 1]`, 1 where a pixel is known, 0 where it is to be filled.
        levels: halvings of the pyramid; 8 reaches 1x1 from 256x256.

    Returns:
        float32 `[B, H, W, C]`; zeros where no known pixel is near enough.
    """
    images = ops.cast(images, "float32")
    weights = [ops.cast(known, "float32")]
    sums = [images * weights[0]]
    for _ in range(levels):
        sums.append(ops.average_pool(sums[-1], 2, 2, padding="same"))
        weights.append(ops.average_pool(weights[-1], 2, 2, padding="same"))
    estimate = sums[-1] / ops.maximum(weights[-1], 1e-6)
    for level_sum, level_weight in zip(reversed(sums[:-1]), reversed(weights[:-1])):
        # tf.image.resize, since keras' resize needs a static size and frames may have none.
        coarse = tf.image.resize(estimate, tf.shape(level_sum)[1:3], method="bilinear")
        here = level_sum / ops.maximum(level_weight, 1e-6)
        estimate = ops.where(level_weight > 0, here, coarse)
    return estimate


def erode_masks(masks, pixels):
    """Binary erosion of each binarised mask by a square of side `2 * pixels + 1`.

    A pixel stays in the mask if every pixel within `pixels` (Chebyshev distance) of it is in the
    mask; pixels outside the frame do not count against it, so an object cut by the border keeps
    its pixels along the border.

    Args:
        masks: `[B, H, W, 1]`, binarised at 0.5 first.
        pixels: int >= 0; 0 returns the binarised masks.

    Returns:
        float32 {0, 1} masks `[B, H, W, 1]`.
    """
    # The complement's dilation; pooling ignores the padding, so the border counts as inside.
    return 1.0 - dilate_masks(1.0 - binarize(masks), pixels)


def dilate_masks(masks, pixels):
    """Binary dilation of each binarised mask by a square of side `2 * pixels + 1`: a pixel
    joins the mask if a mask pixel lies within `pixels` of it (Chebyshev distance).

    Args:
        masks: `[B, H, W, 1]`, binarised at 0.5 first.
        pixels: int >= 0; 0 returns the binarised masks.

    Returns:
        float32 {0, 1} masks `[B, H, W, 1]`.
    """
    masks = binarize(masks)
    if not pixels:
        return masks
    height, width = masks.shape[1:3]
    if height is not None and width is not None and pixels >= max(height, width) - 1:
        # Every pixel lies within `pixels` of every other: the whole frame where the mask has
        # a pixel, as the pooling would give, without its (2 * pixels + 1)^2 window.
        return ops.max(masks, axis=(1, 2), keepdims=True) * ops.ones_like(masks)
    return ops.max_pool(masks, 2 * pixels + 1, 1, padding="same")


# Where `paste_foreground` pastes: the target mask, or the current mask moved as its content.
PASTE_REGIONS = ("target", "moved")


def paste_foreground(frames, masks, target_masks, region="target"):
    """Each frame with its object moved to the target mask: the layered view of a step.

    The object's content is moved by the translation fitted between the masks
    (`fit_translations`), rounded to whole pixels, so pasted pixels are exact copies and a
    rollout of many steps does not blur them by resampling. It is pasted inside the target mask
    (`region="target"`), or inside the current mask moved by the same whole pixels
    (`"moved"`: a target that differs from the mask only in shape, as M's masks of two
    frames of a still object on real video do, then moves nothing). Where the object was and
    is no longer (the mask minus where it is pasted): the background filled in from the pixels
    outside both masks (`fill_from_surroundings`). Elsewhere: the frame. Soft masks blend the
    three; equal masks, soft or not (Phase I), give the frame back.

    Args:
        frames: `[B, H, W, C]`.
        masks: `[B, H, W, 1]` in [0, 1], where the object is.
        target_masks: `[B, H, W, 1]` in [0, 1], where it goes.
        region: one of `PASTE_REGIONS`.

    Returns:
        float32 `[B, H, W, C]`; the frame itself where `masks == target_masks` (with
        `"moved"`, wherever the fitted translation rounds to zero).
    """
    if region not in PASTE_REGIONS:
        raise ValueError(f"`region` must be one of {PASTE_REGIONS}. Received: region={region!r}")
    frames = ops.cast(frames, "float32")
    masks = ops.cast(masks, "float32")
    target_masks = ops.cast(target_masks, "float32")
    translation = fit_translations(masks, target_masks)
    moved = shift_whole_pixels(frames, translation)
    if region == "moved":
        target_masks = shift_whole_pixels(masks, translation)
    uncovered = ops.maximum(masks - target_masks, 0.0)
    filled = fill_from_surroundings(frames, 1.0 - ops.maximum(masks, target_masks))
    return (1.0 - target_masks - uncovered) * frames + target_masks * moved + uncovered * filled
