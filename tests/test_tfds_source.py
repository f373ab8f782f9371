"""Reading a TFDS-prepared copy: windows, training a few steps, and the errors that say how to
prepare one. The tests prepare a tiny data set in BAIR's feature layout with TFDS itself."""

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import datasets
from fgbg_keras import runs
from fgbg_keras.evaluation import pairs
from fgbg_keras.training import loop
from tests.tiny import tiny_config

tfds = pytest.importorskip("tensorflow_datasets")
NAME = "tiny_pushing"


def source(data, tfds_data_dir=""):
    return datasets.source(tiny_config(data=data, tfds_data_dir=tfds_data_dir))


def videos(count, seed):
    rng = np.random.default_rng(seed)
    frames = np.zeros((count, 8, 48, 48, 3), np.uint8)
    frames[:] = rng.integers(0, 255, (count, 1, 1, 1, 3), dtype=np.uint8)
    for t in range(8):  # a bright square moving right, 2 px per frame
        frames[:, t, 16:28, 4 + 2 * t : 16 + 2 * t] = 250
    return {
        "image_main": frames,
        "action": rng.normal(size=(count, 8, 4)).astype(np.float32),
    }


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    features = tfds.features.FeaturesDict(
        {
            "image_main": tfds.features.Sequence(tfds.features.Image(shape=(48, 48, 3))),
            "action": tfds.features.Sequence(tfds.features.Tensor(shape=(4,), dtype=np.float32)),
        }
    )
    splits = {"train": videos(4, 0), "test": videos(3, 1)}
    tfds.dataset_builders.store_as_tfds_dataset(
        name=NAME,
        version="1.0.0",
        features=features,
        split_datasets={k: tf.data.Dataset.from_tensor_slices(v) for k, v in splits.items()},
        data_dir=data_dir,
    )
    return data_dir, splits


def test_windows_are_consecutive_frames_and_seeded(prepared):
    data_dir, splits = prepared
    data = f"tfds:{NAME}"
    source(data, data_dir).check(3)

    def take():
        stream = source(data, data_dir).training_windows(3, seed=1, start_index=0)
        return [w["frames"].numpy() for w in stream.take(6)]

    first, again = take(), take()
    for window, same in zip(first, again):
        np.testing.assert_array_equal(window, same)
        assert window.shape == (3, 48, 48, 3)
        assert any(
            np.array_equal(video[s : s + 3], window)
            for video in splits["train"]["image_main"]
            for s in range(6)
        )
    test = source(data, data_dir).evaluation_clips("test", 2, 6, 0)
    assert test["frames"].shape == (2, 6, 48, 48, 3) and "masks" not in test


def test_phase_one_trains_and_evaluates_on_a_prepared_copy(prepared, tmp_path):
    data_dir, _ = prepared
    config = tiny_config(data=f"tfds:{NAME}", tfds_data_dir=data_dir)
    logs = loop.train_and_evaluate(config, str(tmp_path / "run"), verbose=False)
    assert np.isfinite(logs["loss"])
    results = pairs.evaluate_pairs(runs.restore_networks(str(tmp_path / "run")))
    assert results["pairs"] == 2 * 5 and "mask_iou" not in results


def test_an_absent_copy_says_how_to_prepare_it(prepared, tmp_path):
    with pytest.raises(ValueError, match="needs --tfds_data_dir"):
        source("tfds:bair_robot_pushing_small").check(2)
    with pytest.raises(ValueError, match="tfds build bair_robot_pushing_small"):
        source("tfds:bair_robot_pushing_small", str(tmp_path)).check(2)
    with pytest.raises(ValueError, match="no data set 'nothing_here'.*tfds build"):
        source("tfds:nothing_here", str(tmp_path)).check(2)
    with pytest.raises(ValueError, match="--data='tfds:'"):
        datasets.parse_data_flag("tfds:")


def test_a_data_set_without_video_frames_is_named(tmp_path):
    features = tfds.features.FeaturesDict({"label": tfds.features.Tensor(shape=(), dtype=np.int64)})
    split = tf.data.Dataset.from_tensor_slices({"label": np.arange(3)})
    tfds.dataset_builders.store_as_tfds_dataset(
        name="no_video",
        version="1.0.0",
        features=features,
        split_datasets={"train": split, "test": split},
        data_dir=str(tmp_path),
    )
    with pytest.raises(ValueError, match="no feature holds uint8 video frames.*label"):
        source("tfds:no_video", str(tmp_path)).check(2)
