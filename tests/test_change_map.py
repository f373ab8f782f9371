"""The change map d on a hand-made pair: each pixel's expected value is worked out by hand."""

import numpy as np
import pytest

from data_pipelines.change_map import frame_difference_mask


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
