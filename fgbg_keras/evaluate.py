"""Evaluates a run of either phase on the test split of its data (`--data`).

    python -m fgbg_keras.evaluate --model_dir=runs/synthetic/phase2 [--output=eval.json]
    python -m fgbg_keras.evaluate --model_dir=runs/synthetic/phase2 --output=reports/synthetic \
        [--convlstm_dir=runs/synthetic/convlstm] [--lpips_backbone=... --lpips_linear=...] \
        [--fvd_model=...]

One-step figures for both phases (`fgbg_keras.evaluation.pairs`): mask IoU against the ground
truth, PSNR and SSIM of the predicted next frame, beside the frame-difference map and
copy-last-frame. Controlled rollouts for Phase II runs, or any run with `--rollout_steps`,
`--convlstm_dir`, or the LPIPS or FVD flags (`fgbg_keras.evaluation.rollouts`): the model
steered by the true offsets (mask carried or re-estimated) and by the "parameterized control"
fitted from M's masks of the true frames, beside the baselines and the measurement floor of
`fgbg_keras.evaluation.methods`, per step and on average. `--output=FOLDER` writes the report
(`fgbg_keras.evaluation.report`).
"""

import sys

from absl import app, flags

from fgbg_keras import flags as fgbg_flags
from fgbg_keras.evaluation import evaluator

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        lpips_metric, video_features = evaluator.feature_metrics(
            FLAGS.lpips_network, FLAGS.lpips_backbone, FLAGS.lpips_linear, FLAGS.fvd_model
        )
        text = evaluator.evaluate_and_report(
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
    fgbg_flags.define_evaluate_flags()
    flags.adopt_module_key_flags(fgbg_flags)
    flags.mark_flag_as_required("model_dir")
    app.run(main)
