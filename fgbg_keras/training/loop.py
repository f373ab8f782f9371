"""`train_and_evaluate`: a whole run of any phase in a directory, resumable."""

import contextlib
import os
import shutil
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from data_pipelines import datasets, pipeline, records
from fgbg_keras import distribute, hardware, run_guard, runs
from fgbg_keras.training import callbacks as fgbg_callbacks
from fgbg_keras.training import phases

# Tells the seed of the windows' augmentation from the seeds of the run's other streams.
AUGMENTATION_STREAM = 1


class TrainingDiverged(RuntimeError):
    """A loss term or weight became NaN or infinite; the last good checkpoint is intact."""


class Validation(NamedTuple):
    """What a phase validates on: the raw clips, their pair batches for `fit`, and the first
    batch (it builds the model and shows its masks and predictions in TensorBoard)."""

    clips: dict
    data: tf.data.Dataset
    sample: dict


def setup_runtime(config):
    """The distribution strategy (`--strategy`), seeds, determinism and the dtype policy (with a
    warning where mixed_bfloat16 would be emulated: `hardware.precision_warning`); call
    first, before any other TensorFlow work (a multi-worker strategy must be made before any
    op runs) and before building any network.

    Returns:
        The run's `tf.distribute.Strategy`.

    Raises:
        ValueError: `--clips_per_batch` does not split evenly over the strategy's replicas.
    """
    train = config.train
    strategy = distribute.make_strategy(train.strategy, train.logical_cpus)
    replicas = strategy.num_replicas_in_sync
    names = (
        ("clips_per_batch", "long_clips_per_batch")
        if train.long_windows_from
        else ("clips_per_batch",)
    )
    for name in names:
        if getattr(train, name) % replicas:
            raise ValueError(
                f"--{name}={getattr(train, name)}: must be a multiple of the {replicas} "
                f"replicas of --strategy={train.strategy}, each of which trains on an equal "
                "share of every batch."
            )
    if replicas > 1:
        logging.info(
            "--strategy=%s: %d replicas, %d clips each per step.",
            train.strategy,
            replicas,
            train.clips_per_batch // replicas,
        )
    keras.config.set_dtype_policy(train.precision)
    warning = hardware.precision_warning(
        train.precision, hardware.cpu(), hardware.gpu_capabilities()
    )
    if warning:
        logging.warning(warning)
    keras.utils.set_random_seed(train.seed)
    if train.deterministic:
        tf.config.experimental.enable_op_determinism()
    return strategy


@contextlib.contextmanager
def training_graphs(config):
    """Within it, Grappler's graph rewrites are off under `--deterministic` on a machine with
    no GPU; on exit they are as they were, so that what the process runs afterwards (the
    evaluation, an export, a served model) gets TensorFlow's usual graphs and error messages.

    With the rewrites on, two processes computed the same first gradients up to 5e-7 apart on
    a CPU (oneDNN); with them off, bit for bit the same, for about 3% of the step's speed
    (docs/results/distribution.md, "Reproducibility"). On a GPU they stay on: what turning them
    off costs there is not measured.
    """
    was_off = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    if config.train.deterministic and not tf.config.list_physical_devices("GPU"):
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": was_off})


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
    latest, written_by = runs.check_init_from(config, init_from)
    runs.restore_fgbg_networks(
        model.mask_generator, model.frame_generator, latest, written_by=written_by
    )
    logging.info("Initialised the mask network and frame generator from %s", latest)
    phases.get(phase).start(model, config)


def validation_data(config, source, replicas=1):
    """The `Validation` of a run: `--num_val_clips` clips of its data, as pair batches.

    With several `replicas`, only whole batches validate (the pairs of a last, shorter batch
    are left out and logged): a distribution strategy splits every batch as if it were whole,
    so a short one would leave some replicas an empty share.

    Raises:
        ValueError: with several replicas, fewer validation pairs than one batch.
    """
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
    pairs = clips["frames"].shape[0] * (clips["frames"].shape[1] - 1)
    if replicas > 1 and pairs % train.pairs_per_batch:
        whole = pairs // train.pairs_per_batch
        if not whole:
            raise ValueError(
                f"--num_val_clips={train.num_val_clips}: its {pairs} validation pairs do not "
                f"fill one batch of {train.pairs_per_batch} pairs (--clips_per_batch x "
                f"(--frames_per_clip - 1)), which {replicas} replicas share; validate on more "
                "clips."
            )
        logging.warning(
            "Validation uses %d of its %d pairs: the whole batches of %d, which the %d "
            "replicas share evenly.",
            whole * train.pairs_per_batch,
            pairs,
            train.pairs_per_batch,
            replicas,
        )
        data = data.take(whole)
    return Validation(clips, data, next(iter(data)))


def fit_and_check(
    model, data, config, step, callbacks, nan_guard, manager, val_data=None, end=None
):
    """`model.fit` from `step` to `end` (default `--train_steps`) in epochs of `--log_every`
    steps.

    Returns:
        The logs of the last epoch (training and validation metrics).

    Raises:
        TrainingDiverged: the `NaNGuard` stopped training; the last good checkpoint is kept.
    """
    train = config.train
    history = model.fit(
        data,
        epochs=-(-(end or train.train_steps) // train.log_every),
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
    """Every check that can fail before anything is written to `model_dir` (`phase.validate`
    comes first, before the runtime is set up); returns the run's `DataSource`."""
    runs.check_model_dir(model_dir)
    source = datasets.source(config)
    for _, _, frames_per_clip, _, _ in config.train.window_stretches(0):
        source.check(frames_per_clip, config.train.clip_length)
    phase.check_source(config, source)
    require_init_from(phase, init_from)
    if phase.needs_init_from:
        runs.latest_checkpoint(init_from, flag="--init_from")
    return source


def _worker_dir(model_dir):
    """Where a multi-worker task other than the chief saves its copies of the checkpoints
    (every task must take part in a save); removed when its training ends."""
    return os.path.join(model_dir, "workers", distribute.task_name())


def _resume(phase, model, optimizer, config, model_dir, latest, chief=True):
    """Restores the run's checkpoint `latest` (`run_guard.usable_checkpoint`), if there is one;
    returns the checkpoint manager and the step reached. Every task restores the chief's
    checkpoints; a task other than the chief saves to its `_worker_dir`."""
    state = phase.checkpoint_state(model, optimizer)
    checkpoint, manager = runs.make_checkpoint(
        state, model_dir if chief else _worker_dir(model_dir), config.train.keep_checkpoints
    )
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
        logging.info("Resumed from %s", latest)
    return manager, int(optimizer.iterations.numpy())


def _training_stream(phase, config, source, strategy, frames_per_clip, clips_per_batch, first):
    """The training batches of one stretch of windows, from element `first` of its stream, as
    `fit` takes them. Under `--strategy=multi_worker`, where the source can give each worker a
    part of the data of its own (converted records: one shard or more per worker), each worker
    reads only its part and batches its replicas' shares; elsewhere every worker reads the
    whole stream and keeps its share of each batch (`distribute.shard_by_batch`)."""
    background = phase.uses_change_map and config.loss.clip_background

    def batches(windows, clips):
        return phase.train_data(
            config,
            pipeline.batch_windows(
                windows,
                clips,
                config.model.image_size,
                keep_offsets=phase.keeps_offsets(config),
                align=config.loss.align,
                augmentation=config.train.augmentation(),
                seed=records.stream_seed(config.train.seed, first, AUGMENTATION_STREAM),
            ),
        )

    workers = distribute.num_workers(strategy)
    if workers > 1:
        if source.splits_by_worker(workers):
            logging.info("Each of the %d workers reads its own part of --data.", workers)
            return distribute.stream_per_worker(
                strategy,
                lambda worker, clips: batches(
                    source.worker_windows(
                        frames_per_clip, config.train.seed, first, worker, background
                    ),
                    clips,
                ),
                clips_per_batch,
            )
        logging.warning(
            "--data=%s cannot be split among the %d workers (records need a train shard per "
            "worker or more): every worker reads all of it and keeps its share of each batch.",
            config.train.data,
            workers,
        )
    windows = source.training_windows(
        frames_per_clip, config.train.seed, start_index=first, background=background
    )
    return distribute.shard_by_batch(batches(windows, clips_per_batch), config.train.strategy)


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
    with training_graphs(config):
        return _train_and_evaluate(config, model_dir, phases.get(phase), init_from, verbose)


def _train_and_evaluate(config, model_dir, phase, init_from, verbose):
    phase.validate(config)
    strategy = setup_runtime(config)
    chief = distribute.is_chief(config.train.strategy)
    source = _checked_source(phase, config, model_dir, init_from)
    # One process writes a run: its chief.
    with run_guard.sole_writer(model_dir) if chief else contextlib.nullcontext():
        return _train(config, model_dir, phase, init_from, verbose, strategy, chief, source)


def _train(config, model_dir, phase, init_from, verbose, strategy, chief, source):
    train = config.train
    validation = None
    if phase.validates:
        validation = validation_data(config, source, strategy.num_replicas_in_sync)
    with strategy.scope():
        # Every network and optimizer variable is made here, mirrored on each replica.
        model, optimizer = phase.build(config, validation.sample if validation else None)
        distribute.adapt_to_multi_worker(model, strategy)
        latest = run_guard.usable_checkpoint(runs.checkpoint_dir(model_dir), set_aside=chief)
        if phase.needs_init_from and latest is None:
            # A fresh start: init_from is checked, and loaded, before config.json is written.
            initialize_from(model, config, init_from, phase.name)
        runs.write_config(config, model_dir, phase, init_from, write=chief)
        manager, step = _resume(phase, model, optimizer, config, model_dir, latest, chief)
    distribute.check_same_step(strategy, step, model_dir)
    if step >= train.train_steps:
        logging.info("Already trained to step %d (--train_steps=%d).", step, train.train_steps)
        return {}

    nan_guard = fgbg_callbacks.NaNGuard(phase.loss_terms)
    callbacks = [
        nan_guard,
        fgbg_callbacks.CheckpointSaver(
            manager, train.checkpoint_every, train.train_steps, nan_guard
        ),
    ]
    if validation and chief:
        callbacks.append(fgbg_callbacks.Summaries(model_dir, validation.sample, train.image_every))
    callbacks += phase.callbacks(config, model_dir, validation, writes=chief)
    if verbose and chief:
        callbacks.append(fgbg_callbacks.Progress(train.train_steps, phase.progress_names))
    try:
        for start, end, frames_per_clip, clips_per_batch, first in train.window_stretches(step):
            data = _training_stream(
                phase, config, source, strategy, frames_per_clip, clips_per_batch, first
            )
            # Traced again for the new batch shape (a retrace could relax the shapes).
            model.train_function = None
            logs = fit_and_check(
                model,
                data,
                config,
                start,
                callbacks,
                nan_guard,
                manager,
                validation.data if validation else None,
                end=end,
            )
        return logs
    finally:
        if not chief:
            shutil.rmtree(_worker_dir(model_dir), ignore_errors=True)
            with contextlib.suppress(OSError):  # another worker may not have finished yet
                os.rmdir(os.path.dirname(_worker_dir(model_dir)))
