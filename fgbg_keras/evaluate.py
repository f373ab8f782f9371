"""Evaluates a run of either phase on the test split of its data (`--data`).

    python -m fgbg_keras.evaluate --model_dir=runs/synthetic/phase2 [--output=eval.json]
    python -m fgbg_keras.evaluate --model_dir=runs/synthetic/phase2 --output=reports/synthetic

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
centroid. Data without ground truth (converted real video) gets what needs none: one-step PSNR
and SSIM, and the parameterized-control rollouts, whose control error is then measured against
the centroid of binarize(M(true frame)). Beside them two baselines: copy-first-frame, and
paste-only, the compositor of `mask_ops.paste_foreground` stepped with the same masks and no
frame generator (what M alone gives; the frame generator should beat it); on synthetic data
the oracle, the same compositor given the true masks (the first frame's true sprite pasted at
its true positions: the ceiling of moving the object by pasting); and the measurement
floor: the same centroid error of M on the true frames. A generated frame whose mask is empty
(the object was lost) has no centroid; it is left out of the control error and counted in
`lost`.
"""

import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from data_pipelines import datasets, pipeline
from data_pipelines.preprocess import preprocess_frames, to_uint8
from fgbg_keras import fvd, mask_ops, metrics, rollout
from fgbg_keras.media import write_frames
from fgbg_keras.training import loop

METRICS = ("mask_iou", "diff_mask_iou", "psnr", "ssim", "copy_last_psnr", "copy_last_ssim")
ROLLOUT_METRICS = ("psnr", "ssim", "control_error", "lost")
# Rollout methods: "<controls>_<mask mode>" for the model, then the baselines and the floor.
GENERATED = ("true_carry", "true_reestimate", "fitted_carry")
ROLLOUT_METHODS = GENERATED + ("paste_only", "oracle", "copy_first", "measurement")
REPORT_NAME = "eval_test.json"  # written beside the checkpoints by train.py and evaluate
ROLLOUT_GIF = "rollouts_test.gif"
ROLLOUT_STEPS = 16


def predict_next(mask_generator, frame_generator, frame, next_frame, phase):
    """The mask of `frame` and the predicted next frame, as each phase trains G to draw it."""
    mask = tf.cast(mask_generator(frame, training=False), tf.float32)
    if phase == 1:
        inputs = {"frame": frame, "mask": mask, "target_mask": mask}
    else:
        target = mask_ops.binarize(tf.cast(mask_generator(next_frame, training=False), tf.float32))
        inputs = {"frame": frame, "mask": mask_ops.binarize(mask), "target_mask": target}
    return mask, frame_generator(inputs, training=False)["frame"]


def _binary_masks(mask_generator):
    @tf.function
    def masks_of(frames):
        return mask_ops.binarize(mask_generator(frames, training=False))

    return masks_of


def evaluate_pairs(run, num_clips=None, batch_size=64):
    """One-step evaluation of a restored run on the test split of its data.

    Args:
        run: a `loop.RestoredRun`.
        num_clips: test clips to use; defaults to the run's `--num_test_clips`.
        batch_size: pairs per evaluation batch.

    Returns:
        A dict: `"checkpoint"`, `"step"`, `"phase"`, `"pairs"`, and the mean (and
        `<name>_std`, the standard deviation over pairs) of each of `METRICS`: `"mask_iou"` of
        M(f_t) and `"diff_mask_iou"` of the frame-difference map d (the label-free baseline),
        both against the ground-truth mask of f_t; `"psnr"`, `"ssim"` of the predicted f_{t+1};
        and `"copy_last_psnr"`, `"copy_last_ssim"` of f_t taken as f_{t+1}.
    """
    config = run.config
    clips = test_clips(config, num_clips, config.train.clip_length)
    num_clips = len(clips["frames"])
    data = pipeline.eval_triples(
        clips,
        batch_size=batch_size,
        image_size=config.model.image_size,
        diff_mode=config.loss.diff,
        diff_threshold=config.loss.diff_threshold,
    )
    logging.info("Evaluating %s on the pairs of %d test clips.", run.checkpoint, num_clips)

    @tf.function
    def predict(frame, next_frame):
        return predict_next(run.mask_generator, run.frame_generator, frame, next_frame, run.phase)

    names = METRICS if "masks" in clips else METRICS[2:]
    values = {name: [] for name in names}
    for batch in data:
        mask, prediction = predict(batch["frame"], batch["next_frame"])
        if "mask" in batch:
            values["mask_iou"].append(metrics.mask_iou(mask, batch["mask"]))
            values["diff_mask_iou"].append(metrics.mask_iou(batch["diff"], batch["mask"]))
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


def test_clips(config, num_clips, clip_length):
    """The test clips of a run's `--data` (`num_clips` defaults to `--num_test_clips`)."""
    train = config.train
    return datasets.evaluation_clips(
        train.data,
        "test",
        num_clips or train.num_test_clips,
        clip_length,
        config.model.image_size,
        train.seed,
        tfds_data_dir=train.tfds_data_dir,
    )


def _step_metrics(masks_of, generated, truth, true_centroids):
    """PSNR, SSIM, control error and lost objects `[B, T]` of frames `[B, T, H, W, 3]`."""
    batch, steps = generated.shape[0], generated.shape[1]
    flat = tf.reshape(generated, [-1, *generated.shape[2:]])
    flat_truth = tf.reshape(truth, [-1, *truth.shape[2:]])
    error, found = metrics.control_error(masks_of(flat), tf.reshape(true_centroids, [-1, 2]))

    def shaped(x):
        return tf.reshape(x, [batch, steps]).numpy()

    return {
        "psnr": shaped(metrics.psnr(flat, flat_truth)),
        "ssim": shaped(metrics.ssim(flat, flat_truth)),
        "control_error": shaped(error),
        "lost": shaped(tf.cast(tf.logical_not(found), tf.float32)),
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


def _paste_only(inputs, training=False):
    """A frame "generator" with no weights: the masked content moved, the hole filled."""
    del training
    return {
        "frame": mask_ops.paste_foreground(inputs["frame"], inputs["mask"], inputs["target_mask"])
    }


def _gif_rows(frames, carry, first_mask):
    """Per clip, stacked top to bottom: the true frames, the frames generated with the true
    offsets, and the same with their masks overlaid; frame 0 is the input."""
    first = frames[:, :1]
    with_masks = tf.concat([first_mask[:, None], carry["masks"]], axis=1)
    generated = tf.concat([first, carry["frames"]], axis=1)
    overlaid = metrics.overlay(generated, with_masks) * 2.0 - 1.0
    return tf.unstack(tf.concat([frames, generated, overlaid], axis=2))


def _still_grid(rows, steps, clips=4, columns=5):
    """uint8 `[clips * 3H, columns * W, 3]`: for each of the first `clips` clips (a row of the
    GIF: true / generated / with masks), `columns` evenly spaced steps from 0 to `steps`."""
    picks = np.linspace(0, steps, columns).round().astype(int)
    blocks = [tf.concat([clip[t] for t in picks], axis=1) for clip in rows[:clips]]
    return to_uint8(tf.concat(blocks, axis=0)).numpy()


def evaluate_rollouts(
    run,
    steps=ROLLOUT_STEPS,
    num_clips=None,
    batch_size=16,
    gif_path=None,
    lpips_metric=None,
    video_features=None,
    convlstm=None,
    convlstm_controls=True,
):
    """Controlled rollouts of a restored run on the test split of its data.

    Args:
        run: a `loop.RestoredRun`.
        steps: generated frames per clip.
        num_clips: test clips; defaults to the run's `--num_test_clips`.
        batch_size: clips rolled out together.
        gif_path: if set, writes an animated GIF there of the first batch of clips, side by
            side: per clip the true frames over the generated ones (true offsets, carry) over
            those with their masks; and beside it (`.png`) a still grid of 4 of those clips at 5
            steps from 0 to `steps`.
        lpips_metric: an `fgbg_keras.lpips.LPIPS`: adds `lpips` per step to every method but
            the measurement floor.
        video_features: an `fgbg_keras.fvd.VideoFeatures`: adds `fvd` (generated rollouts
            against the true clips, `fvd.PROTOCOL` with T = `steps` frames) to those methods,
            and `fvd_protocol` to the results. Needs at least 2 clips.
        convlstm: a trained `ConvLSTMPredictor` (`training.baseline.restore`) at the run's
            frame size: adds the method `"convlstm"`.
        convlstm_controls: steer it with the true offsets (it was trained with them);
            otherwise, or on data without them, with zeros.

    Returns:
        A dict with `"steps"`, `"clips"`, `"ground_truth"` (offsets and masks) and one entry
        per `ROLLOUT_METHODS`: `"true_carry"`, `"true_reestimate"` (true offsets, each mask
        mode), `"fitted_carry"` (parameterized control), the baselines `"paste_only"` (true
        offsets, carry), `"oracle"` (the compositor on the true masks) and `"copy_first"`, and
        `"measurement"` (M on the true frames: the floor of the control
        error). Each holds `<metric>` (mean) and `<metric>_per_step` for `ROLLOUT_METRICS`
        (`lost`: fraction of frames whose mask is empty). Without ground-truth offsets (real
        video) only `"fitted_carry"` and `"copy_first"`, with the control error measured against
        M's masks of the true frames.
    """
    config = run.config
    clips = test_clips(config, num_clips, steps + 1)
    num_clips = len(clips["frames"])
    ground_truth = "offsets" in clips and "masks" in clips
    methods = ROLLOUT_METHODS if ground_truth else ("fitted_carry", "copy_first")
    if convlstm is not None:
        methods = (*methods, "convlstm")
    logging.info(
        "Rolling out %d steps from %d test clips with %s.", steps, num_clips, run.checkpoint
    )
    rollouts = {
        mode: rollout.make_rollout_fn(run.mask_generator, run.frame_generator, mode)
        for mode in rollout.MASK_MODES
    }
    paste_only = rollout.make_rollout_fn(run.mask_generator, _paste_only)
    masks_of = _binary_masks(run.mask_generator)

    per_clip = {method: {name: [] for name in ROLLOUT_METRICS} for method in methods}
    compared = [m for m in methods if m != "measurement"]
    if lpips_metric is not None:
        for method in compared:
            per_clip[method]["lpips"] = []
    videos = {method: [] for method in compared + ["truth"]} if video_features else None
    for start in range(0, num_clips, batch_size):
        frames = preprocess_frames(
            clips["frames"][start : start + batch_size], config.model.image_size
        )
        first, truth = frames[:, 0], frames[:, 1:]
        batch, size = frames.shape[0], frames.shape[2:4]

        true_masks = masks_of(tf.reshape(frames, [-1, *size, 3]))
        true_masks = tf.reshape(true_masks, [batch, steps + 1, *size, 1])
        controls = {"fitted": mask_ops.translation_controls(mask_ops.clip_translations(true_masks))}
        if ground_truth:
            # Ground truth is in the clips' own pixels; the model may work at another size.
            data_size = clips["frames"].shape[2:4]
            centroids = clips["centroids"][start : start + batch_size, 1:]
            centroids = mask_ops.rescale_points(centroids, data_size, size)
            offsets = clips["offsets"][start : start + batch_size]
            offsets = offsets * mask_ops.resize_scale(data_size, size)
            controls["true"] = mask_ops.translation_controls(offsets)
        else:
            centroids, valid = mask_ops.mask_centroids(
                tf.reshape(true_masks[:, 1:], [-1, *size, 1])
            )
            # Where M finds nothing in the true frame there is no reference: NaN, left out.
            centroids = tf.where(valid[:, None], centroids, np.nan)
            centroids = tf.reshape(centroids, [batch, steps, 2])
        generated = {}
        for method in methods:
            if method in GENERATED:
                source, mode = method.split("_")
                generated[method] = rollouts[mode](first, controls[source])
        if ground_truth:
            generated["paste_only"] = paste_only(first, controls["true"])
            # The ceiling: the first frame's true sprite pasted where the true masks say.
            masks = pipeline.preprocess_masks(clips["masks"][start : start + batch_size], size)
            generated["oracle"] = {
                "frames": tf.reshape(
                    mask_ops.paste_foreground(
                        tf.reshape(tf.repeat(first[:, None], steps, axis=1), [-1, *size, 3]),
                        tf.reshape(tf.repeat(masks[:, :1], steps, axis=1), [-1, *size, 1]),
                        tf.reshape(masks[:, 1:], [-1, *size, 1]),
                    ),
                    truth.shape,
                )
            }
            generated["measurement"] = {"frames": truth}
        generated["copy_first"] = {"frames": tf.repeat(first[:, None], steps, axis=1)}
        if convlstm is not None:
            steered = offsets if convlstm_controls and ground_truth else tf.zeros([batch, steps, 2])
            generated["convlstm"] = {"frames": convlstm({"frame": first, "offsets": steered})}
        for method, outputs in generated.items():
            values = _step_metrics(masks_of, outputs["frames"], truth, centroids)
            if method in compared and lpips_metric is not None:
                flat = tf.reshape(outputs["frames"], [-1, *size, 3])
                distance = lpips_metric(flat, tf.reshape(truth, [-1, *size, 3]))
                values["lpips"] = tf.reshape(distance, [batch, steps]).numpy()
            if videos is not None and method in compared:
                videos[method].append(np.asarray(outputs["frames"]))
            for name, array in values.items():
                per_clip[method][name].append(array)
        if videos is not None:
            videos["truth"].append(np.asarray(truth))
        if gif_path and start == 0:
            shown = generated["true_carry" if ground_truth else "fitted_carry"]
            rows = _gif_rows(frames, shown, true_masks[:, 0])
            # [T + 1, 3H, B * W, 3]: the clips side by side.
            write_frames(gif_path, to_uint8(tf.concat(rows, axis=2)).numpy())
            write_frames(os.path.splitext(gif_path)[0] + ".png", _still_grid(rows, steps)[None])

    results = {
        "checkpoint": run.checkpoint,
        "steps": steps,
        "clips": num_clips,
        "ground_truth": ground_truth,
    }
    for method in methods:
        results[method] = _summarize(per_clip[method])
    if videos is not None:
        true_statistics = fvd.statistics(video_features, np.concatenate(videos.pop("truth")))
        for method, parts in videos.items():
            generated = fvd.statistics(video_features, np.concatenate(parts))
            results[method]["fvd"] = fvd.frechet_distance(*true_statistics, *generated)
        results["fvd_protocol"] = {
            **fvd.PROTOCOL,
            "frames": steps,
            "videos": num_clips,
            "network": video_features.path,
        }
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


ROLLOUT_COLUMNS = (
    ("true_carry", "true/carry"),
    ("true_reestimate", "true/reest."),
    ("fitted_carry", "fitted/carry"),
    ("paste_only", "paste-only"),
    ("oracle", "oracle"),
    ("convlstm", "ConvLSTM"),
    ("copy_first", "copy-first"),
)
PER_STEP_COLUMNS = (
    ("psnr", "PSNR (dB)", "{:.2f}"),
    ("ssim", "SSIM", "{:.3f}"),
    ("control_error", "control err (px)", "{:.2f}"),
)


def format_rollout_table(results, mask_mode=rollout.DEFAULT_MASK_MODE):
    """The rollout results: averages per method, then per step the model (true offsets and
    `mask_mode`; fitted offsets without ground truth) beside copy-first-frame."""
    width = 14
    columns = [(method, label) for method, label in ROLLOUT_COLUMNS if method in results]
    head = f"{'':<22}" + "".join(f"{label:>{width}}" for _, label in columns)
    lines = [
        f"Controlled rollouts, test split: {results['clips']} clips x "
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
        cells = "".join(f"{fmt.format(results[method][name]):>{width}}" for method, _ in columns)
        lines.append(f"{label:<22}{cells}")
    if "measurement" in results:
        floor = results["measurement"]["control_error"]
        lines.append(
            f"control error of M on the true frames (the measurement floor): {floor:.2f} px"
        )
    else:
        lines.append(
            "no ground truth: controls fitted from M's masks of the true frames, control error "
            "against M's centroids on them"
        )
    method = f"true_{mask_mode}" if f"true_{mask_mode}" in results else "fitted_carry"
    model, baseline = results[method], results["copy_first"]
    source = "true offsets" if method.startswith("true") else "fitted offsets"
    lines += ["", f"per step: fgbg ({source}, {method.split('_')[1]}) / copy-first-frame"]
    lines.append(f"{'step':<6}" + "".join(f"{label:>18}" for _, label, _ in PER_STEP_COLUMNS))
    for k in range(results["steps"]):
        cells = []
        for name, _, fmt in PER_STEP_COLUMNS:
            pair = [fmt.format(r[f"{name}_per_step"][k]) for r in (model, baseline)]
            cells.append(f"{' / '.join(pair):>18}")
        lines.append(f"{k + 1:<6}" + "".join(cells))
    return "\n".join(lines)


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

    One-step figures always; rollouts for Phase II runs or when `rollout_steps` is given,
    with their GIF.

    Args:
        model_dir: the run directory.
        output: a `.json` path for the results (default `<model_dir>/eval_test.json`, the GIF
            `<model_dir>/rollouts_test.gif`), or a folder for the full report
            (`fgbg_keras.report`: report.md, metrics.json, plots, rollouts.gif).
        rollout_steps: steps per rollout (default 16 for Phase II runs, none for Phase I).
        num_clips: test clips (default the run's `--num_test_clips`).
        lpips_metric, video_features: LPIPS and FVD for the rollouts (see `evaluate_rollouts`).
        convlstm_dir: a `--phase=baseline_convlstm` run of the same frame size, evaluated
            beside the model in the rollouts.

    Raises:
        ValueError: naming `model_dir` when it is not a run or holds no checkpoint.
    """
    from fgbg_keras import report

    report_dir = output if output and not output.endswith(".json") else None
    output = output or os.path.join(model_dir, REPORT_NAME)
    run = loop.restore_networks(model_dir)
    convlstm, convlstm_controls = None, False
    if convlstm_dir:
        from fgbg_keras.training import baseline

        baseline_config, convlstm = baseline.restore(convlstm_dir)
        convlstm_controls = baseline.trained_with_controls(baseline_config)
        keras.config.set_dtype_policy(run.config.train.precision)
        sizes = (baseline_config.model.image_size, run.config.model.image_size)
        if sizes[0] != sizes[1]:
            raise ValueError(
                f"--convlstm_dir={convlstm_dir!r} was trained at {sizes[0]}x{sizes[0]}, the "
                f"model at {sizes[1]}x{sizes[1]}: train the baseline at the model's size."
            )
    if rollout_steps is None and (convlstm or lpips_metric or video_features):
        rollout_steps = ROLLOUT_STEPS
    if video_features is not None and num_clips is not None and num_clips < 2:
        raise ValueError(f"--num_clips={num_clips}: FVD needs at least 2 test clips.")
    results = evaluate_pairs(run, num_clips=num_clips)
    text = format_table(results)
    if rollout_steps is None and run.phase == 2:
        rollout_steps = ROLLOUT_STEPS
    if rollout_steps:
        if report_dir:
            os.makedirs(report_dir, exist_ok=True)
        gif = os.path.join(report_dir or model_dir, "rollouts.gif" if report_dir else ROLLOUT_GIF)
        results["rollout"] = evaluate_rollouts(
            run,
            steps=rollout_steps,
            num_clips=num_clips,
            gif_path=gif,
            lpips_metric=lpips_metric,
            video_features=video_features,
            convlstm=convlstm,
            convlstm_controls=convlstm_controls,
        )
        text += "\n\n" + format_rollout_table(results["rollout"]) + f"\nRollouts: {gif}"
    if report_dir:
        gif_name = "rollouts.gif" if rollout_steps else None
        written = report.write_report(results, report_dir, rollout_gif=gif_name)
        return text + f"\nReport: {written}\n"
    with open(output, "w") as f:
        json.dump(results, f, indent=2)
    return text + f"\nWritten to {output}\n"


FLAGS = flags.FLAGS


def feature_metrics(lpips_network, lpips_backbone, lpips_linear, fvd_model):
    """The LPIPS and FVD networks the flags name, or None for each that is not asked for."""
    lpips_metric = video_features = None
    if lpips_backbone or lpips_linear:
        if not (lpips_backbone and lpips_linear):
            raise ValueError("LPIPS needs both --lpips_backbone and --lpips_linear.")
        from fgbg_keras.lpips import LPIPS

        lpips_metric = LPIPS(lpips_network, lpips_backbone, lpips_linear)
    if fvd_model:
        video_features = fvd.VideoFeatures(fvd_model)
    return lpips_metric, video_features


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        lpips_metric, video_features = feature_metrics(
            FLAGS.lpips_network, FLAGS.lpips_backbone, FLAGS.lpips_linear, FLAGS.fvd_model
        )
        text = evaluate_and_report(
            FLAGS.model_dir,
            FLAGS.output,
            FLAGS.rollout_steps,
            FLAGS.num_clips,
            lpips_metric=lpips_metric,
            video_features=video_features,
            convlstm_dir=FLAGS.convlstm_dir,
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
    flags.DEFINE_string(
        "output",
        None,
        "A .json file for the results (default: <model_dir>/eval_test.json), or a folder for "
        "the report: report.md, metrics.json, per-step plots (PNG) and rollouts.gif.",
    )
    flags.DEFINE_string(
        "convlstm_dir",
        None,
        "A --phase=baseline_convlstm run of train.py at the model's frame size: its rollouts "
        "are evaluated beside the model's.",
    )
    flags.DEFINE_enum(
        "lpips_network", "vgg16", ["vgg16", "alex"], "The backbone of --lpips_backbone."
    )
    flags.DEFINE_string(
        "lpips_backbone",
        None,
        "LPIPS: the backbone's weights in Keras format (.weights.h5 or .keras), see "
        "fgbg_keras/lpips.py. Without it LPIPS is not computed.",
    )
    flags.DEFINE_string(
        "lpips_linear", None, "LPIPS: an .npz with the linear layers lin0 ... lin4."
    )
    flags.DEFINE_string(
        "fvd_model",
        None,
        "FVD: an I3D SavedModel mapping [B, T, 224, 224, 3] videos in [-1, 1] to features "
        "[B, D]. Without it FVD is not computed.",
    )
    flags.mark_flag_as_required("model_dir")
    app.run(main)
