"""Evaluates a run directory: restores it, scores it, writes the JSON or the report, returns the
printed tables (`python -m fgbg_keras.evaluate`, and train.py after training).

One-step figures for runs of both phases (`evaluation.pairs`); controlled rollouts
(`evaluation.rollouts`) for Phase II runs, or any run given `rollout_steps`, a ConvLSTM run, or
the networks of LPIPS or FVD, beside the baselines of `evaluation.methods`.
"""

import json
import os

import keras

from data_pipelines import datasets
from fgbg_keras import runs
from fgbg_keras.evaluation import fvd, pairs, report, rollouts

REPORT_NAME = "eval_test.json"  # written beside the checkpoints by train.py and evaluate
ROLLOUT_GIF = "rollouts_test.gif"


def feature_metrics(lpips_network, lpips_backbone, lpips_linear, fvd_model):
    """The LPIPS and FVD networks the flags name, or None for each that is not asked for."""
    lpips_metric = video_features = None
    if lpips_backbone or lpips_linear:
        if not (lpips_backbone and lpips_linear):
            raise ValueError("LPIPS needs both --lpips_backbone and --lpips_linear.")
        from fgbg_keras.evaluation.lpips import LPIPS

        lpips_metric = LPIPS(lpips_network, lpips_backbone, lpips_linear)
    if fvd_model:
        video_features = fvd.VideoFeatures(fvd_model)
    return lpips_metric, video_features


def convlstm_baseline(convlstm_dir, run):
    """The ConvLSTM of `convlstm_dir` at the run's frame size, and whether it was trained with
    the true controls (restored in its own precision; the run's is set again after).

    Raises:
        ValueError: naming `--convlstm_dir` when it is not a baseline run of the model's size.
    """
    config, convlstm = runs.restore_convlstm(convlstm_dir)
    keras.config.set_dtype_policy(run.config.train.precision)
    sizes = (config.model.image_size, run.config.model.image_size)
    if sizes[0] != sizes[1]:
        raise ValueError(
            f"--convlstm_dir={convlstm_dir!r} was trained at {sizes[0]}x{sizes[0]}, the "
            f"model at {sizes[1]}x{sizes[1]}: train the baseline at the model's size."
        )
    return convlstm, datasets.source(config).has_controls


def evaluate_and_report(
    model_dir,
    output=None,
    rollout_steps=None,
    num_clips=None,
    lpips_metric=None,
    video_features=None,
    convlstm_dir=None,
):
    """Evaluates the latest checkpoint of a run, writes the JSON, returns the tables.

    One-step figures always; rollouts, with their GIF, for Phase II runs or when
    `rollout_steps`, `convlstm_dir`, `lpips_metric` or `video_features` is given.

    Args:
        model_dir: the run directory.
        output: a `.json` path for the results (default `<model_dir>/eval_test.json`, the GIF
            `<model_dir>/rollouts_test.gif`), or a folder for the full report
            (`evaluation.report`: report.md, metrics.json, plots, rollouts.gif, masks.png).
        rollout_steps: steps per rollout (default 16 when rollouts are made, see above).
        num_clips: test clips (default the run's `--num_test_clips`).
        lpips_metric, video_features: LPIPS and FVD for the rollouts (see
            `rollouts.evaluate_rollouts`).
        convlstm_dir: a `--phase=baseline_convlstm` run of the same frame size, evaluated
            beside the model in the rollouts.

    Raises:
        ValueError: naming `model_dir` when it is not a run or holds no checkpoint.
    """
    report_dir = output if output and not output.endswith(".json") else None
    output = output or os.path.join(model_dir, REPORT_NAME)
    run = runs.restore_networks(model_dir)
    convlstm, convlstm_controls = None, False
    if convlstm_dir:
        convlstm, convlstm_controls = convlstm_baseline(convlstm_dir, run)
    asked = convlstm is not None or lpips_metric is not None or video_features is not None
    if rollout_steps is None and (asked or run.moving_masks):
        rollout_steps = rollouts.ROLLOUT_STEPS
    if video_features is not None and num_clips is not None and num_clips < 2:
        raise ValueError(f"--num_clips={num_clips}: FVD needs at least 2 test clips.")
    results = pairs.evaluate_pairs(run, num_clips=num_clips)
    text = pairs.format_table(results)
    if rollout_steps:
        if report_dir:
            os.makedirs(report_dir, exist_ok=True)
        gif = os.path.join(report_dir or model_dir, "rollouts.gif" if report_dir else ROLLOUT_GIF)
        results["rollout"] = rollouts.evaluate_rollouts(
            run,
            steps=rollout_steps,
            num_clips=num_clips,
            gif_path=gif,
            lpips_metric=lpips_metric,
            video_features=video_features,
            convlstm=convlstm,
            convlstm_controls=convlstm_controls,
        )
        text += "\n\n" + rollouts.format_rollout_table(results["rollout"]) + f"\nRollouts: {gif}"
    if report_dir:
        gif_name = "rollouts.gif" if rollout_steps else None
        os.makedirs(report_dir, exist_ok=True)
        pairs.write_mask_images(
            run, os.path.join(report_dir, report.MASKS_IMAGE), num_clips=num_clips
        )
        written = report.write_report(results, report_dir, rollout_gif=gif_name)
        return text + f"\nReport: {written}\n"
    with open(output, "w") as f:
        json.dump(results, f, indent=2)
    return text + f"\nWritten to {output}\n"
