"""Augmentation of training windows: more motion and more places from a little footage.

One recording of a still camera gives a model a few hundred frames: the object visits few
places, and moves in few directions. Each training window may be mirrored left-right, played
backwards (the object moves the other way; a still scene stays still), moved as a whole by
a few pixels (the object at places it did not visit; the camera stays still within the window),
and held still (every frame its first: where nothing moves, the next frame is the frame, up to
the sensor's noise).
Every frame of a window, its masks, its clip background and its offsets change together, so a
window stays a window the camera could have filmed. The draws are stateless, seeded by the run's
seed and the window's place in the stream, so a seeded run sees the same windows every time.
"""

import dataclasses

import tensorflow as tf

from fgbg_common.options import Options, fail, option


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
        still_noise: the standard deviation, in 8-bit levels, of the Gaussian noise that each
            frame of a held window gets on its own (frames in [-1, 1]): a real still camera's
            frames differ by their sensor's noise, and a mask network's masks of them flicker
            at the object's edge, which a model must learn is not motion. 0: the frames are
            equal.
    """

    flip: bool = False
    reverse: bool = False
    shift: int = 0
    still: float = 0.0
    still_noise: float = 0.0

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
        if augmentation.still_noise:
            frames = out["frames"]
            noise = tf.random.stateless_normal(
                tf.shape(frames), seed=seed + 3, stddev=augmentation.still_noise * 2.0 / 255.0
            )
            noisy = tf.clip_by_value(frames + tf.cast(noise, frames.dtype), -1.0, 1.0)
            out["frames"] = tf.cond(held, lambda: noisy, lambda: frames)
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


@dataclasses.dataclass
class AugmentOptions(Options):
    """The augmentation of the training windows (`--augment_*`)."""

    augment_flip: bool = option(
        False, "Mirror each training window left-right, with probability 1/2."
    )
    augment_reverse: bool = option(
        False,
        "Play each training window backwards, with probability 1/2: the object moves the other "
        "way.",
    )
    augment_shift: int = option(
        0,
        "Move each training window as a whole by up to this many pixels along each axis "
        "(reflected at the borders): the object at places it did not visit. 0: off.",
    )
    augment_still: float = option(
        0.0,
        "Hold each training window still with this probability: every frame (and mask) is its "
        "first, so where nothing moves the target is the input frame and a model that draws "
        "there pays for it (real footage has still stretches). 0: off.",
    )
    augment_still_noise: float = option(
        0.0,
        "With --augment_still, the standard deviation in 8-bit levels of the Gaussian noise "
        "each frame of a held window gets on its own: a still camera's frames differ by its "
        "sensor's noise, at which a mask network's masks flicker. 0: the held frames are equal.",
    )

    def augmentation(self):
        """The `Augmentation` of the training windows that these settings ask for."""
        return Augmentation(
            self.augment_flip,
            self.augment_reverse,
            self.augment_shift,
            self.augment_still,
            self.augment_still_noise,
        )

    def check(self, config):
        if not 0 <= self.augment_shift < config.model.image_size // 2:
            fail(
                "augment_shift",
                self.augment_shift,
                f"must be in [0, {config.model.image_size // 2}) at --image_size="
                f"{config.model.image_size}",
            )
        if not 0.0 <= self.augment_still <= 1.0:
            fail("augment_still", self.augment_still, "must be in [0, 1]")
        if self.augment_still_noise < 0:
            fail("augment_still_noise", self.augment_still_noise, "must be >= 0")
        if self.augment_still_noise and not self.augment_still:
            fail("augment_still_noise", self.augment_still_noise, "needs --augment_still > 0")
