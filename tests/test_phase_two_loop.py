"""A whole Phase II run after a Phase I run, its evaluation, and its bad `--init_from`s."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fgbg_keras import generation, mask_ops
from fgbg_keras import runs as run_dirs
from fgbg_keras.evaluation import evaluator
from fgbg_keras.evaluation.rollouts import ROLLOUT_METRICS
from fgbg_keras.models import generators
from fgbg_keras.training import loop, phases
from tests.harness import read_events
from tests.tiny import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def phase_two_config(**model_overrides):
    config = tiny_config()
    config.phase_two.disc_filters = 8
    # Steps 0-1 without, steps 2-3 with the discriminators and scheduled sampling.
    config.phase_two.disc_start = 2
    config.phase_two.ss_interval = 1
    for name, value in model_overrides.items():
        setattr(config.model, name, value)
    return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    phase_one, phase_two = str(root / "phase1"), str(root / "phase2")
    loop.train_and_evaluate(tiny_config(), phase_one, verbose=False)
    logs = loop.train_and_evaluate(
        phase_two_config(), phase_two, phase=2, init_from=phase_one, verbose=False
    )
    return phase_one, phase_two, logs


def test_phase_two_trains_from_phase_one_with_the_mask_network_frozen(runs):
    phase_one, phase_two, logs = runs
    assert logs["discriminator_loss"] and np.isfinite(logs["discriminator_loss"])
    # The last epoch's mean of p: 0.1 at step 2 and 0.2 at step 3.
    assert logs["ss_probability"] == pytest.approx(0.15)
    one, two = run_dirs.restore_networks(phase_one), run_dirs.restore_networks(phase_two)
    assert (one.phase, two.phase) == (1, 2)
    for a, b in zip(one.mask_generator.get_weights(), two.mask_generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(one.frame_generator.get_weights(), two.frame_generator.get_weights())
    )
    with open(os.path.join(phase_two, run_dirs.CONFIG_FILE)) as f:
        saved = json.load(f)
    assert saved["phase"] == 2 and saved["init_from"] == os.path.abspath(phase_one)
    assert two.config.phase_two.disc_start == 2


def test_phase_two_summaries_hold_both_players_and_the_rollout(runs):
    _, phase_two, _ = runs
    train = read_events(phase_two, "train")
    scalars = set(train.Tags()["tensors"])
    for name in ("reconstruction_loss", "foreground_loss", "background_loss", "learning_rate"):
        assert name in scalars, name
    # The discriminators and scheduled sampling join at step 2: logged at step 4 only.
    for name in ("generator_gan_loss", "discriminator_loss", "gan_weight", "ss_probability"):
        assert [e.step for e in train.Tensors(name)] == [4], name
    validation = set(read_events(phase_two, "validation").Tags()["tensors"])
    assert {"rollout_true_over_generated", "predicted_frame", "psnr"} <= validation


def test_phase_two_resumes_and_refuses_the_other_phase(runs):
    phase_one, phase_two, _ = runs
    # Already at --train_steps: nothing to do, and the checkpoint is left as it is.
    assert (
        loop.train_and_evaluate(
            phase_two_config(), phase_two, phase=2, init_from=phase_one, verbose=False
        )
        == {}
    )
    with pytest.raises(ValueError, match="holds a Phase 2 run, not a Phase 1 one"):
        loop.train_and_evaluate(tiny_config(), phase_two, verbose=False)
    # Settings that shape the discriminators' weights cannot change on resume either.
    wider = phase_two_config()
    wider.phase_two.disc_filters = 16
    with pytest.raises(ValueError, match=r"other network settings.*'disc_filters': \(8, 16\)"):
        loop.train_and_evaluate(wider, phase_two, phase=2, init_from=phase_one, verbose=False)


def test_bad_init_from_is_named(runs, tmp_path):
    phase_one, _, _ = runs
    config = phase_two_config()
    missing = str(tmp_path / "missing")
    with pytest.raises(ValueError, match="--init_from is required"):
        loop.train_and_evaluate(config, str(tmp_path / "a"), phase=2, verbose=False)
    with pytest.raises(ValueError, match=f"--init_from='{missing}' does not exist"):
        loop.train_and_evaluate(config, str(tmp_path / "b"), phase=2, init_from=missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"--init_from='{empty}' has no config.json"):
        loop.train_and_evaluate(config, str(tmp_path / "c"), phase=2, init_from=str(empty))
    no_checkpoint = tmp_path / "no_checkpoint"
    no_checkpoint.mkdir()
    (no_checkpoint / run_dirs.CONFIG_FILE).write_text(json.dumps(config.to_dict()))
    with pytest.raises(ValueError, match="has no checkpoint"):
        loop.train_and_evaluate(
            config, str(tmp_path / "d"), phase=2, init_from=str(no_checkpoint), verbose=False
        )
    # Settings without weights that Phase I does not use may differ; the others may not.
    free = phase_two_config(unet_paste=False, unet_keep_pasted=2)
    batch = {"frame": np.zeros((1, 32, 32, 3), np.float32)}
    batch["next_frame"] = batch["frame"]
    model, _ = phases.get(2).build(free, batch)
    loop.initialize_from(model, free, phase_one, 2)
    for name, value in (("image_size", 64), ("mask_ngf", 8), ("generator", "unet")):
        with pytest.raises(ValueError, match=f"other network settings.*'{name}'"):
            loop.train_and_evaluate(
                phase_two_config(**{name: value}),
                str(tmp_path / name),
                phase=2,
                init_from=phase_one,
                verbose=False,
            )


UNET = {"generator": "unet", "unet_filters": 8, "unet_max_filters": 16}


@pytest.fixture(scope="module")
def unet_phase_one(tmp_path_factory):
    phase_one = str(tmp_path_factory.mktemp("unet") / "phase1")
    loop.train_and_evaluate(phase_two_config(**UNET), phase_one, verbose=False)
    return phase_one, run_dirs.restore_networks(phase_one).frame_generator


def started_phase_two(config, phase_one):
    phases.get(2).validate(config)
    batch = {"frame": np.zeros((1, 32, 32, 3), np.float32)}
    batch["next_frame"] = batch["frame"]
    model, _ = phases.get(2).build(config, batch)
    loop.initialize_from(model, config, phase_one, 2)
    return model.frame_generator


def test_reset_generator_head_keeps_the_phase_one_unet_but_its_last_layer(unet_phase_one):
    phase_one, trained = unet_phase_one
    trained = trained.get_weights()
    config = phase_two_config(**UNET)
    config.phase_two.reset_generator_head = True
    started = started_phase_two(config, phase_one).get_weights()
    for a, b in zip(trained[:-2], started[:-2]):
        np.testing.assert_array_equal(a, b)
    assert any(np.any(w) for w in trained[-2:]) and not any(np.any(w) for w in started[-2:])


def test_a_unet_with_memory_starts_as_the_phase_one_unet(unet_phase_one):
    phase_one, trained = unet_phase_one
    # On a still mask (Phase I's case, where pasting does nothing), and without pasting in
    # Phase II, the Phase I and II generators differ only by the memory inputs.
    config = phase_two_config(**UNET, unet_paste=False, unet_keep_pasted=0)
    config.model.unet_first_frame = config.model.unet_previous_frame = True
    config.phase_two.reset_generator_head = False
    config.phase_two.train_rollout = True
    started = started_phase_two(config, phase_one)
    assert started.memory == ("first", "previous") and not getattr(trained, "memory", ())
    rng = np.random.default_rng(0)

    def frame():
        return rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)

    def mask():
        return (rng.uniform(size=(2, 32, 32, 1)) > 0.5).astype(np.float32)

    still = mask()
    inputs = generators.rollout_inputs(frame(), still, still, (frame(), mask()), (frame(), mask()))
    # Equal up to float32 rounding: the convolution over the extra, zero-weighted input
    # channels sums in another order on some CPU kernels (1.5e-6 to 4e-6 apart on an AMD
    # EPYC with TensorFlow's Eigen kernels); swapping two input channels of the first
    # convolution moved the same check in test_unet_diff_generator.py by 1.8.
    np.testing.assert_allclose(
        started(inputs)["frame"], trained(inputs)["frame"], atol=1e-5, rtol=0
    )
    # The memory's weights are there, at zero: the first convolution's last 8 input channels.
    kernel = started.unet.get_layer("down0_conv").kernel.numpy()
    assert kernel.shape[2] == 5 + 8 and not np.any(kernel[:, :, 5:])
    assert np.any(kernel[:, :, :5])


def test_phase_two_evaluation_reports_rollouts_per_step(runs):
    _, phase_two, _ = runs
    text = evaluator.evaluate_and_report(phase_two, rollout_steps=3)
    with open(os.path.join(phase_two, evaluator.REPORT_NAME)) as f:
        results = json.load(f)
    assert results["phase"] == 2 and results["pairs"] == 2 * 5
    rollouts = results["rollout"]
    assert rollouts["steps"] == 3 and rollouts["clips"] == 2
    # The synthetic set has ground truth: the table names the floor, not a fitted protocol.
    assert "control error of" in text and "no ground truth" not in text
    methods = ("true_carry", "true_reestimate", "fitted_carry", "mapped_carry", "paste_only")
    methods += ("copy_first",)
    for method in methods + ("measurement",):
        for name in ROLLOUT_METRICS:
            assert len(rollouts[method][f"{name}_per_step"]) == 3, (method, name)
    for method in ("true_carry", "copy_first"):
        per_step = rollouts[method]["psnr_per_step"]
        assert rollouts[method]["psnr"] == pytest.approx(np.mean(per_step), rel=1e-5)
    assert f"{rollouts['copy_first']['psnr']:.2f}" in text
    assert os.path.getsize(os.path.join(phase_two, evaluator.ROLLOUT_GIF)) > 0


def run_generate(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "fgbg_keras.generate", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def shown_frames(path):
    """Frames a GIF viewer shows at 10 fps: Pillow merges identical consecutive frames into
    one whose duration is the sum, so each frame counts duration / 100 ms."""
    with Image.open(path) as gif:
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
            assert np.asarray(gif.convert("RGB")).shape == (2 * 32, 2 * 32, 3)
    return sum(round(d / 100) for d in durations)


def test_generate_cli_writes_a_gif_with_a_frame_per_step(runs, tmp_path):
    _, phase_two, _ = runs
    image = tmp_path / "in.png"
    # Any size and mode: a 48x40 RGBA image is composited over white and resized to 32x32.
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 48, 4), np.uint8), "RGBA").save(image)
    output = tmp_path / "out.gif"
    result = run_generate(
        f"--model_dir={phase_two}",
        f"--image={image}",
        "--trajectory=1.5,0;0,-1",
        "--steps=5",
        f"--output={output}",
        "--overlay",
        "--scale=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Wrote {output} (5 generated frames" in result.stdout
    assert shown_frames(output) == 5 + 1


@pytest.mark.parametrize("mask_mode", ["carry", "reestimate"])
def test_generate_writes_mp4_and_png_strips(runs, tmp_path, mask_mode):
    import av

    _, phase_two, _ = runs
    image = tmp_path / "in.png"
    Image.fromarray(np.full((32, 32), 128, np.uint8), "L").save(image)
    controls = np.asarray(mask_ops.translation_controls(np.array([[1.0, 0.0]], np.float32)))
    for output, count in ((tmp_path / "out.mp4", 4), (tmp_path / "out.png", 4)):
        generation.generate(phase_two, str(image), controls, 3, str(output), mask_mode=mask_mode)
        if output.suffix == ".png":
            assert np.asarray(Image.open(output)).shape == (32, 32 * count, 3)
        else:
            with av.open(str(output)) as container:
                frames = list(container.decode(video=0))
            assert len(frames) == count and frames[0].width == 32


@pytest.mark.parametrize(
    "args, message",
    [
        (["--trajectory=1,0;x"], "--trajectory='1,0;x': step 2 is 'x'"),
        (["--trajectory=1,0", "--image=/nonexistent.png"], "--image='/nonexistent.png' cannot"),
        (["--trajectory=1,0", "--output=out.avi"], "unknown extension '.avi'"),
        (["--trajectory=1,0", "--steps=0"], "--steps=0: must be at least 1"),
        (["--trajectory=1,0", "--model_dir=/nonexistent"], "--model_dir='/nonexistent' does not"),
        ([], "Give exactly one of --trajectory and --affine_file"),
    ],
)
def test_generate_cli_names_bad_input(runs, tmp_path, args, message):
    _, phase_two, _ = runs
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    defaults = {
        "--model_dir": phase_two,
        "--image": str(image),
        "--output": str(tmp_path / "out.gif"),
    }
    given = {arg.split("=")[0] for arg in args}
    args = [f"{k}={v}" for k, v in defaults.items() if k not in given] + args
    result = run_generate(*args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def rollout_config():
    """A U-Net Phase II on rollouts, 2 steps without discriminators (one traced step)."""
    config = phase_two_config(**UNET)
    config.phase_two.train_rollout = True
    config.phase_two.gan_weight = 0.0
    config.train.train_steps = config.train.log_every = 2
    config.phase_two.ss_start = 2  # unused on rollouts; the default, half the steps, is 1
    return config


def test_a_phase_two_start_may_add_to_its_init_from_s_memory_but_not_drop_it(
    unet_phase_one, tmp_path
):
    phase_one, _ = unet_phase_one

    def config(*memory):
        config = rollout_config()
        config.model.unet_first_frame = "first" in memory
        config.model.unet_previous_frame = "previous" in memory
        return phases.get(2).validate(config)

    previous = str(tmp_path / "previous")
    loop.train_and_evaluate(
        config("previous"), previous, phase=2, init_from=phase_one, verbose=False
    )
    # From Phase I anything goes; G is widened unless it reads no memory.
    assert run_dirs.check_init_from(config(), phase_one)[1] is None
    assert run_dirs.check_init_from(config("first"), phase_one)[1] is not None
    # From a run that saw the previous frame: the same memory restores as it is; dropping it,
    # or putting the first frame's channels before it, is refused.
    assert run_dirs.check_init_from(config("previous"), previous)[1] is None
    for memory in [(), ("first",), ("first", "previous")]:
        with pytest.raises(ValueError, match="--unet_previous_frame.*must keep that memory"):
            run_dirs.check_init_from(config(*memory), previous)


def test_a_gated_phase_two_trains_from_phase_one_and_its_gate_cannot_be_dropped(
    unet_phase_one, tmp_path
):
    phase_one, _ = unet_phase_one

    def config(gate=True, first_frame=False):
        config = rollout_config()
        config.train.augment_flip = config.train.augment_reverse = True
        config.model.unet_copy_gate = gate
        config.model.unet_paste_region = "moved"
        config.model.unet_first_frame = first_frame
        return phases.get(2).validate(config)

    # From Phase I the generator is widened: the input frame and the gate are new.
    assert run_dirs.check_init_from(config(), phase_one)[1] is not None
    gated = str(tmp_path / "gated")
    logs = loop.train_and_evaluate(config(), gated, phase=2, init_from=phase_one, verbose=False)
    assert np.isfinite(logs["loss"])
    restored = run_dirs.restore_networks(gated).frame_generator
    assert restored.copy_gate and restored.paste_region == "moved"
    assert run_dirs.check_init_from(config(), gated)[1] is None
    for changed in (config(gate=False), config(first_frame=True)):
        with pytest.raises(ValueError, match="copy gate .* must keep it, and the same memory"):
            run_dirs.check_init_from(changed, gated)
