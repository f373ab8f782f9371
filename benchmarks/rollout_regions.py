"""Where a run's controlled rollouts err: inside the moving region, or in the rest of the frame.

    python benchmarks/rollout_regions.py --model_dir=runs/pushing/phase2 \
        --convlstm_dir=runs/pushing/convlstm --num_clips=32 [--split=model]

Rolls out the run's test clips as `fgbg_keras.evaluate` does (every method of
`evaluation.methods` that the data allows, the ConvLSTM with `--convlstm_dir`), and splits each
generated frame's squared error, in [0, 1] units, between parts of the frame. Each part's error
is a mean over the whole frame, so that the parts add up to the whole. `--split`:
- `truth` (the default): the moving region and the rest. The moving region of step t is the
  true foreground of frame 0 or of frame t, dilated by `--dilate` pixels: every pixel where
  the mover was or is.
- `model`: four parts, from the run's own rollout with the true controls (mask carried): its
  target mask at the step; the rest of the region its generator may change (the union of the
  step's two masks, dilated by the run's `--unet_region_margin`); the true moving region
  outside that; the rest of the frame.
Prints, per method and for the chosen steps, the error of the whole frame and of each part,
and the slope of M's mask steps on the true steps (what the true controls leave out when they
move M's mask). Needs data with true masks (the pushing set, the synthetic set).
"""

import numpy as np
from absl import app, flags

from fgbg_keras import flags as fgbg_flags
from fgbg_keras import mask_ops, runs
from fgbg_keras.evaluation import evaluator, methods, rollouts
from fgbg_keras.evaluation.pairs import load_test_clips

FLAGS = flags.FLAGS


def define_flags():
    fgbg_flags.define_model_dir_flag("A run trained on data with true masks.")
    flags.adopt_module_key_flags(fgbg_flags)
    flags.mark_flag_as_required("model_dir")
    flags.DEFINE_string("convlstm_dir", None, "A ConvLSTM baseline run to add, as evaluate does.")
    flags.DEFINE_integer("num_clips", 32, "Test clips.")
    flags.DEFINE_integer("steps", rollouts.ROLLOUT_STEPS, "Steps per rollout.")
    flags.DEFINE_list("show_steps", ["1", "4", "8", "16"], "The steps (1-based) to print.")
    flags.DEFINE_integer("dilate", 2, "Pixels by which the moving region is dilated.")
    flags.DEFINE_enum("split", "truth", ["truth", "model"], "The parts (see the module's doc).")


def moving_region(masks, pixels):
    """The region of each step, `[B, T, H, W, 1]`, of true masks `[B, T + 1, H, W, 1]`: where
    the mover is in frame 0 or in frame t, dilated by `pixels`."""
    masks = np.asarray(masks, np.float32)
    region = np.maximum(masks[:, 1:], masks[:, :1])
    flat = region.reshape(-1, *region.shape[2:])
    return np.asarray(mask_ops.dilate_masks(flat, pixels)).reshape(region.shape)


def part_errors(generated, truth, parts):
    """Per part, per step `[T]`: the squared error of the frames `[B, T, H, W, 3]` in [-1, 1]
    within each of `parts` (masks `[B, T, H, W, 1]` that partition the frame), as a mean over
    the whole frame and the clips."""
    squared = np.mean(((np.asarray(generated) - np.asarray(truth)) / 2.0) ** 2, -1, keepdims=True)
    return [np.mean(squared * part, axis=(2, 3, 4)).mean(0) for part in parts]


def model_parts(rolled, true_region, margin):
    """The four parts of `--split=model` (see the module's doc), from the run's own rollout
    `rolled` (`rollout.rollout`'s dict) and the true moving region `[B, T, H, W, 1]`."""
    targets = np.asarray(rolled["masks"])
    previous = np.concatenate([np.asarray(rolled["initial_mask"])[:, None], targets[:, :-1]], 1)
    union = np.maximum(previous, targets)
    flat = union.reshape(-1, *union.shape[2:])
    region = np.asarray(mask_ops.dilate_masks(flat, margin)).reshape(union.shape)
    outside = np.clip(true_region - region, 0.0, 1.0)
    return {
        "target mask": targets,
        "rest of G's region": region - targets,
        "mover outside it": outside,
        "rest of the frame": 1.0 - region - outside,
    }


def control_slope(batches):
    """Per axis, the least-squares slope (through 0) of M's mask steps on the true steps, and
    their correlation, over `(fitted controls, offsets)` pairs of batches (the batches'
    parameterized controls hold M's mask steps)."""
    fitted = np.concatenate([np.asarray(c)[..., 2] for c, _ in batches])
    true = np.concatenate([np.asarray(o) for _, o in batches])
    fitted, true = fitted.reshape(-1, 2), true.reshape(-1, 2)
    slope = (fitted * true).sum(0) / np.maximum((true**2).sum(0), 1e-12)
    correlation = [np.corrcoef(fitted[:, i], true[:, i])[0, 1] for i in range(2)]
    return slope, correlation


def main(argv):
    del argv
    run = runs.restore_networks(FLAGS.model_dir)
    convlstm, convlstm_controls = None, False
    if FLAGS.convlstm_dir:
        convlstm, convlstm_controls = evaluator.convlstm_baseline(FLAGS.convlstm_dir, run)
    clips = load_test_clips(run.config, FLAGS.num_clips, FLAGS.steps + 1)
    if "masks" not in clips or "offsets" not in clips:
        raise app.UsageError(f"--model_dir={FLAGS.model_dir!r}: its test data has no true masks.")
    masks_of = rollouts.binary_masks(run.mask_generator)
    evaluated, batches = rollouts.method_rollouts(run, clips, masks_of, convlstm, convlstm_controls)
    errors = {m.name: [] for m in evaluated if not m.reference}
    areas, steps_seen = [], []
    margin = run.config.model.unet_region_margin
    for batch, generated in batches:
        true_region = moving_region(batch.masks, FLAGS.dilate)
        if FLAGS.split == "truth":
            parts = {"moving region": true_region, "rest": 1.0 - true_region}
        else:
            parts = model_parts(generated["true_carry"], true_region, margin)
        weight = len(true_region)
        areas.append({k: v.mean(axis=(0, 2, 3, 4)) * weight for k, v in parts.items()})
        for name in errors:
            found = part_errors(generated[name]["frames"], batch.truth, list(parts.values()))
            errors[name].append([e * weight for e in found])
        steps_seen.append((batch.controls["fitted"], batch.offsets))
    num_clips = len(clips["frames"])
    names = list(areas[0])
    shown = [int(s) - 1 for s in FLAGS.show_steps if 0 < int(s) <= FLAGS.steps]
    print(
        f"{run.checkpoint}, {num_clips} test clips; MSE x 1e3 ([0, 1] units) at steps "
        f"{', '.join(str(s + 1) for s in shown)}: whole frame = {' + '.join(names)}"
    )
    for part in names:
        area = sum(a[part] for a in areas) / num_clips
        print(f"area of {part}:", " ".join(f"{area[s]:.3f}" for s in shown))
    for name, values in errors.items():
        per_part = [sum(v[i] for v in values) / num_clips for i in range(len(names))]
        cells = "  ".join(
            f"{1e3 * sum(p[s] for p in per_part):.2f} = "
            + " + ".join(f"{1e3 * p[s]:.2f}" for p in per_part)
            for s in shown
        )
        print(f"{methods.get(name).column:<14}{cells}")
    slope, correlation = control_slope(steps_seen)
    print(
        f"M's mask steps on the true steps: slope x {slope[0]:.2f} "
        f"(correlation {correlation[0]:.2f}), y {slope[1]:.2f} ({correlation[1]:.2f})"
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
