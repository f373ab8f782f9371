"""`train_and_evaluate`: a whole run of any phase in a directory, resumable."""

from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from data_pipelines import datasets, pipeline
from fgbg_keras import runs
from fgbg_keras.training import callbacks as fgbg_callbacks
from fgbg_keras.training import phases


class TrainingDiverged(RuntimeError):
    """A loss term or weight became NaN or infinite; the last good checkpoint is intact."""


class Validation(NamedTuple):
    """What a phase validates on: the raw clips, their pair batches for `fit`, and the first
    batch (it builds the model and shows its masks and predictions in TensorBoard)."""

    clips: dict
    data: tf.data.Dataset
    sample: dict


def setup_runtime(config):
    """Seeds, determinism and the dtype policy; call before building any network."""
    keras.config.set_dtype_policy(config.train.precision)
    keras.utils.set_random_seed(config.train.seed)
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()


def require_init_from(phase, init_from):
    """Raises a ValueError when `phase` starts from another run and `init_from` is not given."""
    if phase.needs_init_from and not init_from:
        raise ValueError(
            f"--init_from is required with --phase={phase.name}: the directory of the run whose "
            "networks it starts from."
        )


def initialize_from(model, config, init_from, phase):
    """Starts a fresh run of `phase` from the mask network and frame generator of the run in
    `init_from` (`runs.check_init_from` says which settings may differ), then lets the phase
    prepare the model (`Phase.start`)."""
    latest = runs.check_init_from(config, init_from)
    runs.restore_fgbg_networks(model.mask_generator, model.frame_generator, latest)
    logging.info("Initialised the mask network and frame generator from %s", latest)
    phases.get(phase).start(model, config)


def validation_data(config, source):
    """The `Validation` of a run: `--num_val_clips` clips of its data, as pair batches."""
    train = config.train
    clips = source.evaluation_clips(
        "validation", train.num_val_clips, train.clip_length, train.seed
    )
    data = pipeline.eval_triples(
        clips,
        batch_size=train.pairs_per_batch,
        image_size=config.model.image_size,
        diff_mode=config.loss.diff,
        diff_threshold=config.loss.diff_threshold,
        align=config.loss.align,
        background=config.loss.clip_background,
    )
    return Validation(clips, data, next(iter(data)))


def fit_and_check(model, data, config, step, callbacks, nan_guard, manager, val_data=None):
    """`model.fit` from `step` to `--train_steps` in epochs of `--log_every` steps.

    Returns:
        The logs of the last epoch (training and validation metrics).

    Raises:
        TrainingDiverged: the `NaNGuard` stopped training; the last good checkpoint is kept.
    """
    train = config.train
    history = model.fit(
        data,
        epochs=-(-train.train_steps // train.log_every),
        initial_epoch=step // train.log_every,
        steps_per_epoch=train.log_every,
        validation_data=val_data,
        validation_freq=train.checkpoint_every // train.log_every,
        callbacks=callbacks,
        # The streams are shuffled (and seeded) when they are made; fit must not try to.
        shuffle=False,
        verbose=0,
    )
    if nan_guard.failure is not None:
        bad_step, term, value = nan_guard.failure
        raise TrainingDiverged(
            f"Training stopped at step {bad_step}: {term} is {value}. The last good checkpoint, "
            f"{manager.latest_checkpoint}, was kept and not overwritten."
        )
    return {k: float(np.asarray(v[-1])) for k, v in history.history.items()}


def _checked_source(phase, config, model_dir, init_from):
    """Every check that can fail before anything is written to `model_dir`; returns the run's
    `DataSource`."""
    phase.validate(config)
    runs.check_model_dir(model_dir)
    source = datasets.source(config)
    source.check(config.train.frames_per_clip, config.train.clip_length)
    require_init_from(phase, init_from)
    if phase.needs_init_from:
        runs.latest_checkpoint(init_from, flag="--init_from")
    return source


def _resume(phase, model, optimizer, config, model_dir):
    """Restores the run's last checkpoint, if there is one; returns the checkpoint manager and
    the step reached."""
    state = phase.checkpoint_state(model, optimizer)
    checkpoint, manager = runs.make_checkpoint(state, model_dir, config.train.keep_checkpoints)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        logging.info("Resumed from %s", manager.latest_checkpoint)
    return manager, int(optimizer.iterations.numpy())


def train_and_evaluate(config, model_dir, phase=1, init_from=None, verbose=True):
    """Trains one phase in `model_dir`, resuming from its last checkpoint if there is one.

    Args:
        config: a `RunConfig`; validated here before any graph is built.
        model_dir: directory for `config.json`, checkpoints and TensorBoard logs.
        phase: a registered `--phase` (`phases.names()`): 1 (masks and generator), 2 (generator
            conditioned on the target mask, GAN) or "baseline_convlstm".
        init_from: for a phase that starts from another run (Phase II): that run's directory
            (checked even when resuming, so a wrong directory is caught).
        verbose: show a progress bar.

    Returns:
        The logs of the last epoch of `fit` (training and validation metrics), or an empty
        dict when the run had already reached `train_steps`.

    Raises:
        TrainingDiverged: a loss term became NaN/Inf; the last good checkpoint is kept.
        ValueError: a bad config, data or frame size, or a missing or incompatible `init_from`.
    """
    phase = phases.get(phase)
    source = _checked_source(phase, config, model_dir, init_from)
    setup_runtime(config)
    train = config.train
    validation = validation_data(config, source) if phase.validates else None
    model, optimizer = phase.build(config, validation.sample if validation else None)
    if phase.needs_init_from and not runs.has_checkpoint(model_dir):
        # A fresh start: init_from is checked, and loaded, before config.json is written.
        initialize_from(model, config, init_from, phase.name)
    runs.write_config(config, model_dir, phase, init_from)
    manager, step = _resume(phase, model, optimizer, config, model_dir)
    if step >= train.train_steps:
        logging.info("Already trained to step %d (--train_steps=%d).", step, train.train_steps)
        return {}

    windows = source.training_windows(
        train.frames_per_clip,
        train.seed,
        start_index=step * train.clips_per_batch,
        background=phase.uses_change_map and config.loss.clip_background,
    )
    batches = pipeline.batch_windows(
        windows,
        train.clips_per_batch,
        config.model.image_size,
        keep_offsets=phase.keeps_offsets,
        align=config.loss.align,
    )
    nan_guard = fgbg_callbacks.NaNGuard(phase.loss_terms)
    callbacks = [
        nan_guard,
        fgbg_callbacks.CheckpointSaver(
            manager, train.checkpoint_every, train.train_steps, nan_guard
        ),
    ]
    if validation:
        callbacks.append(fgbg_callbacks.Summaries(model_dir, validation.sample, train.image_every))
    callbacks += phase.callbacks(config, model_dir, validation)
    if verbose:
        callbacks.append(fgbg_callbacks.Progress(train.train_steps, phase.progress_names))
    return fit_and_check(
        model,
        phase.train_data(config, batches),
        config,
        step,
        callbacks,
        nan_guard,
        manager,
        validation.data if validation else None,
    )
