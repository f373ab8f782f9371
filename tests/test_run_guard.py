"""A run directory has one writer and survives a bad checkpoint (`fgbg_keras.run_guard`)."""

import logging
import os
import resource
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from fgbg_keras import run_guard, runs
from fgbg_keras.training import callbacks, loop
from tests.tiny import TINY_FLAGS, tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLD = (
    "import sys\n"
    "from fgbg_keras import run_guard\n"
    "with run_guard.sole_writer(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"
)


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_one_leaves_no_lock(tmp_path):
    model_dir = str(tmp_path / "run")
    os.makedirs(model_dir)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, model_dir],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        second = subprocess.run(
            [sys.executable, "train.py", "--phase=1", f"--model_dir={model_dir}", *TINY_FLAGS],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=300,
        )
        assert second.returncode != 0
        assert f"--model_dir={model_dir!r} is being written by pid {holder.pid}" in second.stderr
        # Refused before it wrote anything: the holder's files are its own.
        assert os.listdir(model_dir) == [run_guard.LOCK_FILE]
        with pytest.raises(run_guard.RunDirectoryBusy, match=f"pid {holder.pid}"):
            loop.train_and_evaluate(tiny_config(), model_dir, verbose=False)
    finally:
        holder.kill()  # as a crash ends it
        holder.wait()
    with run_guard.sole_writer(model_dir):
        with run_guard.sole_writer(model_dir):  # its own process takes it again
            pass
        with open(os.path.join(model_dir, run_guard.LOCK_FILE)) as f:
            assert f.read().startswith(f"pid {os.getpid()} on ")


def _listed(model_dir):
    state = tf.train.get_checkpoint_state(runs.checkpoint_dir(model_dir))
    return [os.path.basename(p) for p in state.all_model_checkpoint_paths]


def test_a_checkpoint_cut_short_is_set_aside_and_the_run_resumes_from_the_one_before(
    tmp_path, caplog
):
    model_dir = str(tmp_path / "run")
    config = tiny_config(train_steps=4, checkpoint_every=2)
    loop.train_and_evaluate(config, model_dir, verbose=False)
    checkpoints = runs.checkpoint_dir(model_dir)
    assert _listed(model_dir) == ["ckpt-2", "ckpt-4"]
    # A crash or a full disk while ckpt-4 was written: half of its data.
    data = os.path.join(checkpoints, "ckpt-4.data-00000-of-00001")
    half = os.path.getsize(data) // 2
    with open(data, "r+b") as f:
        f.truncate(half)

    caplog.set_level(logging.INFO, logger="absl")
    loop.train_and_evaluate(config, model_dir, verbose=False)
    assert "ckpt-4 does not read whole: Read less bytes than requested" in caplog.text
    assert f"Resumed from {os.path.join(checkpoints, 'ckpt-2')}" in caplog.text
    set_aside = os.path.join(checkpoints, run_guard.SET_ASIDE)
    assert os.path.getsize(os.path.join(set_aside, os.path.basename(data))) == half
    # Steps 3 and 4 trained again and saved whole.
    assert _listed(model_dir) == ["ckpt-2", "ckpt-4"]
    assert run_guard.usable_checkpoint(checkpoints).endswith("ckpt-4")

    # A checkpoint missing a file: the readers (evaluation, generation, exports) go back too.
    os.remove(os.path.join(checkpoints, "ckpt-4.index"))
    caplog.clear()
    restored = runs.restore_networks(model_dir)
    assert restored.checkpoint.endswith("ckpt-2")
    assert "ckpt-4 does not read whole" in caplog.text
    assert _listed(model_dir) == ["ckpt-2"]


def test_a_relative_run_directory_resumes_from_its_checkpoints(tmp_path, monkeypatch):
    # As the README's commands give it: --model_dir=runs/NAME, relative to where train.py runs.
    monkeypatch.chdir(tmp_path)
    config = tiny_config(train_steps=4, checkpoint_every=2)
    loop.train_and_evaluate(config, os.path.join("runs", "tiny"), verbose=False)
    checkpoints = runs.checkpoint_dir(os.path.join("runs", "tiny"))
    assert run_guard.usable_checkpoint(checkpoints) == os.path.join(checkpoints, "ckpt-4")
    restored = runs.restore_networks(os.path.join("runs", "tiny"))
    assert restored.checkpoint == os.path.join(checkpoints, "ckpt-4")
    assert _listed(os.path.join("runs", "tiny")) == ["ckpt-2", "ckpt-4"]
    assert not os.path.exists(os.path.join(checkpoints, run_guard.SET_ASIDE))


class _Guard:
    failure = None


def test_a_checkpoint_that_cannot_be_written_stops_the_run_and_leaves_the_earlier_ones(
    tmp_path,
):
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((4, 64)), np.zeros((4, 64)), epochs=1, verbose=0)
    _, manager = runs.make_checkpoint({"model": model, "optimizer": model.optimizer}, str(tmp_path))
    saver = callbacks.CheckpointSaver(manager, every=1, total_steps=10, nan_guard=_Guard())
    saver.set_model(model)
    saver.on_epoch_end(0)
    first = manager.latest_checkpoint
    assert first.endswith("ckpt-1")
    model.optimizer.iterations.assign(2)
    # The disk fills up: no file may grow past 4 kB (the checkpoint's data is about 50 kB).
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, limits[1]))
    try:
        with pytest.raises(run_guard.CheckpointNotWritten) as raised:
            saver.on_epoch_end(1)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    message = str(raised.value)
    assert "step 2 could not be written" in message and "File too large" in message
    assert f"the latest: {first}" in message
    # Nothing of step 2 is left, and step 1 is listed and reads whole.
    names = os.listdir(runs.checkpoint_dir(str(tmp_path)))
    assert not [name for name in names if name.startswith("ckpt-2")], names
    assert tf.train.latest_checkpoint(runs.checkpoint_dir(str(tmp_path))) == first
    assert run_guard.usable_checkpoint(runs.checkpoint_dir(str(tmp_path))) == first
