"""The change map d of a pair of frames: Phase I's label-free target for the masks.

d marks the pixels that change between f_t and f_{t+1}. It is computed with the data, beside
each pair (`pipeline.pairs`), and the sparsity loss compares the masks' size with its size.

Reference: arXiv 2111.12747, section 3.3; `METHOD.md`, Losses.
"""

import tensorflow as tf

# BT.601 luma weights (the reference implementation has a typo, 0.144, for blue).
GRAY_WEIGHTS = (0.299, 0.587, 0.114)
DIFF_MODES = ("gray", "maxchannel")


def frame_difference_mask(frame, next_frame, threshold=0.04, mode="gray"):
    """Marks the pixels that change between two frames.

    Args:
        frame: float tensor [..., H, W, 3] in [-1, 1].
        next_frame: float tensor of the same shape.
        threshold: a pixel changes when its difference exceeds this value (frames in [-1, 1]).
        mode: `"gray"`, |gray(next) - gray(frame)| with BT.601 weights, or `"maxchannel"`, the
            largest absolute difference over the three channels.

    Returns:
        A float32 tensor [..., H, W, 1] holding 1.0 where the frame changed, else 0.0.
    """
    if mode not in DIFF_MODES:
        raise ValueError(f"`mode` must be one of {DIFF_MODES}. Received: mode={mode!r}")
    delta = tf.cast(next_frame, tf.float32) - tf.cast(frame, tf.float32)
    if mode == "gray":
        weights = tf.constant(GRAY_WEIGHTS, dtype=tf.float32)
        change = tf.abs(tf.reduce_sum(delta * weights, axis=-1, keepdims=True))
    else:
        change = tf.reduce_max(tf.abs(delta), axis=-1, keepdims=True)
    return tf.cast(change > threshold, tf.float32)
