"""The evaluation report of a tiny run: every file written, every method and metric in it."""

import json

import numpy as np
import pytest

from fgbg_keras import evaluate, report


@pytest.fixture(scope="module")
def written(unet_run_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report") / "synthetic"
    text = evaluate.evaluate_and_report(
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
    for method in evaluate.ROLLOUT_METHODS:
        for name in evaluate.ROLLOUT_METRICS:
            assert len(rollout[method][f"{name}_per_step"]) == 3, (method, name)
            assert name in rollout[method], (method, name)
    for key in ("mask_iou", "psnr", "ssim", "copy_last_psnr", "copy_last_ssim", "pairs"):
        assert np.isfinite(metrics[key]), key
    for name in ("psnr", "ssim", "control_error"):
        with Image.open(folder / f"{name}_per_step.png") as image:
            assert image.size == (640, 400)
    with Image.open(folder / "rollouts.gif") as gif:
        assert gif.n_frames >= 2


def test_the_markdown_names_every_method_and_what_was_not_computed(written):
    folder, _ = written
    text = (folder / "report.md").read_text()
    for method in evaluate.ROLLOUT_METHODS:
        assert report.METHOD_LABELS[method] in text, method
    for name in ("psnr", "ssim", "control_error"):
        assert f"]({name}_per_step.png)" in text
    assert "LPIPS: not computed; pass `--lpips_network" in text
    assert "FVD: not computed; pass `--fvd_model=" in text
    # Three per-step rows per table, for PSNR, SSIM and control error.
    assert text.count("\n| 3 | ") == 3


def test_a_json_output_still_writes_only_the_json(unet_run_dir, tmp_path):
    evaluate.evaluate_and_report(unet_run_dir, output=str(tmp_path / "eval.json"), num_clips=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]
