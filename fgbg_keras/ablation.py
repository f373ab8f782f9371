"""The ablation grid of docs/method.md, trained and evaluated at a fixed budget per run
(`python -m fgbg_keras.ablate`).

Rows, each a change to the flags given (the defaults row changes nothing):
- each mask loss removed: L_bg (`--bg_weight=0`), L_spar (`--spar_schedule=off`), L_bin
  (`--bin_weight=0`);
- every other value of `--bg_mask` and `--spar_schedule` (their choices in `LossConfig`), and
  every other registered `--generator` (`models.generators`);
- every other value of the settings a generator lists in its `ablations`, with that generator
  (`--quantize` and `--condition` with `--generator=vqvae`).

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
import dataclasses
import json
import os
import re
import time

import numpy as np
import tensorflow as tf
from absl import logging

from data_pipelines import pipeline, synthetic
from fgbg_keras import runs
from fgbg_keras.config import LossConfig
from fgbg_keras.evaluation import methods, pairs, rollouts
from fgbg_keras.models import generators
from fgbg_keras.training import loop, phases

COLUMNS = (
    ("mask_iou", "mask IoU", "{:.3f}"),
    ("psnr", "next-frame PSNR (dB)", "{:.2f}"),
    ("rollout_psnr", "rollout PSNR (dB)", "{:.2f}"),
    ("control_error", "control error (px)", "{:.2f}"),
)


def _choices(section, name):
    return next(f for f in dataclasses.fields(section) if f.name == name).metadata["choices"]


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
        ("bg_mask", _choices(LossConfig, "bg_mask"), loss.bg_mask),
        (
            "spar_schedule",
            tuple(s for s in _choices(LossConfig, "spar_schedule") if s != "off"),
            loss.spar_schedule,
        ),
        ("generator", generators.names(), model.generator),
    ):
        rows += [(f"--{field}={v}", {field: v}) for v in values if v != current]
    for name in generators.names():
        switch = {} if model.generator == name else {"generator": name}
        prefix = "" if not switch else f"--generator={name} "
        for field, values in generators.get(name).ablations.items():
            current = getattr(model, field)
            rows += [
                (f"{prefix}--{field}={v}", {**switch, field: v}) for v in values if v != current
            ]
    return rows


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
        config.set(field, value)
    return phases.get(1).validate(config)


def budget_steps(config, budget_minutes, measure_steps=10):
    """Training steps that fit `budget_minutes` at the measured speed of `config`'s Phase I
    (timed on synthetic clips: the speed does not depend on what the frames show)."""
    with loop.training_graphs(config):
        return _measured_budget(config, budget_minutes, measure_steps)


def _measured_budget(config, budget_minutes, measure_steps):
    loop.setup_runtime(config)
    data_config = synthetic.scaled_config(config.model.image_size, config.train.clip_length)
    clips = synthetic.make_split("train", 8, data_config, seed=0)
    triples = pipeline.triples(
        clips,
        frames_per_clip=config.train.frames_per_clip,
        clips_per_batch=config.train.clips_per_batch,
        seed=0,
        diff_mode=config.loss.diff,
        diff_threshold=config.loss.diff_threshold,
    )
    batches = list(triples.take(2))
    model, _ = phases.get(1).build(config, batches[0])
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


def _budget(config, budget_minutes, output):
    """`(train_steps, seconds_per_step)` of the grid in `output`: measured once per folder and
    kept in `budget.json`, so that finishing an interrupted grid trains every run for as many
    steps as the first ones."""
    budget_path = os.path.join(output, "budget.json")
    budget = {}
    if os.path.exists(budget_path):
        with open(budget_path) as f:
            budget = json.load(f)
    if budget.get("budget_minutes") == budget_minutes:
        return budget["train_steps"], budget["seconds_per_step"]
    if budget:
        raise ValueError(
            f"--output={output!r} holds a grid of --budget_minutes="
            f"{budget['budget_minutes']}; use that budget or a new --output."
        )
    steps, seconds = budget_steps(config, budget_minutes)
    os.makedirs(output, exist_ok=True)
    with open(budget_path, "w") as f:
        json.dump(
            {"budget_minutes": budget_minutes, "train_steps": steps, "seconds_per_step": seconds},
            f,
        )
    return steps, seconds


def _train_and_score(run_config, model_dir, rollout_steps, num_clips):
    """Trains one run of the grid (Phase I) and scores it on the test split."""
    loop.train_and_evaluate(run_config, model_dir, phase=1, verbose=False)
    run = runs.restore_networks(model_dir)
    one_step = pairs.evaluate_pairs(run, num_clips=num_clips)
    result = {
        "train_steps": run_config.train.train_steps,
        "mask_iou": one_step.get("mask_iou"),
        "psnr": one_step["psnr"],
    }
    if rollout_steps:
        rolled = rollouts.evaluate_rollouts(run, rollout_steps, num_clips)
        model = rolled[methods.primary(rolled)]
        result["rollout_psnr"] = model["psnr"]
        result["control_error"] = model["control_error"]
    return result


def run_grid(config, budget_minutes, seeds, output, rollout_steps=8, num_clips=None):
    """Trains and evaluates every row for each seed; returns the summary dict written to
    `<output>/ablation.json` (and the table to `ablation.md`). A run whose result is on disk
    is read back, not trained again."""
    rows = grid(config)
    steps, seconds = _budget(config, budget_minutes, output)
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
            result = _train_and_score(run_config, model_dir, rollout_steps, num_clips)
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
    varied = ["generator", "bg_mask", "spar_schedule"]
    varied += [field for name in generators.names() for field in generators.get(name).ablations]
    defaults = " ".join(f"--{field}={config.get(field)}" for field in varied)
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
