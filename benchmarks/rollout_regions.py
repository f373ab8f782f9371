"""Where a run's controlled rollouts err: inside the moving region, or in the rest of the frame.

    python benchmarks/rollout_regions.py --model_dir=runs/pushing/phase2 \
        --convlstm_dir=runs/pushing/convlstm --num_clips=32

Rolls out the run's test clips as `fgbg_keras.evaluate` does (every method of
`evaluation.methods` that the data allows, the ConvLSTM with `--convlstm_dir`), and splits each
generated frame's squared error, in [0, 1] units, between the moving region and the rest. The
moving region of step t is the true foreground of frame 0 or of frame t, dilated by
`--dilate` pixels: every pixel where the mover was or is. Prints, per method and for the chosen
steps, the mean squared error of the whole frame and the parts of it that fall inside and
outside the region (the two add up to the whole). Needs data with true masks (the pushing set,
the synthetic set).
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


def moving_region(masks, pixels):
    """The region of each step, `[B, T, H, W, 1]`, of true masks `[B, T + 1, H, W, 1]`: where
    the mover is in frame 0 or in frame t, dilated by `pixels`."""
    masks = np.asarray(masks, np.float32)
    region = np.maximum(masks[:, 1:], masks[:, :1])
    flat = region.reshape(-1, *region.shape[2:])
    return np.asarray(mask_ops.dilate_masks(flat, pixels)).reshape(region.shape)


def split_error(generated, truth, region):
    """Per step `[T]`: the squared error of the frames `[B, T, H, W, 3]` in [-1, 1] over the
    whole frame, split into its parts inside and outside `region` (each a mean over the whole
    frame, so that the two add up)."""
    squared = np.mean(((np.asarray(generated) - np.asarray(truth)) / 2.0) ** 2, -1, keepdims=True)
    inside = np.mean(squared * region, axis=(2, 3, 4))
    outside = np.mean(squared * (1.0 - region), axis=(2, 3, 4))
    return inside.mean(0), outside.mean(0)


def main(argv):
    del argv
    run = runs.restore_networks(FLAGS.model_dir)
    convlstm, convlstm_controls = None, False
    if FLAGS.convlstm_dir:
        convlstm, convlstm_controls = evaluator.convlstm_baseline(FLAGS.convlstm_dir, run)
    clips = load_test_clips(run.config, FLAGS.num_clips, FLAGS.steps + 1)
    if "masks" not in clips or "offsets" not in clips:
        raise app.UsageError(f"--model_dir={FLAGS.model_dir!r}: its test data has no true masks.")
    evaluated, batches = rollouts.rolled_out(run, clips, convlstm, convlstm_controls)
    parts = {m.name: [] for m in evaluated if not m.reference}
    areas = []
    num_clips = len(clips["frames"])
    for batch, generated in batches:
        region = moving_region(batch.masks, FLAGS.dilate)
        areas.append(region.mean(axis=(0, 2, 3, 4)) * len(region))
        for name in parts:
            inside, outside = split_error(generated[name]["frames"], batch.truth, region)
            parts[name].append((inside * len(region), outside * len(region)))
    shown = [int(s) - 1 for s in FLAGS.show_steps if 0 < int(s) <= FLAGS.steps]
    area = np.sum(areas, 0) / num_clips
    print(
        f"{run.checkpoint}, {num_clips} test clips; MSE x 1e3 ([0, 1] units) at steps "
        f"{', '.join(str(s + 1) for s in shown)}: whole frame = moving region + rest"
    )
    print("moving region's area:", " ".join(f"{area[s]:.3f}" for s in shown))
    for name, values in parts.items():
        inside = sum(v[0] for v in values) / num_clips
        outside = sum(v[1] for v in values) / num_clips
        cells = "  ".join(
            f"{1e3 * (inside[s] + outside[s]):.2f} = {1e3 * inside[s]:.2f} + {1e3 * outside[s]:.2f}"
            for s in shown
        )
        print(f"{methods.get(name).column:<14}{cells}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
