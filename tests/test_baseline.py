"""The ConvLSTM baseline trains like a phase (resumable, same data), is restored by its own
loader only, and reaches the evaluation report beside the model."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import datasets, pipeline
from fgbg_keras import runs
from fgbg_keras.evaluation import evaluator
from fgbg_keras.training import baseline, loop
from tests.tiny import tiny_config

PHASE = baseline.PHASE.name


def baseline_config(train_steps=4):
    config = tiny_config(train_steps=train_steps)
    config.baseline.convlstm_filters = 4
    config.baseline.convlstm_lstm_filters = 8
    return config


@pytest.fixture(scope="module")
def baseline_dir(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("baseline") / "convlstm")
    loop.train_and_evaluate(baseline_config(), model_dir, PHASE, verbose=False)
    return model_dir


def test_it_trains_resumes_and_restores(baseline_dir):
    with open(os.path.join(baseline_dir, runs.CONFIG_FILE)) as f:
        assert json.load(f)["phase"] == PHASE
    assert runs.run_phase(baseline_dir) == PHASE
    config, model = runs.restore_convlstm(baseline_dir)
    weights = [w.numpy() for w in model.weights]
    # Every weight is in the checkpoint (the ConvLSTM's cell included), so a second restore of
    # fresh networks is identical.
    latest = runs.latest_checkpoint(baseline_dir)[1]
    saved = [n for n, _ in tf.train.list_variables(latest) if n.startswith("model/")]
    assert len(saved) == len(model.weights) == 13, saved
    _, twice = runs.restore_convlstm(baseline_dir)
    assert len(weights) == len(twice.weights) == 13
    for a, w in zip(weights, twice.weights):
        np.testing.assert_array_equal(a, w.numpy())
    # Resuming to 6 steps trains 2 more and changes the weights.
    loop.train_and_evaluate(baseline_config(train_steps=6), baseline_dir, PHASE, verbose=False)
    _, again = runs.restore_convlstm(baseline_dir)
    assert runs.latest_checkpoint(baseline_dir)[1].endswith("-6")
    assert any(np.abs(a - w.numpy()).max() > 0 for a, w in zip(weights, again.weights))
    frame = tf.zeros([2, 32, 32, 3])
    out = again({"frame": frame, "offsets": tf.ones([2, 5, 2])})
    assert out.shape == (2, 5, 32, 32, 3)


def test_each_loader_refuses_the_other_kind_of_run(baseline_dir, unet_run_dir):
    with pytest.raises(ValueError, match="not a fgbg one .*--convlstm_dir"):
        runs.restore_networks(baseline_dir)
    with pytest.raises(ValueError, match="is not a --phase=baseline_convlstm run"):
        runs.restore_convlstm(unet_run_dir)


def test_the_baseline_reaches_the_report(baseline_dir, unet_run_dir, tmp_path):
    folder = tmp_path / "report"
    evaluator.evaluate_and_report(
        unet_run_dir, output=str(folder), num_clips=2, rollout_steps=3, convlstm_dir=baseline_dir
    )
    rollout = json.loads((folder / "metrics.json").read_text())["rollout"]
    assert len(rollout["convlstm"]["psnr_per_step"]) == 3
    assert np.isfinite(rollout["convlstm"]["psnr"])
    assert "| ConvLSTM (same controls) |" in (folder / "report.md").read_text()


def test_windows_keep_their_offsets_in_the_resized_pixels():
    frames = np.zeros((1, 4, 32, 48, 3), np.uint8)
    offsets = np.tile(np.array([[[4.0, 2.0]]], np.float32), (1, 3, 1))
    windows = pipeline.clip_windows({"frames": frames, "offsets": offsets}, 4, seed=0)
    batch = next(iter(pipeline.batch_windows(windows, 1, (16, 16), keep_offsets=True)))
    np.testing.assert_allclose(batch["offsets"][0], np.tile([[4.0 / 3, 1.0]], (3, 1)), rtol=1e-6)
    plain = next(iter(pipeline.batch_windows(windows, 1, (16, 16))))
    assert "offsets" not in plain


def test_windows_without_offsets_become_zero_controls_with_a_static_length():
    frames = tf.zeros([2, 5, 8, 8, 3])
    inputs, targets = baseline.inputs_and_targets({"frames": frames})
    assert inputs["offsets"].shape == (2, 4, 2) and float(tf.reduce_max(inputs["offsets"])) == 0
    assert targets.shape == (2, 4, 8, 8, 3)
    spec = tf.TensorSpec([None, 5, 8, 8, 3])
    traced = tf.function(lambda f: baseline.inputs_and_targets({"frames": f})[0]["offsets"])
    assert traced.get_concrete_function(spec).output_shapes.as_list() == [None, 4, 2]


def test_only_the_synthetic_source_trains_with_controls():
    config = baseline_config()
    assert datasets.source(config).has_controls
    config.train.data = "tfrecord:/data/videos"
    assert not datasets.source(config).has_controls


def test_resuming_with_other_baseline_settings_names_them(baseline_dir):
    config = baseline_config(train_steps=6)
    config.baseline.convlstm_lstm_filters = 16
    with pytest.raises(ValueError, match="convlstm_lstm_filters.*\\(8, 16\\)"):
        loop.train_and_evaluate(config, baseline_dir, PHASE, verbose=False)
