"""The rollout methods' registry: the offset map of `mapped_carry`."""

import types

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import datasets
from fgbg_keras.evaluation import methods
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
