"""The evaluation report of a tiny run: every file written, every method and metric in it."""

import json
import os

import numpy as np
import pytest

from fgbg_keras.evaluation import evaluator, lpips, methods, rollouts
from tests.tiny import save_linear, save_video_network

# The methods evaluated on data with ground truth and no ConvLSTM run.
GROUND_TRUTH_METHODS = [m.name for m in methods.available({methods.GROUND_TRUTH})]


@pytest.fixture(scope="module")
def written(unet_run_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report") / "synthetic"
    text = evaluator.evaluate_and_report(
        unet_run_dir, output=str(folder), rollout_steps=3, num_clips=2
    )
    return folder, text


def test_the_report_plots_and_json_are_written(written):
    from PIL import Image

    folder, text = written
    assert f"Report: {folder / 'report.md'}" in text
    metrics = json.loads((folder / "metrics.json").read_text())
    rollout = metrics["rollout"]
    assert rollout["steps"] == 3 and rollout["clips"] == 2
    for method in GROUND_TRUTH_METHODS:
        for name in rollouts.ROLLOUT_METRICS:
            assert len(rollout[method][f"{name}_per_step"]) == 3, (method, name)
            assert name in rollout[method], (method, name)
    # The oracle moves the true sprite with the true masks: closer to the truth than not moving.
    assert rollout["oracle"]["psnr"] > rollout["copy_first"]["psnr"] + 1.0
    for key in ("mask_iou", "psnr", "ssim", "copy_last_psnr", "copy_last_ssim", "pairs"):
        assert np.isfinite(metrics[key]), key
    for name in ("psnr", "ssim", "control_error"):
        with Image.open(folder / f"{name}_per_step.png") as image:
            assert image.size == (640, 400)
    with Image.open(folder / "rollouts.gif") as gif:
        assert gif.n_frames >= 2
    # The still grid: 2 clips of 3 rows of 32 pixels, 5 steps of 32 pixels.
    with Image.open(folder / "rollouts.png") as still:
        assert still.size == (5 * 32, 2 * 3 * 32)
    # The masks: 2 clips of 3 rows (frames, d, M's masks; no MOG2 on synthetic clips).
    with Image.open(folder / "masks.png") as masks:
        assert masks.size == (5 * 32, 2 * 3 * 32)
        pixels = np.asarray(masks.convert("RGB"))
    rows = pixels.reshape(2, 3, 32, 5 * 32, 3)
    assert rows[:, 0].std() > 10  # frames
    assert set(np.unique(rows[:, 1:])) <= {0, 255}  # d and the masks, black and white
    assert "![masks](masks.png)" in (folder / "report.md").read_text()


def test_the_markdown_names_every_method_and_what_was_not_computed(written):
    folder, _ = written
    text = (folder / "report.md").read_text()
    for method in GROUND_TRUTH_METHODS:
        assert methods.label(method) in text, method
    for name in ("psnr", "ssim", "control_error"):
        assert f"]({name}_per_step.png)" in text
    assert "LPIPS: not computed; pass `--lpips_network" in text
    assert "FVD: not computed; pass `--fvd_model=" in text
    # Three per-step rows per table, for PSNR, SSIM and control error.
    assert text.count("\n| 3 | ") == 3


def test_a_json_output_writes_the_json_there_and_the_gif_beside_the_run(unet_run_dir, tmp_path):
    gif = os.path.join(unet_run_dir, evaluator.ROLLOUT_GIF)
    evaluator.evaluate_and_report(
        unet_run_dir, output=str(tmp_path / "eval.json"), num_clips=2, rollout_steps=2
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]
    assert os.path.exists(gif)
    assert json.loads((tmp_path / "eval.json").read_text())["rollout"]["steps"] == 2


def test_lpips_and_fvd_from_user_networks_reach_the_report(unet_run_dir, tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    keras.applications.VGG16(
        include_top=False, weights=None, input_shape=(None, None, 3)
    ).save_weights(tmp_path / "vgg.weights.h5")
    save_linear(tmp_path / "lin.npz", lpips.TAPS["vgg16"][1], np.random.default_rng(0))
    lpips_metric, video_features = evaluator.feature_metrics(
        "vgg16",
        str(tmp_path / "vgg.weights.h5"),
        str(tmp_path / "lin.npz"),
        save_video_network(tmp_path),
    )
    folder = tmp_path / "report"
    evaluator.evaluate_and_report(
        unet_run_dir,
        output=str(folder),
        rollout_steps=3,
        num_clips=2,
        lpips_metric=lpips_metric,
        video_features=video_features,
    )
    rollout = json.loads((folder / "metrics.json").read_text())["rollout"]
    assert rollout["fvd_protocol"]["frames"] == 3 and rollout["fvd_protocol"]["videos"] == 2
    for method in GROUND_TRUTH_METHODS:
        if method == "measurement":
            assert "lpips" not in rollout[method] and "fvd" not in rollout[method]
            continue
        assert len(rollout[method]["lpips_per_step"]) == 3 and rollout[method]["lpips"] >= 0
        assert rollout[method]["fvd"] >= 0
    assert rollout["copy_first"]["lpips"] > 0 and rollout["copy_first"]["fvd"] > 0
    text = (folder / "report.md").read_text()
    assert "FVD protocol: frames 3;" in text and "LPIPS per step" in text
    assert "not computed" not in text
    assert (folder / "lpips_per_step.png").exists()


def test_lpips_needs_both_files():
    with pytest.raises(ValueError, match="both --lpips_backbone and --lpips_linear"):
        evaluator.feature_metrics("vgg16", "backbone.weights.h5", None, None)


def test_a_registered_method_reaches_the_tables_with_its_label(monkeypatch):
    from fgbg_keras.evaluation import report

    toy = methods.RolloutMethod(
        "mirror", "mirror (a test's method)", "mirror", None, frozenset(), False
    )
    monkeypatch.setitem(methods._METHODS, "mirror", toy)
    per_step = {"psnr_per_step": [20.0, 19.0], "psnr": 19.5, "lost_per_step": [0, 0], "lost": 0.0}
    rollout = {"steps": 2, "clips": 1, "fitted_carry": per_step, "copy_first": per_step}
    rollout["mirror"] = dict(per_step, psnr_per_step=[30.0, 29.0], psnr=29.5)
    results = {"pairs": 1, "psnr": 1.0, "ssim": 1.0, "copy_last_psnr": 1.0, "copy_last_ssim": 1.0}
    text = report.markdown({**results, "rollout": rollout})
    assert "| mirror (a test's method) | 29.50 |" in text
    assert (
        "| step | fgbg (parameterized control) | copy-first-frame | mirror (a test's method) |"
        in text
    )
    assert "| 2 | 19.00 | 19.00 | 29.00 |" in text
