"""The command line of train.py, run as a user runs it."""

import json
import os
import subprocess
import sys

import pytest

from tests.tiny import TINY_FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_train(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "train.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def train_flags():
    """absl's FLAGS with train.py's flags defined (once per test process)."""
    from absl import flags

    from fgbg_keras import flags as fgbg_flags

    if "phase" not in flags.FLAGS:
        fgbg_flags.define_train_flags()
    return flags.FLAGS


def test_help_explains_every_flag_of_ours():
    result = run_train("--help")
    out = result.stdout
    from fgbg_keras.config import RunConfig

    # Every flag of ours is listed with its help text (absl exits 1 after printing help), by
    # --help itself, not only --helpfull.
    for _, field in RunConfig().fields():
        name, text = field.name, field.metadata["help"]
        assert f"--{name}" in out or f"--[no]{name}" in out, name
        assert text.split()[0] in out, name
    for name in ("--phase", "--model_dir", "--[no]evaluate"):
        assert name in out, name


def test_unknown_flag_is_a_one_line_error(tmp_path):
    result = run_train("--phase=1", f"--model_dir={tmp_path}", "--bg_weigth=3")
    assert result.returncode != 0
    assert "Unknown command line flag 'bg_weigth'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--bg_weight=-1", "--bg_weight=-1.0: must be a finite number >= 0"),
        ("--image_size=62", "--image_size=62: must be divisible by 4"),
        ("--generator_filters=8,x", "--generator_filters=8,x: must be comma-separated integers"),
        ("--bg_mask=previous", "--bg_mask"),
    ],
)
def test_bad_values_are_named_before_any_graph_is_built(tmp_path, flag, message):
    result = run_train("--phase=1", f"--model_dir={tmp_path / 'run'}", flag)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_unwritable_model_dir_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_train("--phase=1", f"--model_dir={blocker}/run")
    assert result.returncode != 0
    assert f"--model_dir='{blocker}/run'" in result.stderr
    assert "Traceback" not in result.stderr


def test_flagfile_parses_and_tiny_run_trains_evaluates_and_writes_flags(tmp_path):
    flagfile = tmp_path / "tiny.flags"
    flagfile.write_text(
        "\n".join(
            [
                "--flagfile=" + os.path.join(ROOT, "configs", "synthetic.flags"),
                *TINY_FLAGS,
            ]
        )
    )
    model_dir = tmp_path / "run"
    result = run_train("--phase=1", f"--flagfile={flagfile}", f"--model_dir={model_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mask IoU" in result.stdout and "copy-last" in result.stdout
    assert f"tensorboard --logdir {model_dir}" in result.stdout
    flags = json.loads((model_dir / "flags.json").read_text())
    assert flags["image_size"] == 32 and flags["bg_mask"] == "union" and flags["phase"] == "1"
    # flags.json keeps what was asked (synthetic.flags: auto); config.json what this machine got.
    assert flags["precision"] == "auto"
    config = json.loads((model_dir / "config.json").read_text())
    from fgbg_keras import hardware

    expected = hardware.auto_precision(hardware.cpu(), hardware.gpu_capabilities())
    assert config["train"]["precision"] == expected
    assert f"--precision=auto: {expected}" in result.stderr
    report = json.loads((model_dir / "eval_test.json").read_text())
    assert report["step"] == 2 and report["pairs"] == 5  # 1 test clip of 6 frames
    assert f"{report['mask_iou']:.3f}" in result.stdout


def test_the_convlstm_baseline_trains_from_the_command_line(tmp_path):
    model_dir = tmp_path / "convlstm"
    result = run_train(
        "--phase=baseline_convlstm",
        "--flagfile=" + os.path.join(ROOT, "configs", "synthetic.flags"),
        f"--model_dir={model_dir}",
        "--image_size=32",
        "--convlstm_filters=4",
        "--convlstm_lstm_filters=8",
        "--train_steps=2",
        "--log_every=1",
        "--checkpoint_every=2",
        "--clips_per_batch=1",
        "--frames_per_clip=3",
        "--clip_length=6",
        "--num_train_clips=4",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"--convlstm_dir={model_dir}" in result.stdout
    assert (model_dir / "checkpoints").is_dir() and (model_dir / "train").is_dir()
    result = run_train(
        "--phase=baseline_convlstm", f"--model_dir={tmp_path / 'b'}", "--image_size=30"
    )
    assert result.returncode != 0 and "--image_size=30" in result.stderr


def test_phase_two_without_a_usable_init_from_is_named(tmp_path):
    result = run_train("--phase=2", f"--model_dir={tmp_path / 'a'}")
    assert result.returncode != 0
    assert "--init_from is required with --phase=2" in result.stderr
    missing = tmp_path / "missing"
    result = run_train("--phase=2", f"--model_dir={tmp_path / 'b'}", f"--init_from={missing}")
    assert result.returncode != 0
    assert f"--init_from='{missing}' does not exist" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "name", sorted(f for f in os.listdir(os.path.join(ROOT, "configs")) if f.endswith(".flags"))
)
def test_every_shipped_flagfile_parses_and_validates(name, monkeypatch):
    from fgbg_keras import flags as fgbg_flags
    from fgbg_keras.training import phases

    monkeypatch.chdir(ROOT)  # flag files name each other relative to the repository root
    flags = train_flags()
    flags.unparse_flags()
    try:
        flags(["train.py", "--flagfile=" + os.path.join(ROOT, "configs", name)])
        phase = phases.get(2 if "phase2" in name else 1)
        config = phase.validate(fgbg_flags.config_from_flags())
    finally:
        flags.unparse_flags()
    assert config.model.image_size == (256 if name.startswith("paper256") else 64)
    assert config.model.generator == "unet"
    if name.startswith("paper256"):
        # The paper's networks: 9 residual blocks in M, 8 U-Net levels at 256x256.
        assert (config.model.mask_ngf, config.model.mask_res_blocks) == (64, 9)
        assert (config.model.unet_filters, config.model.unet_max_filters) == (64, 512)
    if name.startswith(("bair", "real")):
        assert config.train.data.startswith("tfrecord:")
