"""The change map d on a hand-made pair: each pixel's expected value is worked out by hand."""

import numpy as np
import pytest

from data_pipelines.change_map import clip_background, frame_difference_mask


def _pair_with_changes():
    # A gray change (d, d, d) changes gray by d * (0.299 + 0.587 + 0.114) = d.
    # Pixel (0, 0): +0.05 on every channel, gray 0.05 > 0.04.
    # Pixel (0, 1): +0.03 on every channel, gray 0.03 <= 0.04.
    # Pixel (1, 0): +0.3 on blue only, gray 0.114 * 0.3 = 0.0342 <= 0.04, but max channel 0.3.
    # Pixel (1, 1): unchanged.
    frame = np.full((1, 2, 2, 3), -0.2, "float32")
    next_frame = frame.copy()
    next_frame[0, 0, 0] += 0.05
    next_frame[0, 0, 1] += 0.03
    next_frame[0, 1, 0, 2] += 0.3
    return frame, next_frame


@pytest.mark.parametrize(
    "mode, expected",
    [("gray", [[1.0, 0.0], [0.0, 0.0]]), ("maxchannel", [[1.0, 0.0], [1.0, 0.0]])],
)
def test_frame_difference_mask(mode, expected):
    frame, next_frame = _pair_with_changes()
    diff = np.asarray(frame_difference_mask(frame, next_frame, mode=mode))
    assert diff.shape == (1, 2, 2, 1) and diff.dtype == np.float32
    np.testing.assert_array_equal(diff[0, ..., 0], expected)


def test_frame_difference_mask_rejects_unknown_mode():
    frame, next_frame = _pair_with_changes()
    with pytest.raises(ValueError, match="mode='luma'"):
        frame_difference_mask(frame, next_frame, mode="luma")


def test_clip_background_is_the_per_pixel_median_over_time():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (7, 3, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(clip_background(frames), np.median(frames, axis=0))
    even = rng.integers(0, 256, (2, 6, 3, 4, 3), dtype=np.uint8)
    expected = np.round(np.median(even.astype(np.float64), axis=1))
    got = np.asarray(clip_background(even, axis=1))
    assert got.dtype == np.uint8
    np.testing.assert_allclose(got, expected, atol=1)  # halves round either way
    floats = rng.uniform(-1, 1, (5, 3, 4, 3)).astype("float32")
    np.testing.assert_allclose(clip_background(floats), np.median(floats, axis=0), rtol=1e-6)


def test_d_against_the_clip_background_marks_the_whole_moving_square():
    # A flat square 6 px wide moves 2 px a frame over a textured still background, so it covers
    # any pixel in at most 3 of the 9 frames: between two frames only its leading and trailing
    # columns change, while against the clip's median it differs everywhere it is.
    rng = np.random.default_rng(1)
    scene = rng.uniform(-1.0, 0.0, (16, 24, 3)).astype("float32")
    frames = np.repeat(scene[None], 9, axis=0)
    truth = np.zeros((9, 16, 24, 1), "float32")
    for t in range(9):
        frames[t, 5:11, 2 * t : 6 + 2 * t] = 0.9
        truth[t, 5:11, 2 * t : 6 + 2 * t] = 1.0
    background = np.asarray(clip_background(frames))
    np.testing.assert_array_equal(background, scene)
    against_background = np.asarray(frame_difference_mask(background[None], frames[4:5]))
    np.testing.assert_array_equal(against_background, truth[4:5])
    between_frames = np.asarray(frame_difference_mask(frames[4:5], frames[5:6]))
    assert between_frames.sum() == 2 * 2 * 6  # the columns the square covers and uncovers
