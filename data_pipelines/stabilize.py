"""Global camera-motion compensation: the frames of a window aligned to its first by translation.

The method assumes a static background. Where the camera shakes, every edge changes between two
frames, so the change map d and the background loss L_bg point the masks at edges. With
`--align_frames=translation` each training window is aligned to its first frame before d and the
losses see it: the translation of frame k is estimated by Lucas-Kanade on the whole frame
(gray, a few Gauss-Newton steps, Cauchy weights so that the moving object, a minority of the
pixels, barely pulls it), and frame k is resampled at it (bilinear; the border it uncovers takes
the nearest pixel).

Reference: B. D. Lucas and T. Kanade, "An iterative image registration technique", 1981.
"""

import dataclasses

import tensorflow as tf

from data_pipelines.change_map import GRAY_WEIGHTS
from fgbg_common.options import Options, option

ALIGN_MODES = ("none", "translation")
ITERATIONS = 12
# Scale of the Cauchy weights, on [-1, 1] frames: residuals well above it (the moving object)
# count little.
_ROBUST_SCALE = 0.03
# Pixels within this distance of an outlier are left out of the last steps.
_BAND = 2
# Translations are clipped to this many pixels: shake, not motion.
MAX_SHIFT = 4.0


def shift_images(images, shifts):
    """Images `[B, H, W, C]` resampled at `x + shift`: `shifts` `[B, 2]` is (dx, dy) in pixels,
    so content at (x + dx, y + dy) moves to (x, y)."""
    batch = tf.shape(images)[0]
    ones, zeros = tf.ones([batch]), tf.zeros([batch])
    transforms = tf.stack(
        [ones, zeros, shifts[:, 0], zeros, ones, shifts[:, 1], zeros, zeros], axis=1
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )


def _gray(frames):
    return tf.reduce_sum(frames * tf.constant(GRAY_WEIGHTS, frames.dtype), axis=-1, keepdims=True)


def estimate_shifts(reference, frames, iterations=ITERATIONS):
    """The (dx, dy) `[B, 2]` that best align each of `frames` `[B, H, W, 3]` to `reference`
    (broadcast over B): `shift_images(frames, shifts)` ≈ reference outside what moves."""
    reference = _gray(tf.cast(reference, tf.float32))
    moving = _gray(tf.cast(frames, tf.float32))
    shifts = tf.zeros([tf.shape(moving)[0], 2])
    # The interior only: the border has no neighbours for the gradient, and fills on warping.
    inner = (slice(None), slice(2, -2), slice(2, -2), slice(None))
    for iteration in range(iterations):
        warped = shift_images(moving, shifts)
        dx = (warped[:, 1:-1, 2:] - warped[:, 1:-1, :-2]) / 2.0
        dy = (warped[:, 2:, 1:-1] - warped[:, :-2, 1:-1]) / 2.0
        dx, dy = dx[:, 1:-1, 1:-1], dy[:, 1:-1, 1:-1]
        residual = (warped - reference)[inner]
        if iteration < iterations // 2:
            # Graduated: the weights' scale shrinks from 8 to 1 times _ROBUST_SCALE, so the
            # first steps see the whole frame and later ones little of what moves on its own.
            scale = _ROBUST_SCALE * 8.0 ** (1.0 - 2.0 * iteration / iterations)
            weight = 1.0 / (1.0 + tf.square(residual / scale))
        else:
            # Then the pixels that still disagree, and a band around them (the moving object's
            # rim, whose gradients are strong where its residual happens to be small), are left
            # out altogether.
            outlier = tf.cast(tf.abs(residual) > 3.0 * _ROBUST_SCALE, tf.float32)
            band = tf.nn.max_pool2d(outlier, 2 * _BAND + 1, 1, "SAME")
            weight = 1.0 - band

        def total(x, weight=weight):
            return tf.reduce_sum(weight * x, axis=[1, 2, 3])

        a, b, c = total(dx * dx), total(dx * dy), total(dy * dy)
        p, q = total(dx * residual), total(dy * residual)
        determinant = a * c - b * b
        safe = tf.maximum(determinant, 1e-6)
        step = tf.stack([(c * p - b * q) / safe, (a * q - b * p) / safe], axis=1)
        step = tf.where((determinant > 1e-6)[:, None], step, 0.0)
        # warped(x) - reference(x) ≈ grad · step: moving by -step cancels the residual.
        shifts = tf.clip_by_value(shifts - step, -MAX_SHIFT, MAX_SHIFT)
    return shifts


def align_to_first(frames):
    """A window `[F, H, W, 3]` (float, in [-1, 1]) with frames 1..F-1 aligned to frame 0."""
    shifts = estimate_shifts(frames[:1], frames)
    return shift_images(frames, shifts)


@dataclasses.dataclass
class AlignOptions(Options):
    """Camera-motion compensation (`--align_frames`)."""

    align_frames: str = option(
        "none",
        "Camera-motion compensation before d and the losses that assume a still background: "
        "translation aligns every training window to its first frame (global Lucas-Kanade, "
        "data_pipelines/stabilize.py), and the evaluation's d alike; none (the draft).",
        choices=ALIGN_MODES,
    )

    @property
    def align(self):
        """Whether windows are aligned to their first frame (`--align_frames`)."""
        return self.align_frames == "translation"
