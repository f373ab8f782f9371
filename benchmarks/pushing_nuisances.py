"""What each real-video nuisance of the pushing set costs a trained run, one turned off at a time.

    python benchmarks/pushing_nuisances.py --model_dir=runs/pushing/phase1
    python benchmarks/pushing_nuisances.py --model_dir=runs/pushing/phase2 --num_clips=32

Evaluates the run's latest checkpoint (`evaluation.pairs`) on the pushing test split rendered as
the run was trained (every nuisance as its config says), then with each nuisance of
`pushing.NUISANCES` off in turn, then with all of them off. Prints, per row, the mask IoU of M
and of the change map d against the moving foreground and against the arm alone, and the
next-frame PSNR beside copy-last-frame's. The figures measure the run as it was trained; they
say what each nuisance costs at test time, not what training without it would give.
"""

import dataclasses

from absl import app, flags

from data_pipelines import pushing
from fgbg_keras import flags as fgbg_flags
from fgbg_keras import runs
from fgbg_keras.evaluation import pairs

FLAGS = flags.FLAGS


def define_flags():
    fgbg_flags.define_model_dir_flag("A run trained with --data=pushing.")
    flags.adopt_module_key_flags(fgbg_flags)
    flags.mark_flag_as_required("model_dir")
    flags.DEFINE_integer("num_clips", None, "Test clips per row (default the run's).")


COLUMNS = (
    ("mask_iou", "M IoU", "{:.3f}"),
    ("diff_mask_iou", "d IoU", "{:.3f}"),
    ("agent_mask_iou", "M IoU arm", "{:.3f}"),
    ("agent_diff_mask_iou", "d IoU arm", "{:.3f}"),
    ("psnr", "PSNR", "{:.2f}"),
    ("copy_last_psnr", "copy-last", "{:.2f}"),
)


def variants(options):
    """`(label, PushingOptions)`: as trained, each nuisance off in turn, all off."""
    off = options.nuisances_off()
    rows = [("as trained", options)]
    for name in pushing.NUISANCES:
        if getattr(options, name) != getattr(off, name):
            rows.append((f"{name} off", dataclasses.replace(options, **{name: getattr(off, name)})))
    rows.append(("all off", off))
    return rows


def main(argv):
    del argv
    run = runs.restore_networks(FLAGS.model_dir)
    if run.config.train.data != "pushing":
        raise app.UsageError(f"--model_dir={FLAGS.model_dir!r} was not trained on --data=pushing.")
    trained = run.config.pushing.options()
    head = f"{'test data':<16}" + "".join(f"{label:>11}" for _, label, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for label, options in variants(trained):
        for name, flag in pushing.PushingOptions.flag_names().items():
            setattr(run.config.pushing, flag, getattr(options, name))
        results = pairs.evaluate_pairs(run, num_clips=FLAGS.num_clips)
        cells = "".join(f"{fmt.format(results[key]):>11}" for key, _, fmt in COLUMNS)
        lines.append(f"{label:<16}{cells}")
        print(lines[-1], flush=True)
    print(f"\n{run.checkpoint}, {results['pairs']} pairs per row\n" + "\n".join(lines))


if __name__ == "__main__":
    define_flags()
    app.run(main)
