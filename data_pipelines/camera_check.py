"""The camera check of converted recordings: does the camera stay still, and does anything move?

The method assumes a still camera over a scene in which something moves. At conversion, each
clip of a recording (a video file or a frame folder) is measured at the converted size:

- `camera_motion_px`: the median, over its consecutive frame pairs, of the length of the global
  translation between them (`stabilize.estimate_shifts`, the estimate `--align_frames` uses,
  robust to a moving object that covers a minority of the pixels), in pixels per frame;
- `change_mean`: the mean of the change map d between consecutive frames (the draft's d: gray
  difference above 0.04 on [-1, 1] frames), the fraction of pixels that change per frame.

`summarize` gathers them per recording for `dataset.json`, and `warning` names, in one line each,
the recordings whose camera moves by more than `MOVING_CAMERA_PX` a frame (every edge then
changes, and the masks learn edges) and those in which almost nothing changes at the chosen
`--fps` (less than `STILL_CHANGE` of the pixels: nothing for the masks to learn).
"""

import numpy as np

# Above this global translation per frame (converted pixels), the camera is not still.
MOVING_CAMERA_PX = 0.5
# Below this fraction of changed pixels per frame, almost nothing moves.
STILL_CHANGE = 0.002
# Pairs measured together.
_BATCH = 64

_estimate = None


def _estimate_shifts(reference, frames):
    """`stabilize.estimate_shifts` compiled once per process (a Beam worker measures many clips)."""
    global _estimate
    if _estimate is None:
        import tensorflow as tf

        from data_pipelines.stabilize import estimate_shifts

        _estimate = tf.function(estimate_shifts, reduce_retracing=True)
    return _estimate(reference, frames)


def measure_clip(frames):
    """The camera check of one clip.

    Args:
        frames: uint8 `[T, H, W, 3]`, T >= 2.

    Returns:
        A dict: `"camera_motion_px"`, the median length of the global translation between
        consecutive frames, and `"change_mean"`, the mean of their change maps d.
    """
    from data_pipelines.change_map import frame_difference_mask

    values = np.asarray(frames, np.float32) / 127.5 - 1.0
    shifts, changes = [], []
    for start in range(0, len(values) - 1, _BATCH):
        first = values[start : start + _BATCH + 1]
        shifts.append(np.asarray(_estimate_shifts(first[:-1], first[1:])))
        changed = frame_difference_mask(first[:-1], first[1:])
        changes.append(np.asarray(changed).mean(axis=(1, 2, 3)))
    lengths = np.hypot(*np.concatenate(shifts).T)
    return {
        "camera_motion_px": float(np.median(lengths)),
        "change_mean": float(np.mean(np.concatenate(changes))),
    }


def summarize(measured):
    """Per recording, the clips' camera checks gathered.

    Args:
        measured: `(recording path, frames in the clip, measure_clip's dict)` per clip.

    Returns:
        A list sorted by path of dicts: `"path"`, `"clips"`, `"frames"`, and the
        frame-weighted means of the clips' `"camera_motion_px"` and `"change_mean"`.
    """
    per_path = {}
    for path, frames, values in measured:
        per_path.setdefault(path, []).append((frames, values))
    summary = []
    for path, clips in sorted(per_path.items()):
        weights = np.array([frames for frames, _ in clips], np.float64)
        row = {"path": path, "clips": len(clips), "frames": int(weights.sum())}
        for key in ("camera_motion_px", "change_mean"):
            value = np.average([values[key] for _, values in clips], weights=weights)
            row[key] = round(float(value), 4)
        summary.append(row)
    return summary


def _named(rows, limit=5):
    """ "2 recordings (a.mp4, b.mp4)", naming at most `limit`."""
    names = [row["path"] for row in rows]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    plural = "s" if len(names) > 1 else ""
    return f"{len(names)} recording{plural} (" + ", ".join(names[:limit]) + more + ")"


def warnings(summary):
    """One line for the recordings whose camera moves and one for those in which almost nothing
    changes (none for a data set that passes), each naming the files."""
    lines = []
    moving = [row for row in summary if row["camera_motion_px"] > MOVING_CAMERA_PX]
    if moving:
        lines.append(
            f"The camera moves by more than {MOVING_CAMERA_PX} px a frame in {_named(moving)}: "
            "the method assumes a still camera, and their masks would learn edges "
            "(dataset.json: camera_motion_px)."
        )
    still = [row for row in summary if row["change_mean"] < STILL_CHANGE]
    if still:
        lines.append(
            f"Almost nothing moves (under {STILL_CHANGE:.1%} of the pixels change a frame) in "
            f"{_named(still)}: nothing for the masks to learn at this --fps; a lower --fps puts "
            "more motion between frames (dataset.json: change_mean)."
        )
    return lines
