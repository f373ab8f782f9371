"""Controls as users write them: trajectories, affine files, the last control repeated, the
conversion to model pixels."""

import numpy as np
import pytest

from fgbg_keras import controls as user_controls


def test_parse_trajectory():
    offsets = user_controls.parse_trajectory("2,0; -1.5,3 ;0,-1")
    np.testing.assert_array_equal(offsets, [[2, 0], [-1.5, 3], [0, -1]])
    assert offsets.dtype == np.float32


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "give at least one step"),
        ("1,2;3", "step 2 is '3'"),
        ("1,2,3", "step 1 is '1,2,3'"),
        ("1,nan", "step 1 is '1,nan'"),
        ("a,b", "step 1 is 'a,b'"),
    ],
)
def test_parse_trajectory_names_the_bad_step(text, message):
    with pytest.raises(ValueError, match=message):
        user_controls.parse_trajectory(text)


def test_read_affine_file(tmp_path):
    path = tmp_path / "controls.txt"
    path.write_text("# a turn, then a shift\n0 -1 0 1 0 0\n\n1, 0, 2, 0, 1, -1\n")
    controls = user_controls.read_affine_file(str(path))
    np.testing.assert_array_equal(controls, [[[0, -1, 0], [1, 0, 0]], [[1, 0, 2], [0, 1, -1]]])
    path.write_text("1 0 2 0 1\n")
    with pytest.raises(ValueError, match="line 1: '1 0 2 0 1' is not six numbers"):
        user_controls.read_affine_file(str(path))
    path.write_text("# nothing\n")
    with pytest.raises(ValueError, match="holds no controls"):
        user_controls.read_affine_file(str(path))
    with pytest.raises(ValueError, match="cannot be read"):
        user_controls.read_affine_file(str(tmp_path / "missing.txt"))


def test_a_short_trajectory_repeats_its_last_control():
    controls = np.arange(2 * 6, dtype=np.float32).reshape(2, 2, 3)
    repeated = user_controls.repeat_last(controls, 4)
    np.testing.assert_array_equal(repeated, controls[[0, 1, 1, 1]])
    np.testing.assert_array_equal(user_controls.repeat_last(controls, 1), controls[:1])


def test_controls_are_converted_to_model_pixels():
    # A 200x100 (w x h) input shown at 64x64: x scales by 0.32, y by 0.64.
    shift = np.array([[[1, 0, 10.0], [0, 1, 5.0]]], np.float32)
    np.testing.assert_allclose(
        user_controls.to_model_pixels(shift, (100, 200), (64, 64)), [[[1, 0, 3.2], [0, 1, 3.2]]]
    )
    # A quarter turn of the input's content: S L S^-1 with S = diag(0.32, 0.64).
    turn = np.array([[[0, -1, 0], [1, 0, 0]]], np.float32)
    np.testing.assert_allclose(
        user_controls.to_model_pixels(turn, (100, 200), (64, 64)), [[[0, -0.5, 0], [2, 0, 0]]]
    )
