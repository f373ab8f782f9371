"""Evaluates a run of either phase on the synthetic test split.

    python -m fgbg_keras.evaluate --model_dir=runs/synthetic/phase2 [--output=eval.json]

One-step figures (both phases): mask IoU against the ground truth (mask binarised at 0.5), PSNR
and SSIM of the predicted next frame, and PSNR/SSIM of the copy-last-frame baseline on the same
pairs. Phase I predicts f_{t+1} with m_t as the target mask; Phase II with
binarize(M(f_{t+1})).

Rollouts (Phase II runs, or any run with `--rollout_steps`): from the first frame of each test
clip, `steps` frames are generated, steered by
- the true offsets of the sprite (the control a user would give), with the mask carried forward
  (`carry`) or re-estimated from each generated frame (`reestimate`);
- the "parameterized control" of METHOD.md: offsets fitted from binarize(M(.)) of consecutive
  true frames, which needs no ground truth and is how real video is evaluated.
Per step and on average: PSNR and SSIM against the true frames, and the control error, the
distance in pixels between the centroid of binarize(M(generated frame)) and the sprite's true
centroid. Beside them the copy-first-frame baseline, and the measurement floor: the same
centroid error of M on the true frames. A generated frame whose mask is empty (the object was
lost) has no centroid; it is left out of the control error and counted in `lost`.
"""

import dataclasses
import json
import os
import sys

import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from data_pipelines import pipeline, synthetic
from data_pipelines.preprocess import preprocess_frames, to_uint8
from fgbg_keras import metrics, rollout
from fgbg_keras.training import loop

METRICS = ("mask_iou", "diff_mask_iou", "psnr", "ssim", "copy_last_psnr", "copy_last_ssim")
ROLLOUT_METRICS = ("psnr", "ssim", "control_error", "lost")
MASK_MODES = ("carry", "reestimate")
REPORT_NAME = "eval_test.json"  # written beside the checkpoints by train.py and evaluate
ROLLOUT_GIF = "rollouts_test.gif"
ROLLOUT_STEPS = 16


def run_phase(model_dir):
    """The phase (1 or 2) recorded in a run's `config.json`."""
    with open(os.path.join(model_dir, loop.CONFIG_FILE)) as f:
        return int(json.load(f).get("phase", 1))


def predict_next(mask_generator, frame_generator, frame, next_frame, phase):
    """The mask of `frame` and the predicted next frame, as each phase trains G to draw it."""
    mask = tf.cast(mask_generator(frame, training=False), tf.float32)
    if phase == 1:
        inputs = {"frame": frame, "mask": mask, "target_mask": mask}
    else:
        target = rollout.binarize(tf.cast(mask_generator(next_frame, training=False), tf.float32))
        inputs = {"frame": frame, "mask": rollout.binarize(mask), "target_mask": target}
    return mask, frame_generator(inputs, training=False)["frame"]


def _mean_and_std(values):
    return {name: np.concatenate([np.asarray(p) for p in parts]) for name, parts in values.items()}


def evaluate_pairs(model_dir, num_clips=None, batch_size=64):
    """One-step evaluation of the latest checkpoint of a run on the synthetic test split.

    Args:
        model_dir: the run's directory (with `config.json` and `checkpoints/`).
        num_clips: test clips to use; defaults to the run's `--num_test_clips`.
        batch_size: pairs per evaluation batch.

    Returns:
        A dict: `"checkpoint"`, `"step"`, `"phase"`, `"pairs"`, and the mean (and
        `<name>_std`, the standard deviation over pairs) of each of `METRICS`: `"mask_iou"` of
        M(f_t) and `"diff_mask_iou"` of the frame-difference map d (the label-free baseline),
        both against the ground-truth mask of f_t; `"psnr"`, `"ssim"` of the predicted f_{t+1};
        and `"copy_last_psnr"`, `"copy_last_ssim"` of f_t taken as f_{t+1}.
    """
    config, latest = loop.latest_checkpoint(model_dir)
    phase = run_phase(model_dir)
    loop.setup_runtime(config)
    _, mask_generator, frame_generator = loop.restore_networks(model_dir)
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
    logging.info("Evaluating %s on the pairs of %d test clips.", latest, num_clips)

    @tf.function
    def predict(frame, next_frame):
        return predict_next(mask_generator, frame_generator, frame, next_frame, phase)

    values = {name: [] for name in METRICS}
    for batch in data:
        mask, prediction = predict(batch["frame"], batch["next_frame"])
        values["mask_iou"].append(metrics.mask_iou(mask, batch["mask"]))
        values["diff_mask_iou"].append(metrics.mask_iou(batch["diff"], batch["mask"]))
        values["psnr"].append(metrics.psnr(prediction, batch["next_frame"]))
        values["ssim"].append(metrics.ssim(prediction, batch["next_frame"]))
        values["copy_last_psnr"].append(metrics.psnr(batch["frame"], batch["next_frame"]))
        values["copy_last_ssim"].append(metrics.ssim(batch["frame"], batch["next_frame"]))
    results = {"checkpoint": latest, "step": int(latest.rsplit("-", 1)[-1]), "phase": phase}
    for name, array in _mean_and_std(values).items():
        results["pairs"] = int(array.size)
        results[name] = float(array.mean())
        results[f"{name}_std"] = float(array.std())
    return results


def rollout_clips(config, steps, num_clips):
    """The test clips of the rollout evaluation: `steps + 1` frames each."""
    data_config = dataclasses.replace(loop.synthetic_config(config), clip_length=steps + 1)
    return synthetic.make_split("test", num_clips, data_config, seed=config.train.seed)


def _step_metrics(mask_generator, generated, truth, true_centroids):
    """PSNR, SSIM and control error `[B, T]` of generated frames `[B, T, H, W, 3]`."""
    batch, steps = generated.shape[0], generated.shape[1]
    flat = tf.reshape(generated, [-1, *generated.shape[2:]])
    flat_truth = tf.reshape(truth, [-1, *truth.shape[2:]])
    masks = rollout.binarize(tf.cast(mask_generator(flat, training=False), tf.float32))
    centroids, valid = rollout.mask_centroids(masks)
    error = tf.norm(centroids - tf.reshape(true_centroids, [-1, 2]), axis=-1)
    error = tf.where(valid, error, float("nan"))

    def shaped(x):
        return tf.reshape(x, [batch, steps]).numpy()

    return {
        "psnr": shaped(metrics.psnr(flat, flat_truth)),
        "ssim": shaped(metrics.ssim(flat, flat_truth)),
        "control_error": shaped(error),
        "lost": shaped(tf.cast(tf.logical_not(valid), tf.float32)),
    }


def _summarize(per_clip):
    """Per-step means `[T]` and the overall mean of each metric (control error over found)."""
    summary = {}
    for name, array in per_clip.items():
        array = np.concatenate(array)
        with np.errstate(invalid="ignore"):
            summary[f"{name}_per_step"] = [float(v) for v in np.nanmean(array, axis=0)]
        summary[name] = float(np.nanmean(array))
    return summary


def evaluate_rollouts(
    model_dir, steps=ROLLOUT_STEPS, num_clips=None, batch_size=16, gif_path=None, gif_clips=4
):
    """Controlled rollouts of the latest checkpoint of a run on the synthetic test split.

    Args:
        model_dir: the run's directory.
        steps: generated frames per clip.
        num_clips: test clips; defaults to the run's `--num_test_clips`.
        batch_size: clips rolled out together.
        gif_path: if set, writes an animated GIF there: per clip (rows) the true frames, the
            frames generated with the true offsets (carry) and those with their masks.
        gif_clips: clips in the GIF.

    Returns:
        A dict with `"steps"`, `"clips"` and one entry per method: `"true_carry"`,
        `"true_reestimate"` (true offsets, each mask mode), `"fitted_carry"` (parameterized
        control), `"copy_first"` (the baseline) and `"measurement"` (M on the true frames: the
        floor of the control error). Each holds `<metric>` (mean) and `<metric>_per_step` for
        `ROLLOUT_METRICS` (`lost`: fraction of frames whose mask is empty).
    """
    config, latest = loop.latest_checkpoint(model_dir)
    loop.setup_runtime(config)
    _, mask_generator, frame_generator = loop.restore_networks(model_dir)
    num_clips = num_clips or config.train.num_test_clips
    clips = rollout_clips(config, steps, num_clips)
    logging.info("Rolling out %d steps from %d test clips with %s.", steps, num_clips, latest)
    rollouts = {
        mode: rollout.make_rollout_fn(mask_generator, frame_generator, mode) for mode in MASK_MODES
    }

    @tf.function
    def masks_of(frames):
        return rollout.binarize(tf.cast(mask_generator(frames, training=False), tf.float32))

    methods = ("true_carry", "true_reestimate", "fitted_carry", "copy_first", "measurement")
    per_clip = {m: {name: [] for name in ROLLOUT_METRICS} for m in methods}
    gif_rows = []
    for start in range(0, num_clips, batch_size):
        frames = preprocess_frames(clips["frames"][start : start + batch_size])
        centroids = clips["centroids"][start : start + batch_size, 1:]
        offsets = tf.constant(clips["offsets"][start : start + batch_size], tf.float32)
        batch, length = frames.shape[0], frames.shape[1]
        first, truth = frames[:, 0], frames[:, 1:]

        true_masks = tf.reshape(masks_of(tf.reshape(frames, [-1, *frames.shape[2:]])), [
            batch, length, *frames.shape[2:4], 1
        ])
        fitted = rollout.fit_translations(
            tf.reshape(true_masks[:, :-1], [-1, *true_masks.shape[2:]]),
            tf.reshape(true_masks[:, 1:], [-1, *true_masks.shape[2:]]),
        )
        controls = {
            "true": rollout.translation_controls(offsets),
            "fitted": rollout.translation_controls(tf.reshape(fitted, [batch, steps, 2])),
        }
        generated = {}
        for method in ("true_carry", "true_reestimate", "fitted_carry"):
            source, mode = method.split("_")
            generated[method] = rollouts[mode](first, controls[source])
        generated["copy_first"] = {"frames": tf.repeat(first[:, None], steps, axis=1)}
        generated["measurement"] = {"frames": truth}
        for method, outputs in generated.items():
            values = _step_metrics(mask_generator, outputs["frames"], truth, centroids)
            for name, array in values.items():
                per_clip[method][name].append(array)
        if gif_path and len(gif_rows) < gif_clips:
            carry = generated["true_carry"]
            with_masks = metrics.overlay(carry["frames"], carry["masks"]) * 2.0 - 1.0
            row = tf.concat(
                [
                    frames,
                    tf.concat([first[:, None], carry["frames"]], axis=1),
                    tf.concat([metrics.overlay(first, true_masks[:, 0])[:, None] * 2 - 1, with_masks], axis=1),
                ],
                axis=3,
            )
            gif_rows.extend(tf.unstack(row[: gif_clips - len(gif_rows)]))
    results = {"checkpoint": latest, "steps": steps, "clips": num_clips}
    for method in methods:
        results[method] = _summarize(per_clip[method])
    if gif_path:
        from fgbg_keras.generate import write_frames

        write_frames(gif_path, to_uint8(tf.concat(gif_rows, axis=1)).numpy())
    return results


def format_table(results):
    """The one-step evaluation results as a small text table."""
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
        f"Phase {results.get('phase', 1)} evaluation, synthetic test split: {results['pairs']} "
        f"pairs, checkpoint step {results['step']}"
    )
    lines = [header, f"{'metric':<30}{'fgbg':>10}{'baseline':>12}", "-" * 52]
    lines += [f"{name:<30}{model:>10}{baseline:>12}" for name, model, baseline in rows]
    lines.append(
        "baseline: the frame-difference map d for the mask, copy-last-frame for the frames."
    )
    return "\n".join(lines)


ROLLOUT_COLUMNS = (
    ("true_carry", "true/carry"),
    ("true_reestimate", "true/reest."),
    ("fitted_carry", "fitted/carry"),
    ("copy_first", "copy-first"),
)


def format_rollout_table(results):
    """The rollout results: averages, then PSNR and control error per step."""
    width = 14
    head = f"{'':<22}" + "".join(f"{label:>{width}}" for _, label in ROLLOUT_COLUMNS)
    lines = [
        f"Controlled rollouts, synthetic test split: {results['clips']} clips x "
        f"{results['steps']} steps (controls / mask mode)",
        head,
        "-" * len(head),
    ]
    for name, label, fmt in (
        ("psnr", "PSNR (dB)", "{:.2f}"),
        ("ssim", "SSIM", "{:.3f}"),
        ("control_error", "control error (px)", "{:.2f}"),
        ("lost", "object lost (frac.)", "{:.3f}"),
    ):
        cells = "".join(
            f"{fmt.format(results[method][name]):>{width}}" for method, _ in ROLLOUT_COLUMNS
        )
        lines.append(f"{label:<22}{cells}")
    floor = results["measurement"]["control_error"]
    lines.append(f"control error of M on the true frames (the measurement floor): {floor:.2f} px")
    lines.append("")
    lines.append(f"{'step':<6}" + "".join(f"{'PSNR ' + l:>{width + 4}}" for _, l in ROLLOUT_COLUMNS[:1] + ROLLOUT_COLUMNS[3:]) + f"{'ctrl err':>{width}}{'copy-first':>{width}}")
    for k in range(results["steps"]):
        lines.append(
            f"{k + 1:<6}"
            f"{results['true_carry']['psnr_per_step'][k]:>{width + 4}.2f}"
            f"{results['copy_first']['psnr_per_step'][k]:>{width + 4}.2f}"
            f"{results['true_carry']['control_error_per_step'][k]:>{width}.2f}"
            f"{results['copy_first']['control_error_per_step'][k]:>{width}.2f}"
        )
    return "\n".join(lines)


def evaluate_and_report(model_dir, output=None, rollout_steps=None, num_clips=None):
    """Runs the evaluations a run's phase calls for, writes the JSON, returns the tables.

    One-step figures always; rollouts for Phase II runs or when `rollout_steps` is given,
    with `<model_dir>/rollouts_test.gif`.
    """
    output = output or os.path.join(model_dir, REPORT_NAME)
    results = evaluate_pairs(model_dir, num_clips=num_clips)
    text = format_table(results)
    if rollout_steps is None and results["phase"] == 2:
        rollout_steps = ROLLOUT_STEPS
    if rollout_steps:
        gif = os.path.join(model_dir, ROLLOUT_GIF)
        results["rollout"] = evaluate_rollouts(
            model_dir, steps=rollout_steps, num_clips=num_clips, gif_path=gif
        )
        text += "\n\n" + format_rollout_table(results["rollout"]) + f"\nRollouts: {gif}"
    with open(output, "w") as f:
        json.dump(results, f, indent=2)
    return text + f"\nWritten to {output}\n"


FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        text = evaluate_and_report(
            FLAGS.model_dir, FLAGS.output, FLAGS.rollout_steps, FLAGS.num_clips
        )
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    # The table is this command's output, not a log message.
    sys.stdout.write(text)


if __name__ == "__main__":
    flags.DEFINE_string("model_dir", None, "The run directory of train.py.")
    flags.DEFINE_integer("num_clips", None, "Test clips (default: the run's --num_test_clips).")
    flags.DEFINE_integer(
        "rollout_steps",
        None,
        f"Frames per controlled rollout (default: {ROLLOUT_STEPS} for Phase 2 runs, none for "
        "Phase 1 runs).",
    )
    flags.DEFINE_string("output", None, "JSON output (default: <model_dir>/eval_test.json).")
    flags.mark_flag_as_required("model_dir")
    app.run(main)
