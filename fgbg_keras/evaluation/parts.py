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

from fgbg_keras.evaluation.background_subtraction import opencv

# How far (pixels) around a part's carried mask M's masks of the true frames are read.
PART_RADIUS = 3


def _centroid(mask):
    ys, xs = np.nonzero(mask)
    return None if not len(xs) else np.array([xs.mean(), ys.mean()])


def _moved(mask, offset):
    """A binary mask `[H, W]` moved by `offset` (dx, dy) rounded to whole pixels, filling with 0."""
    dx, dy = np.round(offset).astype(int)
    height, width = mask.shape
    moved = np.zeros_like(mask)
    if abs(dx) >= width or abs(dy) >= height:
        return moved
    moved[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = mask[
        max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    return moved


def clip_part_targets(masks, radius=PART_RADIUS):
    """The target masks of one clip's rollout steered per part of its first mask.

    Args:
        masks: binarize(M(.)) of the clip's true frames `[T + 1, H, W, 1]`.
        radius: pixels around a part's carried mask in which its step is read.

    Returns:
        float32 `[T, H, W, 1]`: at step k, every part of `masks[0]` moved by the sum of its
        steps up to k (whole pixels).
    """
    cv2 = opencv()
    masks = np.asarray(masks)[..., 0] > 0.5
    count, labels = cv2.connectedComponents(masks[0].astype(np.uint8), connectivity=8)
    parts = [labels == i for i in range(1, count)]
    totals = [np.zeros(2) for _ in parts]
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    targets = np.zeros((len(masks) - 1, *masks.shape[1:]), np.float32)
    for k in range(len(masks) - 1):
        for i, part in enumerate(parts):
            near = cv2.dilate(_moved(part, totals[i]).astype(np.uint8), kernel) > 0
            start, end = _centroid(masks[k] & near), _centroid(masks[k + 1] & near)
            if start is not None and end is not None:
                totals[i] = totals[i] + (end - start)
            targets[k] = np.maximum(targets[k], _moved(part, totals[i]))
    return targets[..., None]


def part_targets(masks, radius=PART_RADIUS):
    """`clip_part_targets` of each clip of `[B, T + 1, H, W, 1]`: `[B, T, H, W, 1]`."""
    return np.stack([clip_part_targets(clip, radius) for clip in np.asarray(masks)])
