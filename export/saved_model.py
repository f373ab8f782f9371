r"""Exports a trained run as a SavedModel for TF Serving.

    python -m export.saved_model --model_dir=runs/synthetic/phase2 --output=exports/fgbg/1

Signatures `generate` (also `serving_default`), `generate_encoded`, `mask` and `step`; see
`export.serving`.
"""

import sys

from absl import app, flags

from export import serving
from fgbg_keras import flags as fgbg_flags
from fgbg_keras import runs

FLAGS = flags.FLAGS


def define_flags():
    """This command's flags."""
    fgbg_flags.define_export_flags("The SavedModel directory, e.g. exports/fgbg/1.")
    flags.adopt_module_key_flags(fgbg_flags)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        run = runs.restore_networks(FLAGS.model_dir)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    module = serving.export(run, FLAGS.output)
    names = [name for name in module.signatures() if name != "serving_default"]
    sys.stdout.write(
        f"Exported {run.checkpoint} (Phase {run.phase}, {run.config.model.image_size}x"
        f"{run.config.model.image_size}) to {FLAGS.output}: signatures {names[0]} "
        f"(serving_default), {', '.join(names[1:])}.\n"
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
