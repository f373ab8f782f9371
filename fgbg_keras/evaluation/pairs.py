"""One-step evaluation: each test pair (f_t, f_{t+1}) predicted from f_t, for runs of any phase.

Mask IoU against the ground truth (the mask binarised at 0.5; with the frame-difference map d as
the label-free baseline), PSNR and SSIM of the predicted next frame, and PSNR/SSIM of the
copy-last-frame baseline on the same pairs. A run whose generator draws at moving masks (Phase II)
predicts f_{t+1} with binarize(M(f_{t+1})) as the target mask; a Phase I run with m_t.
"""

import numpy as np
import tensorflow as tf
from absl import logging

from data_pipelines import datasets, pipeline
from fgbg_keras import mask_ops
from fgbg_keras.evaluation import metrics

METRICS = ("mask_iou", "diff_mask_iou", "psnr", "ssim", "copy_last_psnr", "copy_last_ssim")
# Where the data has the controlled object's own masks (the pushing set's arm) beside the moving
# foreground: the IoU of M's mask and of d against them.
AGENT_METRICS = ("agent_mask_iou", "agent_diff_mask_iou")


def load_test_clips(config, num_clips, clip_length):
    """The test clips of a run's `--data` (`num_clips` defaults to `--num_test_clips`)."""
    return datasets.source(config).evaluation_clips(
        "test", num_clips or config.train.num_test_clips, clip_length, config.train.seed
    )


def predict_next(mask_generator, frame_generator, frame, next_frame, moving_masks):
    """The mask of `frame` and the predicted next frame, as the generator was trained to draw
    it: at the current mask (Phase I) or at the next frame's (`moving_masks`, Phase II)."""
    mask = tf.cast(mask_generator(frame, training=False), tf.float32)
    if not moving_masks:
        inputs = {"frame": frame, "mask": mask, "target_mask": mask}
    else:
        target = mask_ops.binarize(tf.cast(mask_generator(next_frame, training=False), tf.float32))
        inputs = {"frame": frame, "mask": mask_ops.binarize(mask), "target_mask": target}
    return mask, frame_generator(inputs, training=False)["frame"]


def evaluate_pairs(run, num_clips=None, batch_size=64):
    """One-step evaluation of a restored run on the test split of its data.

    Args:
        run: a `runs.RestoredRun`.
        num_clips: test clips to use; defaults to the run's `--num_test_clips`.
        batch_size: pairs per evaluation batch.

    Returns:
        A dict: `"checkpoint"`, `"step"`, `"phase"`, `"data"`, `"pairs"`, and the mean (and
        `<name>_std`, the standard deviation over pairs) of each of `METRICS`: `"mask_iou"` of
        M(f_t) and `"diff_mask_iou"` of the frame-difference map d (the label-free baseline),
        both against the ground-truth mask of f_t (only where the data has it); `"psnr"`,
        `"ssim"` of the predicted f_{t+1}; and `"copy_last_psnr"`, `"copy_last_ssim"` of f_t
        taken as f_{t+1}. Where the data has the controlled object's own masks (the pushing
        set's arm), `AGENT_METRICS`: the IoU of M(f_t) and of d against them.
    """
    config = run.config
    clips = load_test_clips(config, num_clips, config.train.clip_length)
    data = pipeline.eval_triples(
        clips,
        batch_size=batch_size,
        image_size=config.model.image_size,
        diff_mode=config.loss.diff,
        diff_threshold=config.loss.diff_threshold,
        align=config.loss.align,
        background=config.loss.clip_background,
    )
    logging.info(
        "Evaluating %s on the pairs of %d test clips.", run.checkpoint, len(clips["frames"])
    )

    @tf.function
    def predict(frame, next_frame):
        return predict_next(
            run.mask_generator, run.frame_generator, frame, next_frame, run.moving_masks
        )

    names = METRICS if "masks" in clips else METRICS[2:]
    if "agent_masks" in clips:
        names += AGENT_METRICS
    values = {name: [] for name in names}
    for batch in data:
        mask, prediction = predict(batch["frame"], batch["next_frame"])
        if "mask" in batch:
            values["mask_iou"].append(metrics.mask_iou(mask, batch["mask"]))
            values["diff_mask_iou"].append(metrics.mask_iou(batch["diff"], batch["mask"]))
        if "agent_mask" in batch:
            values["agent_mask_iou"].append(metrics.mask_iou(mask, batch["agent_mask"]))
            values["agent_diff_mask_iou"].append(
                metrics.mask_iou(batch["diff"], batch["agent_mask"])
            )
        values["psnr"].append(metrics.psnr(prediction, batch["next_frame"]))
        values["ssim"].append(metrics.ssim(prediction, batch["next_frame"]))
        values["copy_last_psnr"].append(metrics.psnr(batch["frame"], batch["next_frame"]))
        values["copy_last_ssim"].append(metrics.ssim(batch["frame"], batch["next_frame"]))
    results = {
        "checkpoint": run.checkpoint,
        "step": int(run.checkpoint.rsplit("-", 1)[-1]),
        "phase": run.phase,
        "data": config.train.data,
    }
    for name, parts in values.items():
        array = np.concatenate(parts)
        results["pairs"] = int(array.size)
        results[name] = float(array.mean())
        results[f"{name}_std"] = float(array.std())
    return results


def format_table(results):
    """The one-step evaluation results as a small text table."""
    rows = []
    if "mask_iou" in results:
        rows.append(
            (
                "mask IoU (binarised at 0.5)",
                f"{results['mask_iou']:.3f}",
                f"{results['diff_mask_iou']:.3f}",
            )
        )
    if "agent_mask_iou" in results:
        rows.append(
            (
                "mask IoU, agent alone",
                f"{results['agent_mask_iou']:.3f}",
                f"{results['agent_diff_mask_iou']:.3f}",
            )
        )
    rows += [
        ("next-frame PSNR (dB)", f"{results['psnr']:.2f}", f"{results['copy_last_psnr']:.2f}"),
        ("next-frame SSIM", f"{results['ssim']:.3f}", f"{results['copy_last_ssim']:.3f}"),
    ]
    header = (
        f"Phase {results.get('phase', 1)} evaluation, {results.get('data', 'synthetic')} test "
        f"split: {results['pairs']} pairs, checkpoint step {results['step']}"
    )
    lines = [header, f"{'metric':<30}{'fgbg':>10}{'baseline':>12}", "-" * 52]
    lines += [f"{name:<30}{model:>10}{baseline:>12}" for name, model, baseline in rows]
    lines.append(
        "baseline: the frame-difference map d for the mask, copy-last-frame for the frames."
    )
    return "\n".join(lines)
