"""Camera-motion compensation: global translations found and undone."""

import numpy as np
import tensorflow as tf

from data_pipelines import pipeline, stabilize, synthetic

SHIFTS = [[0.0, 0.0], [0.7, -0.4], [-1.3, 0.25], [0.2, 1.1], [2.5, -2.0]]


def photo():
    """A 64x64 crop of a photo, in [-1, 1]."""
    clip = synthetic.generate_clip(3, synthetic.scaled_config(64, 2))
    return tf.constant(clip["frames"][:1], tf.float32) / 127.5 - 1.0


def test_translations_of_a_still_scene_are_found_to_a_tenth_of_a_pixel():
    image = photo()
    moved = stabilize.shift_images(tf.repeat(image, len(SHIFTS), axis=0), -tf.constant(SHIFTS))
    found = stabilize.estimate_shifts(image, moved).numpy()
    np.testing.assert_allclose(found, SHIFTS, atol=0.1)


def test_a_moving_object_barely_pulls_the_estimate():
    image = photo().numpy().repeat(len(SHIFTS), axis=0)
    for k in range(len(SHIFTS)):  # a 20x20 block (10% of the frame) moving 3 px per frame
        image[k, 10:30, 10 + 3 * k : 30 + 3 * k] = 0.9
    reference = image[:1]
    moved = stabilize.shift_images(tf.constant(image), -tf.constant(SHIFTS))
    found = stabilize.estimate_shifts(reference, moved).numpy()
    np.testing.assert_allclose(found, SHIFTS, atol=0.1)


def test_aligned_windows_change_only_where_something_moves():
    image = photo()
    # Whole-pixel shake, so that the shaken frames are exact copies, not resampled ones.
    shake = tf.constant([[0.0, 0.0], [1.0, -2.0], [-2.0, 1.0]])
    window = stabilize.shift_images(tf.repeat(image, 3, axis=0), -shake)
    window = tf.cast(tf.round((window + 1.0) * 127.5), tf.uint8)
    windows = tf.data.Dataset.from_tensors({"frames": window})
    plain = next(iter(pipeline.batch_windows(windows, 1)))["frames"][0]
    aligned = next(iter(pipeline.batch_windows(windows, 1, align=True)))["frames"][0]
    np.testing.assert_allclose(aligned[0], plain[0], atol=1e-6)
    inner = (slice(1, None), slice(4, -4), slice(4, -4))
    before = np.abs(plain - plain[:1])[inner].mean()
    after = np.abs(aligned - aligned[:1])[inner].mean()
    assert after < before / 4, (before, after)
