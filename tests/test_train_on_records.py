"""Training both phases on converted data, with and without ground truth, and bad `--data`."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from data_pipelines import conversion, datasets, sources, synthetic
from fgbg_keras import runs
from fgbg_keras.evaluation import evaluator, pairs
from fgbg_keras.training import loop
from tests.tiny import tiny_config


@pytest.fixture(scope="module")
def frame_folders(tmp_path_factory):
    """Synthetic clips saved as frame folders and converted: real-video-like, no ground truth.
    The frames are 48x48, so training at 32x32 also checks the resizing."""
    root = tmp_path_factory.mktemp("folders")
    clips = synthetic.make_split("train", 8, synthetic.scaled_config(48, 7), seed=4)
    for i, frames in enumerate(clips["frames"]):
        folder = root / "pushing" / f"clip{i}"
        folder.mkdir(parents=True)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / f"{t:03d}.png")
    output = tmp_path_factory.mktemp("converted")
    options = sources.Options(size=48, min_frames=3, test_fraction=0.4)
    conversion.convert("frames", str(root), str(output), options, num_shards=2)
    return str(output)


def test_both_phases_train_and_evaluate_on_records_without_ground_truth(frame_folders, tmp_path):
    data = f"tfrecord:{frame_folders}"
    phase_one, phase_two = str(tmp_path / "p1"), str(tmp_path / "p2")
    logs = loop.train_and_evaluate(tiny_config(data=data), phase_one, verbose=False)
    assert np.isfinite(logs["loss"]) and "val_mask_iou" not in logs
    config = tiny_config(data=data)
    config.phase_two.disc_filters = 8
    config.phase_two.disc_start = 2
    logs = loop.train_and_evaluate(config, phase_two, phase=2, init_from=phase_one, verbose=False)
    assert np.isfinite(logs["loss"])
    # The default 16 steps need 17 frames: the evaluation rolls out what the 7-frame clips
    # allow, and says so.
    text = evaluator.evaluate_and_report(phase_two)
    with open(os.path.join(phase_two, evaluator.REPORT_NAME)) as f:
        results = json.load(f)
    assert results["data"] == data and "mask_iou" not in results
    assert results["pairs"] == 2 * 5  # 2 test clips of 7 frames, cut to --clip_length=6
    # Frame folders are recordings: M's masks are compared with MOG2's, learned from them.
    assert 0.0 <= results["mog2_iou"] <= 1.0 and 0.0 <= results["mog2_mean"] <= 1.0
    assert results["background_psnr"] > 0 and 0.0 <= results["mask_mean"] <= 1.0
    rollouts = results["rollout"]
    assert rollouts["ground_truth"] is False
    assert set(rollouts) >= {"fitted_carry", "paste_only", "mog2_paste", "copy_first"}
    assert "true_carry" not in rollouts
    assert rollouts["steps"] == 6 and rollouts["steps_asked"] == 16
    assert len(rollouts["fitted_carry"]["control_error_per_step"]) == 6
    assert len(rollouts["copy_first"]["psnr_per_step"]) == 6
    assert "16 asked, the test clips have 7 frames" in text
    assert "no ground truth" in text and "mask IoU (binarised" not in text
    assert "mask IoU with MOG2's masks" in text and "PSNR outside the masks" in text


def test_records_with_ground_truth_report_mask_iou(tmp_path):
    output = str(tmp_path / "synthetic")
    options = sources.Options(size=32, clip_length=6, num_clips=10, seed=2, test_fraction=0.3)
    conversion.convert("synthetic", None, output, options, num_shards=2)
    model_dir = str(tmp_path / "p1")
    loop.train_and_evaluate(tiny_config(data=f"tfrecord:{output}"), model_dir, verbose=False)
    results = pairs.evaluate_pairs(runs.restore_networks(model_dir))
    assert 0.0 <= results["mask_iou"] <= 1.0 and results["pairs"] == 2 * 5


def test_test_clips_shorter_than_clip_length_are_refused_before_training(frame_folders, tmp_path):
    config = tiny_config(data=f"tfrecord:{frame_folders}", clip_length=8)
    with pytest.raises(ValueError, match="--clip_length=8: the test clips .* at most 7 frames"):
        loop.train_and_evaluate(config, str(tmp_path / "run"), verbose=False)
    assert not os.path.exists(tmp_path / "run" / runs.CONFIG_FILE)


def test_bad_data_flags_are_named(tmp_path):
    for data, message in (
        (
            "videos",
            "--data='videos': must be 'synthetic', 'pushing', 'tfrecord:DIR' or 'tfds:NAME'",
        ),
        ("tfds:bair_robot_pushing_small", "needs --tfds_data_dir"),
        (f"tfrecord:{tmp_path / 'missing'}", "is not a folder"),
        (f"tfrecord:{tmp_path}", "has no dataset.json"),
    ):
        with pytest.raises(ValueError, match=message):
            loop.train_and_evaluate(tiny_config(data=data), str(tmp_path / "run"), verbose=False)
        assert not os.path.exists(tmp_path / "run" / runs.CONFIG_FILE)
    with pytest.raises(ValueError, match="'tfrecord:DIR' or 'tfds:NAME'"):
        datasets.parse_data_flag("tfrecord:")
