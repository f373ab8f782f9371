"""The registry of `--data` kinds: the flag names what is registered, and a kind it has never
seen trains and evaluates like the built-in ones."""

import numpy as np
import pytest

from data_pipelines import datasets, pipeline
from fgbg_keras import runs
from fgbg_keras.evaluation import pairs
from fgbg_keras.training import loop
from tests.tiny import tiny_config


class NoiseSource(datasets.DataSource):
    """A kind of a test: clips of seeded uniform noise, with no ground truth."""

    kind = "noise"
    usage = "noise"
    help = "a test's noise"

    def __init__(self, size):
        self.size = size

    @classmethod
    def from_config(cls, location, config):
        return cls(config.model.image_size)

    def training_windows(self, frames_per_clip, seed, start_index, background=False):
        clips = self.evaluation_clips("train", 4, frames_per_clip + 2, seed)
        return pipeline.clip_windows(
            clips, frames_per_clip, seed, start_index, background=background
        )

    def evaluation_clips(self, split, num_clips, clip_length, seed):
        rng = np.random.default_rng([seed, len(split)])
        shape = (num_clips, clip_length, self.size, self.size, 3)
        return {"frames": rng.integers(0, 256, shape, dtype=np.uint8)}


def test_the_built_in_kinds_and_what_they_hold():
    assert datasets.kinds() == ("synthetic", "pushing", "tfrecord", "tfds")
    assert datasets.parse_data_flag("synthetic") == ("synthetic", None)
    assert datasets.parse_data_flag("tfrecord:/data/x") == ("tfrecord", "/data/x")
    for data in ("synthetic:x", "pushing:x", "tfrecord", "tfds:", "videos:/x"):
        with pytest.raises(ValueError, match=f"--data='{data}': must be 'synthetic'"):
            datasets.parse_data_flag(data)
    synthetic = datasets.source(tiny_config())
    assert synthetic.has_controls and synthetic.has_masks
    clips = synthetic.evaluation_clips("test", 2, 5, seed=0)
    assert clips["frames"].shape == (2, 5, 32, 32, 3) and clips["offsets"].shape == (2, 4, 2)
    records = datasets.source(tiny_config(data="tfrecord:/nowhere"))
    assert not records.has_controls


def test_a_new_kind_trains_and_evaluates_through_the_registry(monkeypatch, tmp_path):
    monkeypatch.setitem(datasets._KINDS, "noise", NoiseSource)
    with pytest.raises(ValueError, match="'tfds:NAME' or 'noise'"):
        datasets.parse_data_flag("noisy")
    model_dir = str(tmp_path / "run")
    logs = loop.train_and_evaluate(tiny_config(data="noise"), model_dir, verbose=False)
    assert np.isfinite(logs["loss"]) and "val_mask_iou" not in logs
    results = pairs.evaluate_pairs(runs.restore_networks(model_dir))
    assert results["data"] == "noise" and "mask_iou" not in results
    assert results["pairs"] == 2 * 5  # --num_test_clips clips of --clip_length frames
