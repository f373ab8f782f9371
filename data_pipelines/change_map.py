"""The change map d of a pair of frames: Phase I's label-free target for the masks.

d marks the pixels that change between f_t and f_{t+1}. It is computed with the data, beside
each pair (`pipeline.pairs`), and the sparsity loss compares the masks' size with its size.

With `--bg_reference=clip_median`, f_t is compared instead with its clip's background: the
per-pixel median of all the clip's frames (`clip_background`), which is the static scene
wherever the moving object covers a pixel in fewer than half of the frames. d then marks the
whole object at t, not only the slivers that a slow object uncovers and covers between two
frames (its flat interior does not change), and L_bg asks the mask to cover it all.

Reference: arXiv 2111.12747, section 3.3; docs/method.md, the losses.
"""

import dataclasses

import tensorflow as tf

from fgbg_common.options import Options, option

# BT.601 luma weights (the reference implementation has a typo, 0.144, for blue).
GRAY_WEIGHTS = (0.299, 0.587, 0.114)
DIFF_MODES = ("gray", "maxchannel")
# What f_t is compared with in d and L_bg (`--bg_reference`).
BG_REFERENCES = ("next_frame", "clip_median")


def clip_background(frames, axis=0):
    """The per-pixel median over time of a clip's frames: its static background.

    Args:
        frames: a tensor of frames (uint8 or float), time on `axis`.
        axis: the time axis.

    Returns:
        One frame of the input's dtype (rounded for integers): the mean of the two middle
        values where the clip has an even number of frames.
    """
    frames = tf.convert_to_tensor(frames)
    ordered = tf.sort(tf.cast(frames, tf.float32), axis=axis)
    length = tf.shape(ordered)[axis]
    low = tf.gather(ordered, (length - 1) // 2, axis=axis)
    high = tf.gather(ordered, length // 2, axis=axis)
    median = (low + high) / 2.0
    if frames.dtype.is_integer:
        median = tf.round(median)
    return tf.cast(median, frames.dtype)


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


@dataclasses.dataclass
class ChangeMapOptions(Options):
    """The change map d and what L_bg compares each frame with."""

    diff: str = option(
        "gray",
        "Change map d: gray = |gray(f_{t+1}) - gray(f_t)| > threshold (BT.601); maxchannel = "
        "largest channel difference > threshold.",
        choices=DIFF_MODES,
    )
    diff_threshold: float = option(0.04, "Threshold of the change map d on [-1, 1] frames.")
    bg_reference: str = option(
        "next_frame",
        "What L_bg and the change map d compare f_t with: next_frame = f_{t+1} (the draft); "
        "clip_median = the per-pixel median of f_t's whole clip, its static background, so "
        "that d and L_bg mark the whole moving object rather than what changed in one step "
        "(data_pipelines/change_map.py; pair it with --bg_mask=current).",
        choices=BG_REFERENCES,
    )

    @property
    def clip_background(self):
        """Whether d and L_bg compare f_t with its clip's background (`--bg_reference`)."""
        return self.bg_reference == "clip_median"

    def check(self, config):
        self.finite_non_negative("diff_threshold")
