"""Augmentation of training windows: more motion and more places from a little footage.

One recording of a still camera gives a model a few hundred frames: the object visits few
places, and moves in few directions. Each training window may be mirrored left-right, played
backwards (the object moves the other way; a still scene stays still), moved as a whole by
a few pixels (the object at places it did not visit; the camera stays still within the window),
and held still (every frame its first: where nothing moves, the next frame is the frame).
Every frame of a window, its masks, its clip background and its offsets change together, so a
window stays a window the camera could have filmed. The draws are stateless, seeded by the run's
seed and the window's place in the stream, so a seeded run sees the same windows every time.
"""

import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """What is done to each training window, each with probability 1/2 (`shift`: always, by a
    random amount, which may be zero; `still`: with its own probability).

    Attributes:
        flip: mirror left-right.
        reverse: play backwards.
        shift: move by up to this many pixels along each axis (reflected at the borders); 0: no.
        still: the probability of holding the window still: every frame and mask is its first,
            the offsets zero. A model that draws where nothing moves then pays for it: real
            footage has still stretches, which a recording's moving parts rarely teach.
    """

    flip: bool = False
    reverse: bool = False
    shift: int = 0
    still: float = 0.0

    def __bool__(self):
        return self.flip or self.reverse or self.shift > 0 or self.still > 0


def _per_frame(window, function):
    """`function` applied to the frames, masks and background of a window (images `[..., H,
    W, C]`)."""
    out = dict(window)
    for key in ("frames", "masks", "background"):
        if key in window:
            out[key] = function(window[key])
    return out


def augment_window(window, augmentation, seed):
    """One window `{"frames": [F, H, W, 3], ...}` (float or uint8; with `"masks"` `[F, H, W,
    1]`, `"background"` `[H, W, 3]`, `"offsets"` `[F - 1, 2]` where it has them) augmented as
    `augmentation` says, its draws seeded by `seed` (a `[2]` int tensor)."""
    draws = tf.random.stateless_uniform([2], seed=seed)
    out = dict(window)
    if augmentation.flip:
        flipped = draws[0] < 0.5
        out = _per_frame(out, lambda x: tf.cond(flipped, lambda: tf.reverse(x, [-2]), lambda: x))
        if "offsets" in out:
            out["offsets"] = tf.where(flipped, out["offsets"] * [-1.0, 1.0], out["offsets"])
    if augmentation.reverse:
        backwards = draws[1] < 0.5
        for key in ("frames", "masks"):
            if key in out:
                out[key] = tf.cond(
                    backwards, lambda x=out[key]: tf.reverse(x, [0]), lambda x=out[key]: x
                )
        if "offsets" in out:
            out["offsets"] = tf.where(backwards, -tf.reverse(out["offsets"], [0]), out["offsets"])
    if augmentation.shift:
        limit = augmentation.shift
        dx, dy = tf.unstack(
            tf.random.stateless_uniform(
                [2], seed=seed + 1, minval=-limit, maxval=limit + 1, dtype=tf.int32
            )
        )

        def moved(x):
            padded = tf.pad(
                x,
                [[0, 0]] * (len(x.shape) - 3) + [[limit, limit], [limit, limit], [0, 0]],
                mode="REFLECT",
            )
            height, width = x.shape[-3], x.shape[-2]
            cut = padded[..., limit - dy : limit - dy + height, limit - dx : limit - dx + width, :]
            return tf.ensure_shape(cut, x.shape)

        out = _per_frame(out, moved)
    if augmentation.still:
        held = tf.random.stateless_uniform([], seed=seed + 2) < augmentation.still
        for key in ("frames", "masks"):
            if key in out:
                out[key] = tf.cond(
                    held,
                    lambda x=out[key]: tf.broadcast_to(x[:1], tf.shape(x)),
                    lambda x=out[key]: x,
                )
        if "offsets" in out:
            out["offsets"] = tf.where(held, tf.zeros_like(out["offsets"]), out["offsets"])
    return out


def augment_windows(windows, augmentation, seed):
    """A stream of windows augmented one by one (`augment_window`), window k's draws seeded by
    `(seed, k)`."""
    if not augmentation:
        return windows

    def augment(k, window):
        return augment_window(window, augmentation, tf.stack([tf.cast(seed, tf.int64), k]))

    return windows.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
