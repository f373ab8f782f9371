"""Augmentation of training windows: flips, time reversal and shifts keep a window a window."""

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import augment


def window(length=4, size=12):
    """A window whose frames number their pixels and their time, with masks, a background and
    the offsets of a square moving 1 px right a frame."""
    grid = np.arange(size * size, dtype=np.float32).reshape(size, size, 1)
    frames = np.stack([np.repeat(grid, 3, -1) + 1000.0 * t for t in range(length)])
    masks = np.zeros((length, size, size, 1), np.float32)
    for t in range(length):
        masks[t, 4:7, 2 + t : 5 + t] = 1.0
    return {
        "frames": tf.constant(frames),
        "masks": tf.constant(masks),
        "background": tf.constant(np.repeat(grid, 3, -1)),
        "offsets": tf.constant([[1.0, 0.0]] * (length - 1)),
    }


def augmented(augmentation, index, seed=0):
    return {
        key: value.numpy()
        for key, value in augment.augment_window(
            window(), augmentation, tf.constant([seed, index], tf.int64)
        ).items()
    }


def draws(augmentation, count=16):
    return [augmented(augmentation, k) for k in range(count)]


def test_a_flip_mirrors_every_image_of_the_window_and_its_offsets():
    plain, outs = window(), draws(augment.Augmentation(flip=True))
    flipped = [o for o in outs if not np.array_equal(o["frames"], plain["frames"])]
    assert 0 < len(flipped) < len(outs)  # about half
    for out in flipped:
        for key in ("frames", "masks", "background"):
            np.testing.assert_array_equal(out[key], plain[key].numpy()[..., ::-1, :])
        np.testing.assert_array_equal(out["offsets"], [[-1.0, 0.0]] * 3)


def test_a_reversal_plays_the_window_backwards_and_keeps_its_background():
    plain, outs = window(), draws(augment.Augmentation(reverse=True))
    backwards = [o for o in outs if not np.array_equal(o["frames"], plain["frames"])]
    assert 0 < len(backwards) < len(outs)
    for out in backwards:
        np.testing.assert_array_equal(out["frames"], plain["frames"].numpy()[::-1])
        np.testing.assert_array_equal(out["masks"], plain["masks"].numpy()[::-1])
        np.testing.assert_array_equal(out["background"], plain["background"])
        np.testing.assert_array_equal(out["offsets"], [[-1.0, 0.0]] * 3)


def test_a_shift_moves_the_whole_window_by_the_same_whole_pixels():
    plain = window()
    for out in draws(augment.Augmentation(shift=2)):
        assert out["frames"].shape == plain["frames"].shape
        # Pixel value v of frame t sits at (v % 1000) // 12, (v % 1000) % 12 before the shift.
        value = out["frames"][:, 6, 6, 0]
        rows, cols = (value % 1000) // 12, (value % 1000) % 12
        assert len(set(rows)) == 1 and len(set(cols)) == 1  # every frame moved alike
        assert abs(rows[0] - 6) <= 2 and abs(cols[0] - 6) <= 2
        np.testing.assert_array_equal(out["background"][6, 6], out["frames"][0, 6, 6] % 1000)
        np.testing.assert_array_equal(out["offsets"], plain["offsets"])
    moves = {tuple(o["frames"][0, 6, 6, :1]) for o in draws(augment.Augmentation(shift=2))}
    assert len(moves) > 3


def test_a_held_window_repeats_its_first_frame_and_mask_with_no_offsets():
    plain, outs = window(), draws(augment.Augmentation(still=0.5), count=24)
    held = [o for o in outs if not np.array_equal(o["frames"], plain["frames"])]
    assert 0 < len(held) < len(outs)
    for out in held:
        for key in ("frames", "masks"):
            np.testing.assert_array_equal(out[key], np.repeat(plain[key].numpy()[:1], 4, 0))
        np.testing.assert_array_equal(out["background"], plain["background"])
        np.testing.assert_array_equal(out["offsets"], np.zeros((3, 2)))
    for out in draws(augment.Augmentation(still=1.0), count=3):
        np.testing.assert_array_equal(out["frames"][3], plain["frames"].numpy()[0])


def test_a_held_window_with_noise_differs_from_its_first_frame_by_that_noise_alone():
    plain = window()
    scaled = {**plain, "frames": plain["frames"] / 4000.0 - 0.5}  # in [-1, 1], as trained on
    first = scaled["frames"].numpy()[0]
    held = augment.Augmentation(still=1.0, still_noise=3.0)
    noises = []
    for k in range(4):
        out = augment.augment_window(scaled, held, tf.constant([0, k], tf.int64))
        frames = out["frames"].numpy()
        assert frames.min() >= -1.0 and frames.max() <= 1.0
        noises.append(frames - first)
        np.testing.assert_array_equal(out["masks"].numpy(), np.repeat(plain["masks"][:1], 4, 0))
    noises = np.stack(noises)
    np.testing.assert_allclose(noises.std(), 3.0 * 2.0 / 255.0, rtol=0.1)
    assert abs(noises.mean()) < 0.1 * noises.std()
    # Each frame has its own noise.
    assert not np.array_equal(noises[0, 1], noises[0, 2])
    moving = augment.Augmentation(still=0.0, still_noise=3.0)
    np.testing.assert_array_equal(
        augment.augment_window(scaled, moving, tf.constant([0, 0], tf.int64))["frames"],
        scaled["frames"],
    )


def test_draws_are_seeded_and_nothing_is_done_without_an_augmentation():
    both = augment.Augmentation(flip=True, reverse=True, shift=3)
    for k in range(4):
        first, again = augmented(both, k), augmented(both, k)
        for key in first:
            np.testing.assert_array_equal(first[key], again[key])
    assert not augment.Augmentation()
    stream = tf.data.Dataset.from_tensors(window()).repeat(3)
    assert augment.augment_windows(stream, augment.Augmentation(), 0) is stream
    out = list(augment.augment_windows(stream, both, 7).as_numpy_iterator())
    assert len(out) == 3 and out[0]["frames"].shape == (4, 12, 12, 3)


@pytest.mark.parametrize(
    ("name", "value"), [("shift", -1), ("shift", 16), ("still", 1.5), ("still_noise", 1.0)]
)
def test_an_augmentation_out_of_range_is_named(name, value):
    from fgbg_keras.config import RunConfig

    config = RunConfig()
    config.model.image_size = 32
    setattr(config.train, f"augment_{name}", value)
    with pytest.raises(ValueError, match=f"--augment_{name}"):
        config.validate()
