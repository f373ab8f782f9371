"""The parameterized control per part of the mask: each connected part of the first frame's
mask carried by its own translation, fitted from M's masks of the true frames.

One translation for the whole mask (`mask_ops.fit_translations`) moves every part by their mean
step: where several movers go their own ways (pedestrians on a walkway), that step is wrong
for most of them. Here each 8-connected part of `m_0` is followed on its own: at each step, its
translation is the step of the centroid of M's masks of the true frames inside the part's
carried mask dilated by `radius` pixels, so a neighbour's motion counts only where the two
meet. With one part it is the whole-mask fit restricted to where the object is.
"""

import numpy as np

from fgbg_keras import mask_ops
from fgbg_keras.evaluation.background_subtraction import opencv

# How far (pixels) around a part's carried mask M's masks of the true frames are read.
PART_RADIUS = 3


def clip_part_targets(masks, radius=PART_RADIUS):
    """The target masks of one clip's rollout steered per part of its first mask.

    Args:
        masks: binarize(M(.)) of the clip's true frames `[T + 1, H, W, 1]`.
        radius: pixels around a part's carried mask in which its step is read.

    Returns:
        float32 `[T, H, W, 1]`: at step k, every part of `masks[0]` moved by the sum of its
        steps up to k (whole pixels).
    """
    masks = (np.asarray(masks) > 0.5).astype(np.float32)
    count, labels = opencv().connectedComponents(masks[0, ..., 0].astype(np.uint8), connectivity=8)
    if count == 1:  # no part: nothing to carry
        return np.zeros_like(masks[1:])
    # The parts as a batch `[P, H, W, 1]`, moved, read and fitted together.
    parts = (labels[None, ..., None] == np.arange(1, count)[:, None, None, None]).astype(np.float32)
    totals = np.zeros((count - 1, 2), np.float32)
    targets = []
    for k in range(len(masks) - 1):
        near = mask_ops.dilate_masks(mask_ops.shift_whole_pixels(parts, totals), radius)
        totals = totals + mask_ops.fit_translations(masks[k] * near, masks[k + 1] * near)
        carried = mask_ops.shift_whole_pixels(parts, totals)
        targets.append(np.max(np.asarray(carried), axis=0))
    return np.stack(targets).astype(np.float32)


def part_targets(masks, radius=PART_RADIUS):
    """`clip_part_targets` of each clip of `[B, T + 1, H, W, 1]`: `[B, T, H, W, 1]`."""
    return np.stack([clip_part_targets(clip, radius) for clip in np.asarray(masks)])
