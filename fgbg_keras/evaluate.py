"""Evaluates a Phase I run on the synthetic test split.

    python -m fgbg_keras.evaluate --model_dir=runs/synthetic [--output=eval.json]

Reports mask IoU against the ground truth (mask binarised at 0.5), PSNR and SSIM of the
predicted next frame, and PSNR/SSIM of the copy-last-frame baseline on the same pairs; prints a
table and writes JSON (default `<model_dir>/eval_test.json`).
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from data_pipelines import pipeline, synthetic
from fgbg_keras import metrics
from fgbg_keras.training import loop

METRICS = ("mask_iou", "diff_mask_iou", "psnr", "ssim", "copy_last_psnr", "copy_last_ssim")
REPORT_NAME = "eval_test.json"  # written beside the checkpoints by train.py and evaluate


def latest_checkpoint(model_dir):
    """The saved config of a run and the path of its latest checkpoint."""
    config = loop.load_config(model_dir)
    manager_dir = os.path.join(model_dir, loop.CHECKPOINT_DIR)
    latest = tf.train.latest_checkpoint(manager_dir)
    if latest is None:
        raise ValueError(f"--model_dir={model_dir!r} has no checkpoint under {manager_dir}.")
    return config, latest


def evaluate_phase_one(model_dir, num_clips=None, batch_size=64):
    """Evaluates the latest checkpoint of a Phase I run on the synthetic test split.

    Args:
        model_dir: the run's directory (with `config.json` and `checkpoints/`).
        num_clips: test clips to use; defaults to the run's `--num_test_clips`.
        batch_size: pairs per evaluation batch.

    Returns:
        A dict: `"checkpoint"`, `"step"`, `"pairs"`, and the mean (and `<name>_std`, the standard
        deviation over pairs) of each of `METRICS`: `"mask_iou"` of M(f_t) and
        `"diff_mask_iou"` of the frame-difference map d (the label-free baseline), both against
        the ground-truth mask of f_t; `"psnr"`, `"ssim"` of the predicted f_{t+1}; and
        `"copy_last_psnr"`, `"copy_last_ssim"` of f_t taken as f_{t+1}.
    """
    config, latest = latest_checkpoint(model_dir)
    loop.setup_runtime(config)
    num_clips = num_clips or config.train.num_test_clips
    clips = synthetic.make_split(
        "test", num_clips, loop.synthetic_config(config), seed=config.train.seed
    )
    data = pipeline.eval_triples(
        clips,
        batch_size=batch_size,
        diff_mode=config.loss.diff,
        diff_threshold=config.loss.diff_threshold,
    )
    model, _ = loop.build_model_and_optimizer(config, next(iter(data)))
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    step = int(latest.rsplit("-", 1)[-1])
    logging.info("Evaluating %s on %d test clips.", latest, num_clips)

    @tf.function
    def predict(batch):
        return model(batch, training=False)

    values = {name: [] for name in METRICS}
    for batch in data:
        outputs = predict(batch)
        values["mask_iou"].append(metrics.mask_iou(outputs["mask"], batch["mask"]))
        values["diff_mask_iou"].append(metrics.mask_iou(batch["diff"], batch["mask"]))
        values["psnr"].append(metrics.psnr(outputs["frame"], batch["next_frame"]))
        values["ssim"].append(metrics.ssim(outputs["frame"], batch["next_frame"]))
        values["copy_last_psnr"].append(metrics.psnr(batch["frame"], batch["next_frame"]))
        values["copy_last_ssim"].append(metrics.ssim(batch["frame"], batch["next_frame"]))
    results = {"checkpoint": latest, "step": step}
    for name, parts in values.items():
        array = np.concatenate([np.asarray(p) for p in parts])
        results["pairs"] = int(array.size)
        results[name] = float(array.mean())
        results[f"{name}_std"] = float(array.std())
    return results


def format_table(results):
    """The evaluation results as a small text table."""
    rows = [
        (
            "mask IoU (binarised at 0.5)",
            f"{results['mask_iou']:.3f}",
            f"{results['diff_mask_iou']:.3f}",
        ),
        ("next-frame PSNR (dB)", f"{results['psnr']:.2f}", f"{results['copy_last_psnr']:.2f}"),
        ("next-frame SSIM", f"{results['ssim']:.3f}", f"{results['copy_last_ssim']:.3f}"),
    ]
    header = (
        f"Phase I evaluation, synthetic test split: {results['pairs']} pairs, "
        f"checkpoint step {results['step']}"
    )
    lines = [header, f"{'metric':<30}{'fgbg':>10}{'baseline':>12}", "-" * 52]
    lines += [f"{name:<30}{model:>10}{baseline:>12}" for name, model, baseline in rows]
    lines.append(
        "baseline: the frame-difference map d for the mask, copy-last-frame for the frames."
    )
    return "\n".join(lines)


def write_report(results, output):
    """Writes `results` as JSON to `output` and returns the table, with where it was written."""
    with open(output, "w") as f:
        json.dump(results, f, indent=2)
    return format_table(results) + f"\nWritten to {output}\n"


FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        results = evaluate_phase_one(FLAGS.model_dir, num_clips=FLAGS.num_clips)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    output = FLAGS.output or os.path.join(FLAGS.model_dir, REPORT_NAME)
    # The table is this command's output, not a log message.
    sys.stdout.write(write_report(results, output))


if __name__ == "__main__":
    flags.DEFINE_string("model_dir", None, "The run directory of train.py.")
    flags.DEFINE_integer("num_clips", None, "Test clips (default: the run's --num_test_clips).")
    flags.DEFINE_string("output", None, "JSON output (default: <model_dir>/eval_test.json).")
    flags.mark_flag_as_required("model_dir")
    app.run(main)
