"""Evaluation metrics on batches of frames and masks.

Frames are float in [-1, 1], `[B, H, W, 3]`; masks are `[B, H, W, 1]`. Each function returns
one value per sample, `[B]`, so callers can average over a split or report a spread.
"""

import tensorflow as tf

from fgbg_keras.mask_ops import mask_centroids


def _to_unit(frames):
    return (tf.cast(frames, tf.float32) + 1.0) / 2.0


def psnr(prediction, target):
    """PSNR in dB of frames in [-1, 1], computed on [0, 1] like `tf.image.psnr(max_val=1)`."""
    return tf.image.psnr(_to_unit(prediction), _to_unit(target), max_val=1.0)


# The squared error below which `masked_psnr` stops (100 dB): equal pixels give a finite figure.
_MIN_SQUARED_ERROR = 1e-10


def masked_psnr(prediction, target, weights):
    """PSNR in dB of frames in [-1, 1] over the pixels where `weights` `[B, H, W, 1]` is 1 (the
    mean squared error on [0, 1] weighted by it); NaN for a sample with no weight."""
    weights = tf.cast(weights, tf.float32)
    error = tf.reduce_mean(tf.square(_to_unit(prediction) - _to_unit(target)), -1, keepdims=True)
    total = tf.reduce_sum(weights, axis=[1, 2, 3])
    mse = tf.reduce_sum(weights * error, axis=[1, 2, 3]) / tf.maximum(total, 1e-12)
    value = -10.0 * tf.math.log(tf.maximum(mse, _MIN_SQUARED_ERROR)) / tf.math.log(10.0)
    return tf.where(total > 0, value, float("nan"))


def ssim(prediction, target):
    """SSIM of frames in [-1, 1], computed on [0, 1] like `tf.image.ssim(max_val=1)`.

    Frames smaller than the 11x11 Gaussian window use a window of their own size.
    """
    size = min(int(prediction.shape[1]), int(prediction.shape[2]), 11)
    return tf.image.ssim(_to_unit(prediction), _to_unit(target), max_val=1.0, filter_size=size)


def mask_iou(mask, target, threshold=0.5):
    """Intersection over union of `mask > threshold` and `target > 0.5`, per sample.

    A sample where both masks are empty counts as a perfect match (IoU 1).
    """
    predicted = tf.cast(mask > threshold, tf.float32)
    truth = tf.cast(tf.cast(target, tf.float32) > 0.5, tf.float32)
    intersection = tf.reduce_sum(predicted * truth, axis=[1, 2, 3])
    union = tf.reduce_sum(tf.maximum(predicted, truth), axis=[1, 2, 3])
    return tf.where(union > 0, intersection / tf.maximum(union, 1.0), tf.ones_like(union))


def control_error(masks, true_centroids):
    """Distance in pixels between each mask's centroid and where the object truly is.

    Args:
        masks: `[B, H, W, 1]`, binarised at 0.5 (e.g. binarize(M(generated frame))).
        true_centroids: `[B, 2]`, the object's true (x, y) = (column, row) centroid.

    Returns:
        `(error, found)`: float32 `[B]`, NaN where the mask is empty (no object was found), and
        bool `[B]`, False there.
    """
    centroids, found = mask_centroids(masks)
    error = tf.norm(centroids - tf.cast(true_centroids, tf.float32), axis=-1)
    return tf.where(found, error, float("nan")), found
