"""Runs saved before the phase, generator, data and method registries (commit 206e3b3, see
tests/data/runs_206e3b3/README.md) load, evaluate to the figures that commit computed, and
resume."""

import json
import math
import os
import shutil

import numpy as np
import pytest

from fgbg_keras import runs
from fgbg_keras.evaluation import evaluator
from fgbg_keras.training import loop
from tests.tiny import tiny_config

SAVED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "runs_206e3b3")
FGBG_RUNS = ("vqvae_phase1", "unet_phase1", "unet_phase2")
ADDED_METHODS = ("mapped_carry", "fitted_parts")
# One-step figures added since that commit (each with its standard deviation).
ADDED_METRICS = ("background_psnr", "copy_last_background_psnr", "mask_mean", "diff_mean")


def figures(results, prefix=""):
    """Every number of an evaluation's results, by its path (lists by index)."""
    out = {}
    for key, value in results.items():
        if key == "checkpoint":
            continue
        if isinstance(value, dict):
            out.update(figures(value, f"{prefix}{key}/"))
        elif isinstance(value, list):
            out.update({f"{prefix}{key}[{i}]": v for i, v in enumerate(value)})
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[prefix + key] = value
    return out


@pytest.fixture(scope="module")
def saved():
    with open(os.path.join(SAVED, "evaluations.json")) as f:
        return json.load(f)


def copy_of(name, tmp_path):
    """A copy of a saved run: evaluation writes its GIF and training its checkpoints there."""
    copy = str(tmp_path / name)
    shutil.copytree(os.path.join(SAVED, name), copy)
    return copy


@pytest.mark.parametrize("name", FGBG_RUNS)
def test_a_saved_run_evaluates_to_the_figures_it_had(name, saved, tmp_path):
    kwargs = {"rollout_steps": 3, "num_clips": 2}
    if name == "unet_phase2":
        kwargs["convlstm_dir"] = os.path.join(SAVED, "convlstm")
    output = str(tmp_path / "eval.json")
    evaluator.evaluate_and_report(copy_of(name, tmp_path), output=output, **kwargs)
    with open(output) as f:
        now = figures(json.load(f))
    before = figures(saved[name])
    # Metrics and rollout methods added since that commit add their figures; nothing else
    # changes.
    added = now.keys() - before.keys()
    metrics = {key for key in added if "/" not in key}
    methods = {key.split("/")[1] for key in added - metrics}
    assert before.keys() <= now.keys() and methods <= set(ADDED_METHODS), methods
    assert metrics <= {m + s for m in ADDED_METRICS for s in ("", "_std")}, metrics
    for key, value in before.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(now[key]), key
        else:
            assert now[key] == pytest.approx(value, rel=1e-3, abs=1e-3), key


def test_saved_runs_restore_with_the_phase_they_were_trained_in():
    phase_one = runs.restore_networks(os.path.join(SAVED, "unet_phase1"))
    phase_two = runs.restore_networks(os.path.join(SAVED, "unet_phase2"))
    assert (phase_one.phase, phase_two.phase) == (1, 2)
    assert (phase_one.moving_masks, phase_two.moving_masks) == (False, True)
    # Phase I's generator keeps nothing of the object as pasted; Phase II's the saved band.
    assert phase_one.frame_generator.keep_pasted == 0
    assert phase_two.frame_generator.keep_pasted == phase_two.config.model.unet_keep_pasted == 1
    config, convlstm = runs.restore_convlstm(os.path.join(SAVED, "convlstm"))
    assert config.baseline.convlstm_lstm_filters == 8 and len(convlstm.weights) == 13


def unet_config(train_steps):
    config = tiny_config(train_steps=train_steps, checkpoint_every=2, keep_checkpoints=1)
    config.model.generator = "unet"
    config.model.unet_filters, config.model.unet_max_filters = 8, 16
    return config


def test_saved_runs_resume(tmp_path):
    copies = {
        name: copy_of(name, tmp_path)
        for name in ("vqvae_phase1", "unet_phase1", "unet_phase2", "convlstm")
    }
    before = runs.restore_networks(copies["vqvae_phase1"]).frame_generator.get_weights()
    one = tiny_config(train_steps=4, checkpoint_every=2, keep_checkpoints=1)
    loop.train_and_evaluate(one, copies["vqvae_phase1"], verbose=False)
    after = runs.restore_networks(copies["vqvae_phase1"])
    assert after.checkpoint.endswith("ckpt-4")
    assert any(
        not np.array_equal(a, b) for a, b in zip(before, after.frame_generator.get_weights())
    )

    two = unet_config(train_steps=6)
    two.phase_two.disc_filters, two.phase_two.disc_start = 8, 2
    two.phase_two.ss_interval, two.phase_two.ss_start = 1, 2
    loop.train_and_evaluate(
        two, copies["unet_phase2"], phase=2, init_from=copies["unet_phase1"], verbose=False
    )
    assert runs.restore_networks(copies["unet_phase2"]).checkpoint.endswith("ckpt-6")

    baseline = tiny_config(train_steps=4, checkpoint_every=2, keep_checkpoints=1)
    baseline.baseline.convlstm_filters, baseline.baseline.convlstm_lstm_filters = 4, 8
    loop.train_and_evaluate(baseline, copies["convlstm"], "baseline_convlstm", verbose=False)
    assert runs.latest_checkpoint(copies["convlstm"])[1].endswith("ckpt-4")
