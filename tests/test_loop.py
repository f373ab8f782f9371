import json
import os

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import pipeline
from fgbg_keras import runs
from fgbg_keras.evaluation import evaluator, pairs
from fgbg_keras.training import loop, phases
from fgbg_keras.training.phase_one import build_phase_one
from tests.harness import checkpoint_values, read_events, start_train, wait_ok
from tests.tiny import synthetic_split, tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("run"))
    logs = loop.train_and_evaluate(tiny_config(), model_dir, verbose=False)
    return model_dir, logs


def test_run_writes_config_checkpoints_and_summaries(trained):
    model_dir, logs = trained
    assert os.path.exists(os.path.join(model_dir, "config.json"))
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith("ckpt-4")
    for sub in ("train", "validation"):
        assert os.listdir(os.path.join(model_dir, sub))
    assert "val_mask_iou" in logs and np.isfinite(logs["val_mask_iou"])


TRAIN_SCALARS = [
    "reconstruction_loss",
    "background_loss",
    "sparsity_loss",
    "binarization_loss",
    "codebook_loss",
    "commitment_loss",
    "sparsity_weight",
    "bg_spar_ratio",
    "perplexity",
    "codes_used",
    "mask_mean",
    "learning_rate",
]
VALIDATION_SUMMARIES = [
    "frame_t",
    "frame_t_plus_1",
    "predicted_frame",
    "mask",
    "mask_overlay",
    "mask_iou",
]


def test_summaries_hold_the_promised_scalars_and_images(trained):
    model_dir, _ = trained
    train = read_events(model_dir, "train")
    assert set(TRAIN_SCALARS) <= set(train.Tags()["tensors"])
    assert [e.step for e in train.Tensors("background_loss")] == [2, 4]
    assert set(VALIDATION_SUMMARIES) <= set(read_events(model_dir, "validation").Tags()["tensors"])


def test_resume_restores_step_weights_and_schedule(trained, tmp_path):
    model_dir, _ = trained
    saved = checkpoint_values(model_dir)
    # Resuming a finished run trains nothing and leaves the checkpoint as it was.
    assert loop.train_and_evaluate(tiny_config(), model_dir, verbose=False) == {}
    config = tiny_config()
    phase = phases.get(1)
    model, optimizer = phase.build(config, _batch(config))
    checkpoint, manager = runs.make_checkpoint(phase.checkpoint_state(model, optimizer), model_dir)
    checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    assert int(optimizer.iterations.numpy()) == 4
    saved_tensors = list(saved.values())
    fresh = build_phase_one(config)
    fresh(_batch(config))
    for restored in model.trainable_weights:
        value = restored.numpy()
        assert any(t.shape == value.shape and np.array_equal(t, value) for t in saved_tensors), (
            restored.path
        )
    stem = model.mask_generator.get_layer("stem_conv").kernel.numpy()
    assert not np.array_equal(stem, fresh.mask_generator.get_layer("stem_conv").kernel.numpy())
    weight_key = [k for k in saved if "sparsity_schedule/weight" in k][0]
    assert float(model.sparsity_schedule.weight.numpy()) == float(saved[weight_key])


def test_resumed_run_equals_an_uninterrupted_run(tmp_path):
    whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
    loop.train_and_evaluate(tiny_config(), whole, verbose=False)
    loop.train_and_evaluate(tiny_config(train_steps=2), split, verbose=False)
    loop.train_and_evaluate(tiny_config(), split, verbose=False)
    a, b = checkpoint_values(whole), checkpoint_values(split)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_a_curriculum_switches_to_long_windows_and_resumes_across_the_switch(tmp_path, monkeypatch):
    calls = []
    batch_windows = pipeline.batch_windows

    def spy(windows, clips_per_batch, *args, **kwargs):
        calls.append((windows.element_spec["frames"].shape[0], clips_per_batch))
        return batch_windows(windows, clips_per_batch, *args, **kwargs)

    monkeypatch.setattr(pipeline, "batch_windows", spy)
    curriculum = {"long_windows_from": 2, "long_frames_per_clip": 5, "long_clips_per_batch": 2}
    whole = str(tmp_path / "whole")
    loop.train_and_evaluate(tiny_config(**curriculum), whole, verbose=False)
    assert calls == [(3, 1), (5, 2)]  # tiny_config: 3 frames, 1 clip per batch until step 2
    # Resumed from the step-2 checkpoint, the run starts in the long windows' stretch and ends
    # where the uninterrupted run did.
    resumed = str(tmp_path / "resumed")
    os.makedirs(os.path.join(resumed, "checkpoints"))
    for name in os.listdir(os.path.join(whole, "checkpoints")):
        if name.startswith("ckpt-2."):
            source = os.path.join(whole, "checkpoints", name)
            tf.io.gfile.copy(source, os.path.join(resumed, "checkpoints", name))
    with open(os.path.join(resumed, "checkpoints", "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-2"\n')
    tf.io.gfile.copy(os.path.join(whole, "config.json"), os.path.join(resumed, "config.json"))
    calls.clear()
    loop.train_and_evaluate(tiny_config(**curriculum), resumed, verbose=False)
    assert calls == [(5, 2)]
    a, b = checkpoint_values(whole), checkpoint_values(resumed)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# A 64x64 U-Net run of 2 steps: with Grappler's graph rewrites on (before --deterministic
# turned them off), two processes trained it into different weights from the first step.
UNET64_FLAGS = [
    "--phase=1",
    "--image_size=64",
    "--generator=unet",
    "--mask_ngf=16",
    "--mask_res_blocks=3",
    "--unet_filters=16",
    "--unet_max_filters=64",
    "--clips_per_batch=6",
    "--frames_per_clip=4",
    "--train_steps=2",
    "--log_every=2",
    "--checkpoint_every=2",
    "--image_every=2",
    "--num_train_clips=8",
    "--num_val_clips=2",
    "--clip_length=6",
    "--learning_rate=1e-3",
    "--noevaluate",
]


def test_same_seed_gives_identical_runs_in_two_processes_and_another_seed_does_not(tmp_path):
    seeds = {"a": 3, "b": 3, "c": 4}
    wait_ok(
        [
            start_train(f"--model_dir={tmp_path / name}", f"--seed={seed}", *UNET64_FLAGS)
            for name, seed in seeds.items()
        ]
    )
    saved = {name: checkpoint_values(str(tmp_path / name)) for name in seeds}
    for name in saved["a"]:
        np.testing.assert_array_equal(saved["a"][name], saved["b"][name], err_msg=name)
    assert any(not np.array_equal(saved["a"][n], saved["c"][n]) for n in saved["a"])


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    model_dir = str(tmp_path / "nan")
    real_pairs = pipeline.pairs

    def poisoned(*args, **kwargs):
        # The run starts at step 0, so batch `index` is step `index`.
        def poison(index, batch):
            batch = dict(batch)
            poisoned_frame = batch["frame"] * float("nan")
            batch["frame"] = tf.where(index >= 3, poisoned_frame, batch["frame"])
            return batch

        return real_pairs(*args, **kwargs).enumerate().map(poison)

    monkeypatch.setattr(pipeline, "pairs", poisoned)
    with pytest.raises(loop.TrainingDiverged, match=r"step 4: \w+_loss is nan.*ckpt-2"):
        loop.train_and_evaluate(tiny_config(train_steps=6), model_dir, verbose=False)
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    assert latest.endswith("ckpt-2")
    values = checkpoint_values(model_dir)
    assert all(np.all(np.isfinite(v)) for v in values.values() if v.dtype.kind == "f")


def test_evaluate_reports_the_table(trained):
    model_dir, _ = trained
    results = pairs.evaluate_pairs(runs.restore_networks(model_dir))
    assert results["step"] == 4
    assert results["pairs"] == 2 * 5  # num_test_clips * (clip_length - 1)
    for name in pairs.METRICS:
        assert np.isfinite(results[name]) and np.isfinite(results[f"{name}_std"]), name
    assert 0.0 <= results["mask_iou"] <= 1.0 and 0.0 <= results["diff_mask_iou"] <= 1.0
    table = pairs.format_table(results)
    assert "mask IoU" in table and "copy-last" in table and f"{results['psnr']:.2f}" in table


def test_model_dir_errors(tmp_path):
    with pytest.raises(ValueError, match="--model_dir is required"):
        runs.check_model_dir("")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"--model_dir=.*file/run.*cannot be created"):
        runs.check_model_dir(str(blocker / "run"))
    with pytest.raises(ValueError, match="no config.json"):
        evaluator.evaluate_and_report(str(tmp_path))


def test_resume_with_other_network_settings_is_refused(trained):
    model_dir, _ = trained
    config = tiny_config()
    config.model.mask_ngf = 8
    with pytest.raises(ValueError, match="mask_ngf"):
        runs.write_config(config, model_dir, phases.get(1))
    with open(os.path.join(model_dir, "config.json")) as f:
        assert json.load(f)["model"]["mask_ngf"] == 4


def _batch(config):
    clips = synthetic_split(config, "validation", 1)
    return next(iter(pipeline.eval_triples(clips, batch_size=2)))
