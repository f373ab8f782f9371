"""Deployment figures: per-frame latency of the SavedModel and the TFLite files, their sizes, and
what each TFLite quantisation costs against the Keras model.

    python benchmarks/deploy.py --flagfile=configs/synthetic.flags --phase=2
    python benchmarks/deploy.py --flagfile=configs/synthetic.flags --phase=2 \
        --model_dir=runs/synthetic/phase2 --parity_clips=64

Latency, per size in `--sizes`, with the networks the flags describe and fresh weights (speed
does not depend on them):
- SavedModel `step` (one call per frame) and `generate` (one call of `--rollout_steps` frames,
  divided by them), loaded with `tf.saved_model.load`, inputs at the model's size, the run's
  `--precision`.
- The TFLite step model per quantisation, driven by `export.litert.run_loop` through LiteRT with
  XNNPACK, with each of `--threads`; the first step (which runs the mask network) is left out.
Each figure is the median of `--repeats` timed calls (SavedModel) or of all steps of
`--repeats` loops (TFLite), after one untimed call.

With `--model_dir` (a trained run of train.py): parity over rollouts of `--rollout_steps` steps
from `--parity_clips` test clips of the run's data, each TFLite file against the Keras step model
in float32 (the function the files are converted from, driven the same way): max and mean
absolute difference of the frames in grey levels (0-255), and the PSNR of each against the true
frames when the data has ground-truth offsets (synthetic). For reference, the same for the Keras
rollout of `evaluate` (the run's precision, the first mask moved by the composed sub-pixel
controls).
"""

# Before TensorFlow: fgbg_keras turns its oneDNN kernels on (fgbg_keras/__init__.py).
import fgbg_keras  # noqa: F401  # isort: skip

import os
import statistics
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from data_pipelines.preprocess import preprocess_frames
from export import serving, step_model
from export.litert import StepModel, median_step_ms, run_loop
from export.step_model import QUANTIZATIONS
from fgbg_keras import flags as fgbg_flags
from fgbg_keras import mask_ops, metrics, rollout, runs
from fgbg_keras.evaluation.pairs import load_test_clips
from fgbg_keras.models import generators
from fgbg_keras.models.factory import build_networks
from fgbg_keras.training import loop, phases

FLAGS = flags.FLAGS


def define_flags():
    # train.py's flags: --phase and the networks a flagfile describes, --model_dir for parity.
    fgbg_flags.define_train_flags()
    flags.adopt_module_key_flags(fgbg_flags)
    flags.DEFINE_list("sizes", ["64", "128"], "Frame sizes to time.")
    flags.DEFINE_list("threads", ["1", "2"], "LiteRT interpreter threads to time.")
    flags.DEFINE_integer(
        "rollout_steps", 30, "Frames per generate call, TFLite loop and parity rollout."
    )
    flags.DEFINE_integer("repeats", 5, "Timed calls (SavedModel) or loops (TFLite) per row.")
    flags.DEFINE_integer("parity_clips", 64, "Test clips for the parity rollouts.")


LABELS = {
    "keras": "Keras step, float32 (the reference)",
    "evaluate": "Keras rollout as `evaluate` runs it (run's precision, sub-pixel controls)",
}


def median_seconds(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def saved_model_latency(run, folder):
    """Milliseconds per frame of the `step` and `generate` signatures of `run`'s SavedModel."""
    serving.export(run, folder)
    model = tf.saved_model.load(folder)
    size = run.config.model.image_size
    rng = np.random.default_rng(0)
    image = tf.constant(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    mask = model.signatures["mask"](image=image)["mask"]
    control = tf.constant([1.0, 0.0])
    controls = tf.ones([FLAGS.rollout_steps, 2])

    def step():
        model.signatures["step"](frame=image, mask=mask, control=control)["frame"].numpy()

    def generate():
        model.signatures["generate"](image=image, controls=controls)["frames"].numpy()

    return {
        "step": 1000 * median_seconds(step, FLAGS.repeats),
        "generate": 1000 * median_seconds(generate, FLAGS.repeats) / FLAGS.rollout_steps,
    }


def latency_table(config, phase):
    lines = [
        f"Latency per frame, batch 1, {os.cpu_count()} CPUs; SavedModel in "
        f"{config.train.precision}, {FLAGS.rollout_steps} frames per generate call.",
        "| size | SavedModel step (ms) | SavedModel generate (ms/frame) | TFLite | file (MiB) | "
        + " | ".join(f"{t} thread{'s' * (t != '1')} (ms)" for t in FLAGS.threads)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(FLAGS.threads),
    ]
    for size in FLAGS.sizes:
        config.model.image_size = int(size)
        with tempfile.TemporaryDirectory() as folder:
            saved = saved_model_latency(
                runs.fresh_run(config, phase, config.train.precision), folder
            )
        run = runs.fresh_run(config, phase, "float32")
        for index, quantize in enumerate(QUANTIZATIONS):
            content, _ = step_model.convert(run, quantize)
            times = [
                median_step_ms(content, int(t), FLAGS.rollout_steps, FLAGS.repeats)
                for t in FLAGS.threads
            ]
            first = [size, f"{saved['step']:.1f}", f"{saved['generate']:.1f}"]
            cells = first if index == 0 else ["", "", ""]
            cells += [quantize, f"{len(content) / 2**20:.1f}"] + [f"{t:.1f}" for t in times]
            lines.append("| " + " | ".join(cells) + " |")
        logging.info("Timed %sx%s.", size, size)
    return lines


class KerasStep:
    """The Keras step `tf.function` of `export.step_model.convert` with `StepModel`'s call, so
    that `export.litert.run_loop` drives both the same way."""

    def __init__(self, step):
        self.step = step

    def __call__(self, frame, mask, control):
        out = self.step(tf.constant(frame), tf.constant(mask), tf.constant(control))
        return out["frame"].numpy(), out["mask"].numpy()


def parity_table(model_dir):
    """Per quantisation, the TFLite rollouts against the Keras float32 step model's."""
    run = runs.restore_networks(model_dir, precision="float32")
    size = run.config.model.image_size
    clips = load_test_clips(run.config, FLAGS.parity_clips, FLAGS.rollout_steps + 1)
    frames = np.asarray(preprocess_frames(clips["frames"], size))
    truth = "offsets" in clips
    if truth:
        scale = np.asarray(mask_ops.resize_scale(clips["frames"].shape[2:4], (size, size)))
        offsets = clips["offsets"] * scale
    else:  # parameterized control: the translations of M's masks of the true frames
        masks = mask_ops.binarize(run.mask_generator(tf.reshape(frames, [-1, size, size, 3])))
        masks = tf.reshape(masks, [*frames.shape[:2], size, size, 1])
        offsets = np.asarray(mask_ops.clip_translations(masks))

    models = {}
    for quantize in QUANTIZATIONS:
        content, step = step_model.convert(run, quantize)
        models[quantize] = StepModel(content)
    models["keras"] = KerasStep(step)
    frames_of = {name: [] for name in ("keras", *QUANTIZATIONS)}
    masks_of = {name: [] for name in frames_of}
    for clip, clip_offsets in zip(frames, offsets):
        for name, model in models.items():
            result = run_loop(model, clip[None, 0], clip_offsets)
            frames_of[name].append(result["frames"][None])
            masks_of[name].append(result["masks"][None])
    # The model as evaluate runs it: the run's precision, the first mask moved by the composed
    # (sub-pixel) controls.
    trained = runs.restore_networks(model_dir)
    rollout_fn = rollout.make_rollout_fn(trained.mask_generator, trained.frame_generator)
    controls = mask_ops.translation_controls(tf.constant(offsets, tf.float32))
    for start in range(0, len(frames), 16):
        out = rollout_fn(frames[start : start + 16, 0], controls[start : start + 16])
        frames_of.setdefault("evaluate", []).append(out["frames"].numpy())
        masks_of.setdefault("evaluate", []).append(out["masks"].numpy())
    # [clips, T, S, S, C] each
    frames_of = {name: np.concatenate(parts) for name, parts in frames_of.items()}
    masks_of = {name: np.concatenate(parts) for name, parts in masks_of.items()}
    true = frames[:, 1:]

    def psnr(generated):
        flat = tf.reshape(generated, [-1, size, size, 3])
        return float(tf.reduce_mean(metrics.psnr(flat, tf.reshape(true, flat.shape))))

    lines = [
        f"Parity, {len(frames)} test clips x {FLAGS.rollout_steps} steps of {run.checkpoint} "
        f"({size}x{size}), each driven by the same whole-pixel controls "
        f"({'true offsets' if truth else 'fitted from M on the true frames'}).",
        "| model | max abs diff vs Keras (grey levels) | mean abs diff (grey levels) | "
        "mask pixels unlike Keras' (%) | PSNR vs true frames (dB) |",
        "|---|---|---|---|---|",
    ]
    for name, generated in frames_of.items():
        diff = np.abs(generated - frames_of["keras"]) * 127.5
        unlike = 100 * np.mean((masks_of[name] > 0.5) != (masks_of["keras"] > 0.5))
        label = LABELS.get(name, f"TFLite {name}")
        cells = [label, f"{diff.max():.2f}", f"{diff.mean():.3f}", f"{unlike:.4f}"]
        cells.append(f"{psnr(generated):.2f}" if truth else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv):
    del argv
    try:
        config = fgbg_flags.config_from_flags()
        phase = phases.get(FLAGS.phase)
        if not phase.fgbg_networks:
            raise ValueError(f"--phase={FLAGS.phase}: the export benchmark times phase 1 or 2.")
        for size in FLAGS.sizes:
            config.model.image_size = int(size)
            phase.validate(config)
            # Checks the size suits them, and that the one-step exports it times exist.
            _, frame_generator = build_networks(config.model, phase.moving_masks)
            generators.check_memoryless(frame_generator, "The one-step model this benchmark times")
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    loop.setup_runtime(config)
    lines = latency_table(config, phase)
    sys.stdout.write("\n".join(lines) + "\n")
    if FLAGS.model_dir:
        try:
            table = parity_table(FLAGS.model_dir)
        except ValueError as error:  # e.g. a run whose generator has no one-step model
            raise app.UsageError(str(error)) from None
        sys.stdout.write("\n" + "\n".join(table) + "\n")


if __name__ == "__main__":
    define_flags()
    app.run(main)
