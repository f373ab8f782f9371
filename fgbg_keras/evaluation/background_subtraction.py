"""The classical peer of a still camera: OpenCV's MOG2 background subtractor.

What a user would build without fgbg: a per-pixel Gaussian-mixture model of the background
(`cv2.createBackgroundSubtractorMOG2`), learned from the clip itself, marks as foreground what
does not fit it; a morphological opening removes isolated pixels. Its masks are not ground
truth: the evaluation compares them with M's (do both find the same movers?) and moves them by
the same controls as M's, pasted with no generator (the `mog2_paste` rollout method).

Reference: Z. Zivkovic, "Improved adaptive Gaussian mixture model for background subtraction",
ICPR 2004.
"""

import numpy as np

# MOG2's threshold on the squared Mahalanobis distance, and its history (OpenCV's defaults are
# 16 and 500; the frames a model learns from here are fewer).
VARIANCE_THRESHOLD = 16.0
HISTORY = 200


def opencv():
    """The `cv2` module, or an ImportError that says how to install it."""
    try:
        import cv2
    except ImportError as error:
        raise ImportError(
            "The MOG2 baseline and fitted_parts need OpenCV: pip install opencv-python-headless"
        ) from error
    return cv2


def _uint8(frames):
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    return np.clip(np.round((frames.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def mog2_masks(frames, histories, variance_threshold=VARIANCE_THRESHOLD):
    """MOG2's foreground masks of every frame of each clip.

    The model of clip n learns, in order, from `histories[n]`, the frames of its recording that
    a user would have run it over (`DataSource.recording_frames`: a still camera's video before
    the test part); then it marks each of the clip's frames with learning frozen (no shadow
    detection), and the masks are opened with a 3x3 square. A model learns as background what
    covers a pixel in more than a tenth of its history (OpenCV's background ratio): it needs
    frames in which the movers have moved on, which a short clip alone does not give.

    Args:
        frames: `[N, T, H, W, 3]` RGB, uint8 or float in [-1, 1].
        histories: per clip, `[K, H, W, 3]` frames of the same size to learn from.
        variance_threshold: MOG2's `varThreshold`.

    Returns:
        float32 `[N, T, H, W, 1]` in {0, 1}.
    """
    cv2 = opencv()
    frames = _uint8(frames)
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"`frames` must be [N, T, H, W, 3]. Received: shape={frames.shape}")
    if len(histories) != len(frames):
        raise ValueError(f"{len(frames)} clips need as many histories, not {len(histories)}.")
    kernel = np.ones((3, 3), np.uint8)
    masks = np.zeros(frames.shape[:-1] + (1,), np.float32)
    for n, clip in enumerate(frames):
        history = _uint8(histories[n])
        if history.ndim != 4 or history.shape[1:] != clip.shape[1:]:
            raise ValueError(
                f"Clip {n}: its history has frames of shape {history.shape[1:]}, the clip "
                f"{clip.shape[1:]}."
            )
        model = cv2.createBackgroundSubtractorMOG2(
            history=min(HISTORY, len(history)), varThreshold=variance_threshold, detectShadows=False
        )
        for frame in history:
            model.apply(np.ascontiguousarray(frame[..., ::-1]))
        for t, frame in enumerate(clip):
            marked = model.apply(np.ascontiguousarray(frame[..., ::-1]), learningRate=0.0)
            masks[n, t, ..., 0] = cv2.morphologyEx(marked, cv2.MORPH_OPEN, kernel) > 0
    return masks
