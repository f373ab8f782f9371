r"""Trains and evaluates the ablation grid of METHOD.md at a fixed budget per run.

    python -m fgbg_keras.ablate --flagfile=configs/synthetic.flags --budget_minutes=2 \
        --seeds=2 --output=runs/ablation

Rows, each a change to the flags given (the defaults row changes nothing):
- each mask loss removed: L_bg (`--bg_weight=0`), L_spar (`--spar_schedule=off`), L_bin
  (`--bin_weight=0`);
- every other value of `--bg_mask`, `--spar_schedule` and `--generator`;
- every other value of `--quantize` and `--condition`, with `--generator=vqvae` (they only apply
  to the VQ-VAE).

Every run is Phase I on the flags' `--data`, for the same number of steps: `--budget_minutes`
converted with the measured time of a training step of the defaults (so every row gets the same
steps and the schedules the same horizon: `--spar_target_steps` and `--spar_halve_every` are
scaled with `--train_steps`). Each is evaluated on the test split: mask IoU, next-frame PSNR and
the `--ablation_rollout_steps` controlled rollouts (true controls, mask carried) where there is
ground truth. Writes `<output>/budget.json` (the step count, measured once per folder),
`<output>/<row>/seed<k>/` (a run directory each; finished runs are read back when the command is
run again, unfinished ones resume) and `<output>/ablation.md` / `ablation.json`: mean and spread
(standard deviation) over the seeds per row, the defaults marked.
"""

import copy
import json
import os
import re
import sys
import time

import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from fgbg_keras.losses import BG_MASK_MODES
from fgbg_keras.models.vq_frame_generator import CONDITION_MODES, QUANTIZE_MODES
from fgbg_keras.schedules import SPARSITY_SCHEDULES

GENERATORS = ("unet", "vqvae")
COLUMNS = (
    ("mask_iou", "mask IoU", "{:.3f}"),
    ("psnr", "next-frame PSNR (dB)", "{:.2f}"),
    ("rollout_psnr", "rollout PSNR (dB)", "{:.2f}"),
    ("control_error", "control error (px)", "{:.2f}"),
)


def grid(config):
    """The rows `[(name, {field: value})]` for a `RunConfig` (its values are the defaults)."""
    loss, model = config.loss, config.model
    rows = [
        ("defaults", {}),
        ("no L_bg", {"bg_weight": 0.0}),
        ("no L_spar", {"spar_schedule": "off"}),
        ("no L_bin", {"bin_weight": 0.0}),
    ]
    for field, values, current in (
        ("bg_mask", BG_MASK_MODES, loss.bg_mask),
        ("spar_schedule", tuple(s for s in SPARSITY_SCHEDULES if s != "off"), loss.spar_schedule),
        ("generator", GENERATORS, model.generator),
    ):
        rows += [(f"--{field}={v}", {field: v}) for v in values if v != current]
    vqvae = {} if model.generator == "vqvae" else {"generator": "vqvae"}
    prefix = "" if not vqvae else "--generator=vqvae "
    for field, values, current in (
        ("quantize", QUANTIZE_MODES, model.quantize),
        ("condition", CONDITION_MODES, model.condition),
    ):
        rows += [(f"{prefix}--{field}={v}", {**vqvae, field: v}) for v in values if v != current]
    return rows


def _section(config, field):
    for section in (config.model, config.loss, config.train):
        if hasattr(section, field):
            return section
    raise ValueError(f"Unknown ablation setting {field!r}.")


def row_config(config, changes, train_steps, seed):
    """A copy of `config` with a row's changes, `train_steps` steps (schedules scaled to them,
    checkpoints and images at the end) and `seed`."""
    config = copy.deepcopy(config)
    scale = train_steps / config.train.train_steps
    for field in ("spar_target_steps", "spar_halve_every"):
        setattr(config.loss, field, max(1, round(getattr(config.loss, field) * scale)))
    train = config.train
    train.train_steps = train.checkpoint_every = train.image_every = train_steps
    train.log_every = min(train.log_every, train_steps)
    while train_steps % train.log_every:
        train.log_every -= 1
    train.seed = seed
    for field, value in changes.items():
        setattr(_section(config, field), field, value)
    return config.validate(1)


def budget_steps(config, budget_minutes, measure_steps=10):
    """Training steps that fit `budget_minutes` at the measured speed of `config`'s Phase I."""
    from data_pipelines import pipeline, synthetic
    from fgbg_keras.training import loop

    loop.setup_runtime(config)
    clips = synthetic.make_split("train", 8, loop.synthetic_config(config), seed=0)
    triples = pipeline.triples(
        clips,
        frames_per_clip=config.train.frames_per_clip,
        clips_per_batch=config.train.clips_per_batch,
        seed=0,
        diff_mode=config.loss.diff,
        diff_threshold=config.loss.diff_threshold,
    )
    batches = list(triples.take(2))
    model, _ = loop.build_model_and_optimizer(config, batches[0], phase=1)
    step = tf.function(model.train_step, jit_compile=config.train.jit_compile)
    step(batches[0])  # tracing
    start = time.perf_counter()
    for i in range(measure_steps):
        logs = step(batches[i % 2])
    float(np.asarray(logs["loss"]))
    seconds = (time.perf_counter() - start) / measure_steps
    return max(1, int(budget_minutes * 60 / seconds)), seconds


def _slug(name):
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()


def run_grid(config, budget_minutes, seeds, output, rollout_steps=8, num_clips=None):
    """Trains and evaluates every row for each seed; returns the summary dict written to
    `<output>/ablation.json` (and the table to `ablation.md`)."""
    from fgbg_keras import evaluate
    from fgbg_keras.training import loop

    rows = grid(config)
    # The step count is measured once per output folder, so that finishing an interrupted grid
    # trains every run for as many steps as the first ones.
    budget_path = os.path.join(output, "budget.json")
    budget = {}
    if os.path.exists(budget_path):
        with open(budget_path) as f:
            budget = json.load(f)
    if budget.get("budget_minutes") == budget_minutes:
        steps, seconds = budget["train_steps"], budget["seconds_per_step"]
    else:
        if budget:
            raise ValueError(
                f"--output={output!r} holds a grid of --budget_minutes="
                f"{budget['budget_minutes']}; use that budget or a new --output."
            )
        steps, seconds = budget_steps(config, budget_minutes)
        os.makedirs(output, exist_ok=True)
        with open(budget_path, "w") as f:
            json.dump(
                {
                    "budget_minutes": budget_minutes,
                    "train_steps": steps,
                    "seconds_per_step": seconds,
                },
                f,
            )
    logging.info(
        "%d rows x %d seeds, %d steps each (%.3f s per step of the defaults).",
        len(rows),
        len(seeds),
        steps,
        seconds,
    )
    summary = {"train_steps": steps, "seconds_per_step": seconds, "rows": []}
    for name, changes in rows:
        per_seed = []
        for seed in seeds:
            model_dir = os.path.join(output, _slug(name), f"seed{seed}")
            result_path = os.path.join(model_dir, "ablation_result.json")
            if os.path.exists(result_path):
                with open(result_path) as f:
                    per_seed.append(json.load(f))
                continue
            run_config = row_config(config, changes, steps, seed)
            loop.train_and_evaluate(run_config, model_dir, phase=1, verbose=False)
            run = loop.restore_networks(model_dir)
            pairs = evaluate.evaluate_pairs(run, num_clips=num_clips)
            result = {
                "train_steps": steps,
                "mask_iou": pairs.get("mask_iou"),
                "psnr": pairs["psnr"],
            }
            if rollout_steps:
                rollouts = evaluate.evaluate_rollouts(run, rollout_steps, num_clips)
                model = rollouts.get("true_carry", rollouts["fitted_carry"])
                result["rollout_psnr"] = model["psnr"]
                result["control_error"] = model["control_error"]
            with open(result_path, "w") as f:
                json.dump(result, f, indent=2)
            per_seed.append(result)
            logging.info("%s, seed %d: %s", name, seed, result)
        row = {"name": name, "changes": changes, "seeds": list(seeds)}
        for key, _, _ in COLUMNS:
            values = [r[key] for r in per_seed if r.get(key) is not None]
            if values:
                row[key] = float(np.mean(values))
                row[f"{key}_std"] = float(np.std(values))
        summary["rows"].append(row)
    with open(os.path.join(output, "ablation.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(output, "ablation.md"), "w") as f:
        f.write(format_table(summary, config))
    return summary


def format_table(summary, config):
    """The ablation table in Markdown: mean ± spread over the seeds per row."""
    defaults = (
        f"--generator={config.model.generator} --bg_mask={config.loss.bg_mask} "
        f"--spar_schedule={config.loss.spar_schedule} --quantize={config.model.quantize} "
        f"--condition={config.model.condition}"
    )
    seeds = len(summary["rows"][0]["seeds"]) if summary["rows"] else 0
    columns = [c for c in COLUMNS if any(c[0] in row for row in summary["rows"])]
    lines = [
        f"Phase I, {summary['train_steps']} steps per run, {seeds} seeds per row (mean ± "
        f"standard deviation). The defaults (marked *): {defaults}.",
        "",
        "| row | " + " | ".join(title for _, title, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for row in summary["rows"]:
        label = row["name"] + (" *" if not row["changes"] else "")
        cells = []
        for key, _, fmt in columns:
            if key in row:
                cells.append(f"{fmt.format(row[key])} ± {fmt.format(row[key + '_std'])}")
            else:
                cells.append("n/a")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


FLAGS = flags.FLAGS


def main(argv):
    import train

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = train.config_from_flags().validate(1)
        if FLAGS.budget_minutes <= 0:
            raise ValueError(f"--budget_minutes={FLAGS.budget_minutes}: must be > 0.")
        seeds = [int(s) for s in FLAGS.seeds_list] if FLAGS.seeds_list else list(range(FLAGS.seeds))
        if len(seeds) < 1:
            raise ValueError(f"--seeds={FLAGS.seeds}: must be >= 1.")
        os.makedirs(FLAGS.output, exist_ok=True)
        summary = run_grid(
            config, FLAGS.budget_minutes, seeds, FLAGS.output, FLAGS.ablation_rollout_steps
        )
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    sys.stdout.write(format_table(summary, config))
    sys.stdout.write(f"\nWritten to {os.path.join(FLAGS.output, 'ablation.md')}\n")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import train  # noqa: F401  (defines every training flag, so --flagfile works as for train.py)

    flags.DEFINE_float("budget_minutes", 2.0, "Training time per run, at the defaults' speed.")
    flags.DEFINE_integer("seeds", 2, "Seeds per row: 0, 1, ...")
    flags.DEFINE_list("seeds_list", [], "Explicit seeds per row instead of --seeds.")
    flags.DEFINE_string("output", "runs/ablation", "Folder for the runs and the table.")
    flags.DEFINE_integer(
        "ablation_rollout_steps", 8, "Steps of the controlled rollouts per run (0: none)."
    )
    app.run(main)
