"""One-step evaluation: each test pair (f_t, f_{t+1}) predicted from f_t, for runs of any phase.

Mask IoU against the ground truth (the mask binarised at 0.5; with the frame-difference map d as
the label-free baseline), PSNR and SSIM of the predicted next frame, and PSNR/SSIM of the
copy-last-frame baseline on the same pairs; PSNR outside the masks (the background, which the
model should leave as good as the copy); the mean size of the binarised masks and of d; and on
data cut from recordings, the IoU of M's masks with those of OpenCV's MOG2 background subtractor
(`background_subtraction`), which says whether M finds the movers that a background model
finds. A run whose generator draws at moving masks (Phase II) predicts f_{t+1} with
binarize(M(f_{t+1})) as the target mask; a Phase I run with m_t.
"""

import numpy as np
import tensorflow as tf
from absl import logging

from data_pipelines import datasets, pipeline
from data_pipelines.preprocess import to_uint8
from fgbg_keras import mask_ops, metrics
from fgbg_keras.evaluation.background_subtraction import mog2_masks
from fgbg_keras.media import write_frames

# Where the data has ground-truth masks: the IoU of M's mask and of d against them.
TRUTH_METRICS = ("mask_iou", "diff_mask_iou")
METRICS = (
    "psnr",
    "ssim",
    "copy_last_psnr",
    "copy_last_ssim",
    "background_psnr",
    "copy_last_background_psnr",
    "mask_mean",
    "diff_mean",
)
# Where the data has the controlled object's own masks (the pushing set's arm) beside the moving
# foreground: the IoU of M's mask and of d against them.
AGENT_METRICS = ("agent_mask_iou", "agent_diff_mask_iou")
# Where the clips come from recordings: M's masks against MOG2's, and MOG2's mean size.
MOG2_METRICS = ("mog2_iou", "mog2_mean")


def load_test_clips(config, num_clips, clip_length):
    """The test clips of a run's `--data` (`num_clips` defaults to `--num_test_clips`)."""
    return datasets.source(config).evaluation_clips(
        "test", num_clips or config.train.num_test_clips, clip_length, config.train.seed
    )


def predict_next(mask_generator, frame_generator, frame, next_frame, moving_masks):
    """The mask of `frame`, the predicted next frame, as the generator was trained to draw it
    (at the current mask in Phase I, at the next frame's with `moving_masks`, Phase II), and
    where the masks are (the union of both, binarised)."""
    mask = tf.cast(mask_generator(frame, training=False), tf.float32)
    if not moving_masks:
        inputs = {"frame": frame, "mask": mask, "target_mask": mask}
        masked = mask_ops.binarize(mask)
    else:
        target = mask_ops.binarize(tf.cast(mask_generator(next_frame, training=False), tf.float32))
        inputs = {"frame": frame, "mask": mask_ops.binarize(mask), "target_mask": target}
        masked = tf.maximum(inputs["mask"], target)
    return mask, frame_generator(inputs, training=False)["frame"], masked


def _with_mog2(run, clips):
    """The clips with `"mog2_masks"`, where they come from recordings whose frames the data
    source gives (else as they are)."""
    if "sources" not in clips:
        return clips
    data = datasets.source(run.config)
    histories = [data.recording_frames(source) for source in clips["sources"]]
    if any(history is None for history in histories):
        return clips
    masks = mog2_masks(clips["frames"], histories)
    return {**clips, "mog2_masks": masks.astype(np.uint8)}


def evaluate_pairs(run, num_clips=None, batch_size=64):
    """One-step evaluation of a restored run on the test split of its data.

    Args:
        run: a `runs.RestoredRun`.
        num_clips: test clips to use; defaults to the run's `--num_test_clips`.
        batch_size: pairs per evaluation batch.

    Returns:
        A dict: `"checkpoint"`, `"step"`, `"phase"`, `"data"`, `"pairs"`, and the mean (and
        `<name>_std`, the standard deviation over pairs) of each of `METRICS`: `"psnr"`,
        `"ssim"` of the predicted f_{t+1}; `"copy_last_psnr"`, `"copy_last_ssim"` of f_t taken
        as f_{t+1}; `"background_psnr"` and `"copy_last_background_psnr"`, the PSNR of both
        outside the binarised masks (`predict_next`); `"mask_mean"` and `"diff_mean"`, the mean
        of binarize(M(f_t)) and of d. Where the data has ground-truth masks, `TRUTH_METRICS`:
        `"mask_iou"` of M(f_t) and `"diff_mask_iou"` of d (the label-free baseline) against
        them; where it has the controlled object's own masks (the pushing set's arm),
        `AGENT_METRICS`: the IoU of M(f_t) and of d against them; where its clips come from
        recordings, `MOG2_METRICS`: the IoU of binarize(M(f_t)) with MOG2's mask of f_t and
        MOG2's mean.
    """
    config = run.config
    clips = _with_mog2(run, load_test_clips(config, num_clips, config.train.clip_length))
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

    names = (TRUTH_METRICS if "masks" in clips else ()) + METRICS
    if "agent_masks" in clips:
        names += AGENT_METRICS
    if "mog2_masks" in clips:
        names += MOG2_METRICS
    values = {name: [] for name in names}
    for batch in data:
        mask, prediction, masked = predict(batch["frame"], batch["next_frame"])
        frame, next_frame, outside = batch["frame"], batch["next_frame"], 1.0 - masked
        found = {
            "psnr": metrics.psnr(prediction, next_frame),
            "ssim": metrics.ssim(prediction, next_frame),
            "copy_last_psnr": metrics.psnr(frame, next_frame),
            "copy_last_ssim": metrics.ssim(frame, next_frame),
            "background_psnr": metrics.masked_psnr(prediction, next_frame, outside),
            "copy_last_background_psnr": metrics.masked_psnr(frame, next_frame, outside),
            "mask_mean": tf.reduce_mean(mask_ops.binarize(mask), axis=[1, 2, 3]),
            "diff_mean": tf.reduce_mean(batch["diff"], axis=[1, 2, 3]),
        }
        if "mask" in batch:
            found["mask_iou"] = metrics.mask_iou(mask, batch["mask"])
            found["diff_mask_iou"] = metrics.mask_iou(batch["diff"], batch["mask"])
        if "agent_mask" in batch:
            found["agent_mask_iou"] = metrics.mask_iou(mask, batch["agent_mask"])
            found["agent_diff_mask_iou"] = metrics.mask_iou(batch["diff"], batch["agent_mask"])
        if "mog2_mask" in batch:
            found["mog2_iou"] = metrics.mask_iou(mask, batch["mog2_mask"])
            found["mog2_mean"] = tf.reduce_mean(batch["mog2_mask"], axis=[1, 2, 3])
        for name in names:
            values[name].append(found[name])
    results = {
        "checkpoint": run.checkpoint,
        "step": int(run.checkpoint.rsplit("-", 1)[-1]),
        "phase": run.phase,
        "data": config.train.data,
    }
    for name, parts in values.items():
        array = np.concatenate(parts)
        results["pairs"] = int(array.size)
        # NaN: a background PSNR where the masks cover the whole frame.
        results[name] = float(np.nanmean(array))
        results[f"{name}_std"] = float(np.nanstd(array))
    return results


def write_mask_images(run, path, clips=2, columns=5, num_clips=None):
    """Writes a still of what the masks see on the first test clips: per clip, rows of its
    frames, the change map d (as training computes it), binarize(M(frame)) and, on data from
    recordings, MOG2's masks, at `columns` frames spread over the clip."""
    config = run.config
    test = load_test_clips(config, num_clips, config.train.clip_length)
    # MOG2 learns each clip's model on its own: only the clips shown need one.
    test = _with_mog2(run, {key: value[:clips] for key, value in test.items()})
    batch = next(
        iter(
            pipeline.eval_triples(
                test,
                batch_size=len(test["frames"]) * (config.train.clip_length - 1),
                image_size=config.model.image_size,
                diff_mode=config.loss.diff,
                diff_threshold=config.loss.diff_threshold,
                background=config.loss.clip_background,
            )
        )
    )
    pairs_per_clip = config.train.clip_length - 1
    picks = np.linspace(0, pairs_per_clip - 1, columns).round().astype(int)
    masks = mask_ops.binarize(run.mask_generator(batch["frame"], training=False)).numpy()
    rows = []
    for clip in range(len(test["frames"])):
        at = clip * pairs_per_clip + picks
        shown = [batch["frame"].numpy()[at], batch["diff"].numpy()[at], masks[at]]
        if "mog2_mask" in batch:
            shown.append(batch["mog2_mask"].numpy()[at])
        for images in shown:
            images = np.repeat(images, 3, axis=-1) * 2.0 - 1.0 if images.shape[-1] == 1 else images
            rows.append(np.concatenate(list(images), axis=1))
    write_frames(path, to_uint8(np.concatenate(rows, axis=0)).numpy()[None])
    return path


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
    if "background_psnr" in results:
        rows += [
            (
                "PSNR outside the masks (dB)",
                f"{results['background_psnr']:.2f}",
                f"{results['copy_last_background_psnr']:.2f}",
            ),
            ("mask mean size", f"{results['mask_mean']:.3f}", f"{results['diff_mean']:.3f}"),
        ]
    if "mog2_iou" in results:
        rows += [
            ("mask IoU with MOG2's masks", f"{results['mog2_iou']:.3f}", ""),
            ("MOG2's mask mean size", f"{results['mog2_mean']:.3f}", ""),
        ]
    header = (
        f"Phase {results.get('phase', 1)} evaluation, {results.get('data', 'synthetic')} test "
        f"split: {results['pairs']} pairs, checkpoint step {results['step']}"
    )
    lines = [header, f"{'metric':<30}{'fgbg':>10}{'baseline':>12}", "-" * 52]
    lines += [f"{name:<30}{model:>10}{baseline:>12}" for name, model, baseline in rows]
    lines.append(
        "baseline: the frame-difference map d for the mask and its size, copy-last-frame for "
        "the frames."
    )
    return "\n".join(lines)
