"""Controlled rollouts of a restored run on the test split of its data, scored per step.

From the first frame of each test clip, every available method of `evaluation.methods` generates
the clip's next `steps` frames. Per step and on average: PSNR and SSIM against the true frames,
and the control error, the distance in pixels between the centroid of binarize(M(generated
frame)) and the object's true centroid. Data without ground truth (converted real video) gets
what needs none: the parameterized-control rollouts, whose control error is then measured against
the centroid of binarize(M(true frame)), and copy-first-frame. A generated frame whose mask is
empty (the object was lost) has no centroid; it is left out of the control error and counted in
`lost`. LPIPS and FVD are added when their networks are given.
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from data_pipelines import datasets
from data_pipelines.pipeline import preprocess_masks
from data_pipelines.preprocess import preprocess_frames, to_uint8
from fgbg_keras import mask_ops, metrics
from fgbg_keras.evaluation import fvd, methods
from fgbg_keras.evaluation.pairs import load_test_clips
from fgbg_keras.media import overlay, write_frames

ROLLOUT_METRICS = ("psnr", "ssim", "control_error", "lost")
ROLLOUT_STEPS = 16
# The per-step metrics as the tables and plots show them: (key, label, format).
METRIC_LABELS = (
    ("psnr", "PSNR (dB)", "{:.2f}"),
    ("ssim", "SSIM", "{:.3f}"),
    ("control_error", "control error (px)", "{:.2f}"),
    ("lpips", "LPIPS", "{:.3f}"),
)


def binary_masks(mask_generator):
    """`masks_of(frames)`: binarize(M(frames)), compiled."""

    @tf.function
    def masks_of(frames):
        return mask_ops.binarize(mask_generator(frames, training=False))

    return masks_of


def rollout_batch(clips, start, stop, size, masks_of, ground_truth):
    """The `RolloutBatch` of clips `start:stop`, in the model's pixels `size`; with
    `ground_truth`, the clips' true offsets, masks and centroids come with it."""
    frames = preprocess_frames(clips["frames"][start:stop], size)
    shape = frames.shape
    model_masks = tf.reshape(masks_of(tf.reshape(frames, [-1, *size, 3])), [*shape[:-1], 1])
    controls = {"fitted": mask_ops.fitted_controls(model_masks)}
    sources = clips["sources"][start:stop] if "sources" in clips else None
    if not ground_truth:
        centroids, valid = mask_ops.mask_centroids(tf.reshape(model_masks[:, 1:], [-1, *size, 1]))
        # Where M finds nothing in the true frame there is no reference: NaN, left out.
        centroids = tf.where(valid[:, None], centroids, np.nan)
        centroids = tf.reshape(centroids, [shape[0], shape[1] - 1, 2])
        return methods.RolloutBatch(frames, model_masks, controls, centroids, sources=sources)
    # Ground truth is in the clips' own pixels; the model may work at another size.
    data_size = clips["frames"].shape[2:4]
    centroids = mask_ops.rescale_points(clips["centroids"][start:stop, 1:], data_size, size)
    offsets = clips["offsets"][start:stop] * mask_ops.resize_scale(data_size, size)
    controls["true"] = mask_ops.translation_controls(offsets)
    masks = preprocess_masks(clips["masks"][start:stop], size)
    return methods.RolloutBatch(
        frames, model_masks, controls, centroids, offsets, masks, sources=sources
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


class _Scores:
    """Per method, the per-clip, per-step values of every metric, and the videos for FVD."""

    def __init__(self, evaluated, masks_of, lpips_metric=None, video_features=None):
        self.masks_of = masks_of
        self.lpips_metric = lpips_metric
        self.video_features = video_features
        self.values = {method.name: {} for method in evaluated}
        self.compared = [method.name for method in evaluated if not method.reference]
        self.videos = {name: [] for name in [*self.compared, "truth"]} if video_features else None

    def add(self, generated, batch):
        truth = batch.truth
        size = truth.shape[2:4]
        for name, outputs in generated.items():
            values = _step_metrics(self.masks_of, outputs["frames"], truth, batch.centroids)
            if name in self.compared and self.lpips_metric is not None:
                flat = tf.reshape(outputs["frames"], [-1, *size, 3])
                distance = self.lpips_metric(flat, tf.reshape(truth, [-1, *size, 3]))
                values["lpips"] = tf.reshape(distance, truth.shape[:2]).numpy()
            if self.videos is not None and name in self.compared:
                self.videos[name].append(np.asarray(outputs["frames"]))
            for metric, array in values.items():
                self.values[name].setdefault(metric, []).append(array)
        if self.videos is not None:
            self.videos["truth"].append(np.asarray(truth))

    def summary(self, steps, num_clips):
        """Per method, the per-step means `[T]` and the overall mean of each metric (the
        control error over the frames where the object was found); FVD with its protocol."""
        results = {}
        for name, per_clip in self.values.items():
            results[name] = {}
            for metric, parts in per_clip.items():
                array = np.concatenate(parts)
                with np.errstate(invalid="ignore"):
                    per_step = np.nanmean(array, axis=0)
                results[name][f"{metric}_per_step"] = [float(v) for v in per_step]
                results[name][metric] = float(np.nanmean(array))
        if self.videos is not None:
            features = self.video_features
            true_statistics = fvd.statistics(features, np.concatenate(self.videos.pop("truth")))
            for name, parts in self.videos.items():
                generated = fvd.statistics(features, np.concatenate(parts))
                results[name]["fvd"] = fvd.frechet_distance(*true_statistics, *generated)
            results["fvd_protocol"] = {
                **fvd.PROTOCOL,
                "frames": steps,
                "videos": num_clips,
                "network": features.path,
            }
        return results


def write_rollout_images(gif_path, batch, shown, steps, clips=4, columns=5):
    """Writes the example rollouts of a batch: an animated GIF with, per clip side by side, the
    true frames over the generated ones (`shown`, a method's outputs with its masks) over those
    with their masks; and beside it (`.png`) a still grid of the first `clips` clips at `columns`
    steps from 0 to `steps`."""
    frames = batch.frames
    masks = tf.concat([batch.model_masks[:, :1], shown["masks"]], axis=1)
    generated = tf.concat([frames[:, :1], shown["frames"]], axis=1)
    overlaid = overlay(generated, masks) * 2.0 - 1.0
    rows = tf.unstack(tf.concat([frames, generated, overlaid], axis=2))
    # [T + 1, 3H, B * W, 3]: the clips side by side.
    write_frames(gif_path, to_uint8(tf.concat(rows, axis=2)).numpy())
    picks = np.linspace(0, steps, columns).round().astype(int)
    blocks = [tf.concat([clip[t] for t in picks], axis=1) for clip in rows[:clips]]
    still = to_uint8(tf.concat(blocks, axis=0)).numpy()
    write_frames(os.path.splitext(gif_path)[0] + ".png", still[None])


def has_ground_truth(clips):
    """Whether test clips carry the true offsets and masks that some methods need."""
    return "offsets" in clips and "masks" in clips


def has_recordings(config, clips):
    """Whether test clips name recordings whose frames the run's data source gives (the MOG2
    baseline learns from them)."""
    if "sources" not in clips:
        return False
    return datasets.source(config).recording_frames(clips["sources"][0]) is not None


def method_rollouts(run, clips, masks_of, convlstm=None, convlstm_controls=False, batch_size=16):
    """Every method that `clips` (with ground truth or not) and the baseline allow, rolled
    out batch by batch.

    Args:
        run: a `runs.RestoredRun`.
        clips: test clips (`load_test_clips`); with ground truth (`has_ground_truth`), the
            methods that need it too.
        masks_of: `binary_masks(run.mask_generator)`, shared with the caller's scoring.
        convlstm, convlstm_controls: as in `evaluate_rollouts`.
        batch_size: clips rolled out together.

    Returns:
        `(evaluated, batches)`: the `methods.Method`s, and an iterator (to be read once) of
        `(RolloutBatch, {method name: its rollout dict})`, one per batch of clips.
    """
    ground_truth = has_ground_truth(clips)
    have = {methods.GROUND_TRUTH} if ground_truth else set()
    if ground_truth and datasets.source(run.config).has_controls:
        have.add(methods.TRAINING_CONTROLS)
    if convlstm is not None:
        have.add(methods.CONVLSTM)
    if has_recordings(run.config, clips):
        have.add(methods.RECORDINGS)
    evaluated = methods.available(have)
    context = methods.Context(run, convlstm, convlstm_controls)
    generators = {method.name: method.prepare(context) for method in evaluated}
    size = (run.config.model.image_size,) * 2

    def batches():
        for start in range(0, len(clips["frames"]), batch_size):
            batch = rollout_batch(clips, start, start + batch_size, size, masks_of, ground_truth)
            yield batch, {name: generate(batch) for name, generate in generators.items()}

    return evaluated, batches()


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
        run: a `runs.RestoredRun`.
        steps: generated frames per clip.
        num_clips: test clips; defaults to the run's `--num_test_clips`.
        batch_size: clips rolled out together.
        gif_path: if set, `write_rollout_images` writes the first batch there, shown with the
            primary method (`methods.primary`).
        lpips_metric: an `evaluation.lpips.LPIPS`: adds `lpips` per step to every method but
            the reference one.
        video_features: an `evaluation.fvd.VideoFeatures`: adds `fvd` (generated rollouts
            against the true clips, `fvd.PROTOCOL` with T = `steps` frames) to those methods,
            and `fvd_protocol` to the results. Needs at least 2 clips.
        convlstm: a trained `ConvLSTMPredictor` (`runs.restore_convlstm`) at the run's frame
            size: adds the method `"convlstm"`.
        convlstm_controls: steer it with the true offsets (it was trained with them);
            otherwise, or on data without them, with zeros.

    Returns:
        A dict with `"checkpoint"`, `"steps"` (where the test clips are shorter, what they
        allow, and the `"steps_asked"`), `"clips"`,
        `"ground_truth"` (offsets and masks)
        and one entry per evaluated method of `methods.names()`, each holding `<metric>` (mean)
        and `<metric>_per_step` for `ROLLOUT_METRICS` (`lost`: fraction of frames whose mask
        is empty). Without ground truth (real video) only the methods that need none.
    """
    longest = datasets.source(run.config).longest_test_clip()
    asked = steps
    if longest is not None and longest < steps + 1:
        steps = longest - 1
        logging.warning(
            "The test clips have at most %d frames: rolling out %d steps, not %d.",
            longest,
            steps,
            asked,
        )
    clips = load_test_clips(run.config, num_clips, steps + 1)
    num_clips = len(clips["frames"])
    ground_truth = has_ground_truth(clips)
    logging.info(
        "Rolling out %d steps from %d test clips with %s.", steps, num_clips, run.checkpoint
    )
    masks_of = binary_masks(run.mask_generator)
    evaluated, batches = method_rollouts(
        run, clips, masks_of, convlstm, convlstm_controls, batch_size
    )
    scores = _Scores(evaluated, masks_of, lpips_metric, video_features)
    for index, (batch, generated) in enumerate(batches):
        scores.add(generated, batch)
        if gif_path and index == 0:
            write_rollout_images(gif_path, batch, generated[methods.primary(generated)], steps)
    results = {
        "checkpoint": run.checkpoint,
        "steps": steps,
        "clips": num_clips,
        "ground_truth": ground_truth,
    }
    if asked != steps:
        results["steps_asked"] = asked
    results.update(scores.summary(steps, num_clips))
    return results


def _shortened(results):
    """What the table's title says when the clips allowed fewer steps than asked."""
    asked = results.get("steps_asked", results["steps"])
    if asked == results["steps"]:
        return ""
    return f"; {asked} asked, the test clips have {results['steps'] + 1} frames"


def format_rollout_table(results):
    """The rollout results: averages per method, then per step the primary method beside
    copy-first-frame."""
    width = 14
    evaluated = [methods.get(name) for name in methods.names() if name in results]
    columns = [method for method in evaluated if not method.reference]
    per_step = METRIC_LABELS[:3]
    head = f"{'':<22}" + "".join(f"{method.column:>{width}}" for method in columns)
    lines = [
        f"Controlled rollouts, test split: {results['clips']} clips x "
        f"{results['steps']} steps (controls / mask mode)" + _shortened(results),
        head,
        "-" * len(head),
    ]
    for name, label, fmt in (*per_step, ("lost", "object lost (frac.)", "{:.3f}")):
        cells = "".join(f"{fmt.format(results[method.name][name]):>{width}}" for method in columns)
        lines.append(f"{label:<22}{cells}")
    for reference in (method for method in evaluated if method.reference):
        floor = results[reference.name]["control_error"]
        lines.append(f"control error of {reference.label}: {floor:.2f} px")
    if not results["ground_truth"]:
        lines.append(
            "no ground truth: controls fitted from M's masks of the true frames, control error "
            "against M's centroids on them"
        )
    model = methods.primary(results)
    lines += ["", f"per step: {methods.label(model)} / copy-first-frame"]
    lines.append(f"{'step':<6}" + "".join(f"{label:>20}" for _, label, _ in per_step))
    for k in range(results["steps"]):
        cells = []
        for name, _, fmt in per_step:
            pair = [fmt.format(results[m][f"{name}_per_step"][k]) for m in (model, "copy_first")]
            cells.append(f"{' / '.join(pair):>20}")
        lines.append(f"{k + 1:<6}" + "".join(cells))
    return "\n".join(lines)
