"""The rollout methods' registry: the offset map of `mapped_carry`, the MOG2 baseline, the
control per part of the mask."""

import types

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import datasets
from fgbg_keras import mask_ops
from fgbg_keras.evaluation import methods, parts
from fgbg_keras.evaluation.background_subtraction import mog2_masks
from fgbg_keras.mask_ops import translation_controls
from tests.tiny import tiny_config

SIZE = 24
# How the mask moves for a labelled offset (dx, dy): the labels are not the mask's steps.
MIXING = np.array([[2.0, 0.0], [1.0, 1.0]], np.float32)


class _SquareSource:
    """Training windows of a 4-pixel white square on black (whole-pixel moves that keep it in
    the frame), labelled with `offsets` while the
    square moves by `offsets @ MIXING`, with a still frame (no object) in some windows."""

    has_controls = True

    def training_windows(self, frames_per_clip, seed, start_index):
        rng = np.random.default_rng(seed)
        windows = []
        for index in range(40):
            offsets = rng.integers(-1, 2, size=(frames_per_clip - 1, 2)).astype(np.float32)
            corner = np.concatenate([[[10.0, 10.0]], 10.0 + np.cumsum(offsets @ MIXING, axis=0)])
            frames = np.zeros((frames_per_clip, SIZE, SIZE, 3), np.uint8)
            for frame, (x, y) in zip(frames, np.round(corner).astype(int)):
                frame[y : y + 4, x : x + 4] = 255
            if index % 5 == 0:
                frames[1] = 0  # M finds nothing there: both of its pairs are left out
            windows.append({"frames": frames, "offsets": offsets})
        stacked = {key: np.stack([w[key] for w in windows]) for key in windows[0]}
        return tf.data.Dataset.from_tensor_slices(stacked)


def _bright_pixels(frames, training=False):
    """A mask network that finds the white square exactly."""
    del training
    return tf.cast(tf.reduce_mean(frames, axis=-1, keepdims=True) > 0.0, tf.float32)


def test_offset_map_is_fitted_from_the_labels_to_the_mask_steps(monkeypatch):
    monkeypatch.setattr(datasets, "source", lambda config: _SquareSource())
    config = tiny_config()
    config.model.image_size = SIZE
    run = types.SimpleNamespace(config=config, mask_generator=_bright_pixels)
    matrix, pairs = methods.fit_offset_map(run, windows=40, frames_per_clip=4, batch=16)
    np.testing.assert_allclose(matrix, MIXING, atol=1e-4)
    assert pairs == 40 * 3 - 8 * 2  # every pair but the two beside each empty frame


def test_mapped_carry_is_offered_only_with_training_controls():
    with_labels = {methods.GROUND_TRUTH, methods.TRAINING_CONTROLS}
    assert "mapped_carry" in [m.name for m in methods.available(with_labels)]
    assert "mapped_carry" not in [m.name for m in methods.available({methods.GROUND_TRUTH})]


@pytest.mark.parametrize("matrix", [np.eye(2), MIXING])
def test_mapped_carry_steers_the_rollout_with_the_mapped_offsets(monkeypatch, matrix):
    seen = {}

    def rollout_fn(first, controls):
        seen["controls"] = controls.numpy()
        return {"frames": first}

    monkeypatch.setattr(methods, "fit_offset_map", lambda run: (matrix.astype(np.float32), 1))
    context = types.SimpleNamespace(run=None, rollout_fn=lambda mode: rollout_fn)
    generate = methods.get("mapped_carry").prepare(context)
    offsets = np.array([[[1.0, 2.0], [-3.0, 0.5]]], np.float32)
    batch = types.SimpleNamespace(first=tf.zeros([1, 4, 4, 3]), offsets=tf.constant(offsets))
    generate(batch)
    np.testing.assert_allclose(seen["controls"][..., 2], offsets @ matrix, rtol=1e-6)
    np.testing.assert_allclose(seen["controls"][..., :2], np.broadcast_to(np.eye(2), (1, 2, 2, 2)))


def test_mapped_carry_falls_back_to_the_raw_offsets_when_nothing_can_be_fitted(monkeypatch):
    class _Still(_SquareSource):
        def training_windows(self, frames_per_clip, seed, start_index):
            windows = super().training_windows(frames_per_clip, seed, start_index)
            return windows.map(lambda w: {**w, "offsets": w["offsets"] * [1.0, 0.0]})

    monkeypatch.setattr(datasets, "source", lambda config: _Still())
    config = tiny_config()
    config.model.image_size = SIZE
    with pytest.raises(ValueError, match="span both axes"):
        methods.fit_offset_map(
            types.SimpleNamespace(config=config, mask_generator=_bright_pixels), windows=16
        )
    seen = {}
    run = types.SimpleNamespace(config=config, mask_generator=_bright_pixels)

    def rollout_fn(first, controls):
        seen["controls"] = controls.numpy()
        return {"frames": first}

    context = types.SimpleNamespace(run=run, rollout_fn=lambda mode: rollout_fn)
    generate = methods.get("mapped_carry").prepare(context)
    offsets = np.array([[[1.0, 2.0]]], np.float32)
    generate(types.SimpleNamespace(first=tf.zeros([1, 4, 4, 3]), offsets=tf.constant(offsets)))
    np.testing.assert_allclose(seen["controls"][..., 2], offsets)


def square_over_texture(length=12, size=SIZE, seed=3, row=8, speed=1):
    """uint8 frames `[T, size, size, 3]`: a red square moving `speed` px a frame to the right
    at `row` over a still texture, and its true masks `[T, size, size, 1]`."""
    rng = np.random.default_rng(seed)
    background = rng.integers(60, 120, (size, size, 3)).astype(np.uint8)
    frames = np.repeat(background[None], length, axis=0)
    masks = np.zeros((length, size, size, 1), np.float32)
    for t in range(length):
        x = (speed * t) % (size - 6)
        frames[t, row : row + 6, x : x + 6] = [250, 20, 20]
        masks[t, row : row + 6, x : x + 6] = 1.0
    return frames, masks


def iou(a, b):
    return float(np.logical_and(a > 0.5, b > 0.5).sum() / np.logical_or(a > 0.5, b > 0.5).sum())


def test_mog2_finds_a_square_moving_over_a_still_background():
    frames, truth = square_over_texture()
    # What a user would run it over first: the same scene, the square passing quickly elsewhere.
    before, _ = square_over_texture(length=30, row=16, speed=3)
    masks = mog2_masks(frames[None], [before])
    assert masks.shape == (1, *frames.shape[:3], 1) and masks.dtype == np.float32
    assert set(np.unique(masks)) <= {0.0, 1.0}
    for t in range(len(frames)):
        assert iou(masks[0, t], truth[t]) > 0.8, t
    # A still clip of that scene with no square has no foreground; a history of another size
    # is named.
    empty, _ = square_over_texture(length=6, row=SIZE)
    assert not mog2_masks(empty[None], [before]).any()
    with pytest.raises(ValueError, match="history has frames of shape"):
        mog2_masks(frames[None], [before[:, :8]])


def test_mog2_paste_moves_mog2_s_mask_by_the_controls_and_pastes(monkeypatch):
    frames, truth = square_over_texture()
    recording = {"walk.mp4": square_over_texture(length=30, row=16, speed=3)[0]}

    class _Recorded:
        def recording_frames(self, source):
            return recording.get(source)

    monkeypatch.setattr(datasets, "source", lambda config: _Recorded())
    config = tiny_config()
    config.model.image_size = SIZE
    context = methods.Context(types.SimpleNamespace(config=config, mask_generator=None))
    assert "mog2_paste" in [m.name for m in methods.available({methods.RECORDINGS})]
    assert "mog2_paste" not in [m.name for m in methods.available(set())]
    generate = methods.get("mog2_paste").prepare(context)
    clip = tf.constant(frames[None, :4], tf.float32) / 127.5 - 1.0
    steps = np.array([[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]], np.float32)
    batch = methods.RolloutBatch(
        frames=clip,
        model_masks=None,
        controls={"fitted": translation_controls(steps)},
        centroids=None,
        sources=np.array(["walk.mp4"]),
    )
    out = generate(batch)
    assert tuple(out["frames"].shape) == (1, 3, SIZE, SIZE, 3)
    assert tuple(out["masks"].shape) == (1, 3, SIZE, SIZE, 1)
    for k in range(3):
        assert iou(np.asarray(out["masks"][0, k]), truth[k + 1]) > 0.7
        # The square is pasted where the true one is: the frames match inside the true mask.
        inside = truth[k + 1][..., 0] > 0
        np.testing.assert_allclose(
            np.asarray(out["frames"][0, k])[inside], clip[0, k + 1].numpy()[inside], atol=1e-5
        )


def two_squares_moving_apart(steps=4, size=SIZE):
    """Masks `[steps + 1, size, size, 1]` of two 4-pixel squares, one moving right and one
    left by 1 px a frame: their mean step is zero."""
    masks = np.zeros((steps + 1, size, size, 1), np.float32)
    for k in range(steps + 1):
        masks[k, 4:8, 8 + k : 12 + k] = 1.0
        masks[k, 14:18, 10 - k : 14 - k] = 1.0
    return masks


def test_each_part_of_the_mask_is_carried_by_its_own_steps():
    masks = two_squares_moving_apart()
    targets = parts.clip_part_targets(masks)
    assert targets.shape == (4, SIZE, SIZE, 1)
    np.testing.assert_array_equal(targets, masks[1:])
    # One translation for the whole mask moves neither square: their mean step is zero.
    whole = mask_ops.clip_translations(tf.constant(masks[None]))
    np.testing.assert_allclose(whole, 0.0, atol=1e-6)
    # Where M finds nothing near a part in the next frame, the part stays where it was.
    lost = masks.copy()
    lost[1] = 0.0
    np.testing.assert_array_equal(parts.clip_part_targets(lost)[0], masks[0])
    np.testing.assert_array_equal(parts.clip_part_targets(masks[[0, 0, 0]]), masks[[0, 0]])
    assert parts.part_targets(np.zeros((2, 3, SIZE, SIZE, 1))).sum() == 0
    # A part carried a whole frame or more away is empty, not a slicing error.
    np.testing.assert_array_equal(
        mask_ops.shift_whole_pixels(masks[1:2], np.array([[0.0, -SIZE - 3.0]])), 0.0
    )


def test_fitted_parts_steps_the_generator_with_each_part_s_target():
    masks = two_squares_moving_apart(steps=3)
    calls = []

    def frame_generator(inputs, training):
        calls.append({key: np.asarray(value) for key, value in inputs.items()})
        return {"frame": tf.convert_to_tensor(inputs["frame"]) + 0.1}

    run = types.SimpleNamespace(config=tiny_config(), frame_generator=frame_generator)
    generate = methods.get("fitted_parts").prepare(methods.Context(run))
    first = np.zeros((1, SIZE, SIZE, 3), np.float32)
    clip = tf.constant(np.repeat(first[:, None], 4, axis=1))
    batch = methods.RolloutBatch(
        frames=clip, model_masks=tf.constant(masks[None]), controls={}, centroids=None
    )
    out = generate(batch)
    np.testing.assert_array_equal(out["masks"][0], masks[1:])
    np.testing.assert_allclose(out["frames"][0, :, 0, 0, 0], [0.1, 0.2, 0.3], atol=1e-6)
    # Step k is fed step k - 1's output and target, and the first frame and mask as memory.
    np.testing.assert_array_equal(calls[2]["mask"][0], masks[2])
    np.testing.assert_array_equal(calls[2]["target_mask"][0], masks[3])
    np.testing.assert_array_equal(calls[2]["first_mask"][0], masks[0])
    np.testing.assert_allclose(calls[2]["frame"], first + 0.2, atol=1e-6)
