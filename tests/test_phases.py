"""The phase registry: `--phase` lists what is registered, and `loop.train_and_evaluate` runs a
phase it has never seen the same way as the built-in ones (resumable, its config recorded)."""

import json
import os

import keras
import pytest

from fgbg_keras import runs
from fgbg_keras.training import loop, phases
from tests.tiny import tiny_config


class NextFrameFromFirst(phases.Phase):
    """A phase of a test: a 1x1 convolution that maps each window's first frame to its second."""

    name = "toy_next_frame"
    help = "toy_next_frame: a test's phase."
    fgbg_networks = False
    validates = False

    def build(self, config, sample_batch):
        size = config.model.image_size
        model = keras.Sequential([keras.Input((size, size, 3)), keras.layers.Conv2D(3, 1)])
        optimizer = phases.adam(config, config.train.learning_rate)
        model.compile(optimizer=optimizer, loss="mae")
        optimizer.build(model.trainable_variables)
        return model, optimizer

    def train_data(self, config, batches):
        return batches.map(lambda batch: (batch["frames"][:, 0], batch["frames"][:, 1]))


def test_the_built_in_phases_in_flag_order():
    assert phases.names() == ("1", "2", "baseline_convlstm")
    assert phases.get(1) is phases.get("1") and phases.get(2).needs_init_from
    assert [runs.recorded_phase(name) for name in phases.names()] == [1, 2, "baseline_convlstm"]
    assert [phases.get(n).fgbg_networks for n in phases.names()] == [True, True, False]
    assert [phases.get(n).convlstm_network for n in phases.names()] == [False, False, True]
    with pytest.raises(ValueError, match=r"--phase='3': must be one of \('1', '2', "):
        phases.get("3")


def test_a_new_phase_runs_through_the_one_loop(monkeypatch, tmp_path):
    monkeypatch.setitem(phases._PHASES, NextFrameFromFirst.name, NextFrameFromFirst())
    model_dir = str(tmp_path / "toy")
    logs = loop.train_and_evaluate(
        tiny_config(train_steps=2), model_dir, "toy_next_frame", verbose=False
    )
    assert "loss" in logs
    with open(os.path.join(model_dir, runs.CONFIG_FILE)) as f:
        assert json.load(f)["phase"] == "toy_next_frame"
    assert runs.latest_checkpoint(model_dir)[1].endswith("ckpt-2")
    # Resumed at --train_steps: nothing to do. Another phase in the same directory: refused.
    assert loop.train_and_evaluate(tiny_config(train_steps=2), model_dir, "toy_next_frame") == {}
    with pytest.raises(ValueError, match="holds a Phase toy_next_frame run, not a Phase 1 one"):
        loop.train_and_evaluate(tiny_config(train_steps=2), model_dir, verbose=False)
    with pytest.raises(ValueError, match="not a fgbg one"):
        runs.restore_networks(model_dir)
