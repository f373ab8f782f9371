"""The command-line flags of fgbg, defined by functions that the entry points call.

    from fgbg_keras import flags as fgbg_flags
    fgbg_flags.define_train_flags()          # train.py; then config_from_flags()

Each field of the config sections (`fgbg_keras.config`) is one flag of the same name, with the help
text and choices written beside the field; the other flags are defined here with theirs. Entry
points call the `define_*` function of their command before `app.run` and read `absl.flags.FLAGS`
in their `main`; outside this module, no library module reads them.
"""

import dataclasses
import json
import os

from absl import flags

from fgbg_keras import hardware
from fgbg_keras.config import SECTIONS, RunConfig
from fgbg_keras.evaluation.evaluator import REPORT_NAME, ROLLOUT_GIF
from fgbg_keras.evaluation.rollouts import ROLLOUT_STEPS
from fgbg_keras.rollout import DEFAULT_MASK_MODE, MASK_MODES
from fgbg_keras.training import phases

FLAGS = flags.FLAGS


def _kind(field):
    """The flag type of a config field: bool, int, float, tuple (a list flag) or str."""
    kinds = {bool: "bool", int: "int", float: "float", tuple: "tuple", str: "str"}
    return kinds.get(field.type, field.type)


def define_config_flags():
    """One flag per field of every config section (`fgbg_keras.config.SECTIONS`)."""
    for section in SECTIONS.values():
        for field in dataclasses.fields(section):
            help_text, choices = field.metadata["help"], field.metadata["choices"]
            kind = _kind(field)
            if kind == "bool":
                flags.DEFINE_bool(field.name, field.default, help_text)
            elif kind == "int":
                flags.DEFINE_integer(field.name, field.default, help_text)
            elif kind == "float":
                flags.DEFINE_float(field.name, field.default, help_text)
            elif kind == "tuple":
                flags.DEFINE_list(field.name, [str(v) for v in field.default], help_text)
            elif choices is not None:
                flags.DEFINE_enum(field.name, field.default, list(choices), help_text)
            else:
                flags.DEFINE_string(field.name, field.default, help_text)


def define_model_dir_flag(help_text="The run directory of train.py."):
    flags.DEFINE_string("model_dir", None, help_text)


def define_export_flags(output_help):
    """`--model_dir` and `--output`, both required: what every export command reads and writes."""
    define_model_dir_flag()
    flags.DEFINE_string("output", None, output_help)
    flags.mark_flags_as_required(["model_dir", "output"])


def define_train_flags():
    """The flags of train.py: `--phase`, `--init_from`, `--model_dir`, `--evaluate` and every
    config field."""
    flags.DEFINE_enum(
        "phase",
        "1",
        list(phases.names()),
        " ".join(phases.get(name).help for name in phases.names()),
    )
    flags.DEFINE_string(
        "init_from",
        None,
        "Phase 2: the --model_dir of a finished Phase 1 run with the same network flags; its "
        "mask network and frame generator start this run.",
    )
    define_model_dir_flag(
        "Directory for checkpoints, TensorBoard logs and flags.json. Re-running with the same "
        "directory resumes."
    )
    flags.DEFINE_bool(
        "evaluate",
        True,
        "Evaluate on the test split of --data after training, print the table and write it to "
        f"<model_dir>/{REPORT_NAME}; after Phase 2 also the {ROLLOUT_STEPS}-step controlled "
        f"rollouts and <model_dir>/{ROLLOUT_GIF}.",
    )
    define_config_flags()


def config_from_flags():
    """The `RunConfig` the parsed flags describe (not yet validated), with `--precision=auto`
    decided for this machine.

    Raises:
        ValueError: naming a list flag whose entries are not integers.
    """
    config = RunConfig()
    for section, field in config.fields():
        value = FLAGS[field.name].value
        if _kind(field) == "tuple":
            try:
                value = tuple(int(v) for v in value)
            except ValueError:
                raise ValueError(
                    f"--{field.name}={','.join(value)}: must be comma-separated integers"
                ) from None
        setattr(section, field.name, value)
    config.train.precision = hardware.resolve_precision(config.train.precision)
    return config


def write_flags(model_dir):
    """Writes every flag defined here, resolved, to `<model_dir>/flags.json`."""
    ours = {f.name: f.value for f in FLAGS.get_flags_for_module(__name__)}
    with open(os.path.join(model_dir, "flags.json"), "w") as f:
        json.dump(ours, f, indent=2, sort_keys=True)


def define_evaluate_flags():
    """The flags of `python -m fgbg_keras.evaluate`."""
    define_model_dir_flag()
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
        f"A .json file for the results (default: <model_dir>/{REPORT_NAME}), or a folder for "
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
        "fgbg_keras/evaluation/lpips.py. Without it LPIPS is not computed.",
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


def define_trajectory_flag(default=None):
    flags.DEFINE_string(
        "trajectory",
        default,
        'Offsets "dx,dy;dx,dy;..." in pixels of the image, one per step; the last repeats.',
    )


def define_display_flags(scale):
    """`--overlay` and `--scale`, for commands that write frames."""
    flags.DEFINE_bool("overlay", False, "Tint each frame by its mask.")
    flags.DEFINE_integer("scale", scale, "Nearest-neighbour upscaling of the written frames.")


def define_generate_flags():
    """The flags of `python -m fgbg_keras.generate`."""
    define_model_dir_flag()
    flags.DEFINE_string("image", None, "The first frame: an image file of any size.")
    define_trajectory_flag()
    flags.DEFINE_string(
        "affine_file",
        None,
        'A text file with one control "a11 a12 tx a21 a22 ty" per line (translation in '
        "input-image pixels); the last repeats. Instead of --trajectory.",
    )
    flags.DEFINE_integer("steps", 30, "Frames to generate.")
    flags.DEFINE_string("output", None, "Output file: .gif, .mp4 or .png (a strip of frames).")
    flags.DEFINE_enum(
        "mask_mode",
        DEFAULT_MASK_MODE,
        list(MASK_MODES),
        "carry: move the first mask by the controls; reestimate: re-run the mask network on "
        "each generated frame.",
    )
    define_display_flags(scale=1)
    flags.mark_flags_as_required(["model_dir", "image", "output"])


def define_ablate_flags():
    """The flags of `python -m fgbg_keras.ablate`: train.py's, so that its flag files work, and
    the grid's own."""
    define_train_flags()
    flags.DEFINE_float("budget_minutes", 2.0, "Training time per run, at the defaults' speed.")
    flags.DEFINE_integer("seeds", 2, "Seeds per row: 0, 1, ...")
    flags.DEFINE_list("seeds_list", [], "Explicit seeds per row instead of --seeds.")
    flags.DEFINE_string("output", "runs/ablation", "Folder for the runs and the table.")
    flags.DEFINE_integer(
        "ablation_rollout_steps", 8, "Steps of the controlled rollouts per run (0: none)."
    )
