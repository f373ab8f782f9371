"""`train_and_evaluate`: a whole Phase I run in a directory, resumable."""

import json
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from data_pipelines import pipeline, synthetic
from fgbg_keras.config import PhaseOneConfig
from fgbg_keras.schedules import LinearDecaySchedule
from fgbg_keras.training import callbacks as fgbg_callbacks
from fgbg_keras.training.phase_one import LOSS_TERMS, build_phase_one

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


class TrainingDiverged(RuntimeError):
    """A loss term or weight became NaN or infinite; the last good checkpoint is intact."""


def check_model_dir(model_dir):
    """Creates `model_dir` if needed; raises ValueError naming it if it cannot be written."""
    if not model_dir:
        raise ValueError("--model_dir is required: the directory for checkpoints and logs.")
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--model_dir={model_dir!r} cannot be created: {error.strerror}") from None
    if not os.access(model_dir, os.W_OK):
        raise ValueError(f"--model_dir={model_dir!r} is not writable.")


def synthetic_config(config):
    """The `SyntheticConfig` of a run's built-in data.

    Sprite sizes and speeds are the defaults' (made for 64x64 frames) scaled to the run's frame
    size, so the task keeps its shape at every size.
    """
    default = synthetic.SyntheticConfig()
    scale = config.model.image_size / default.image_size
    return synthetic.SyntheticConfig(
        image_size=config.model.image_size,
        clip_length=config.train.clip_length,
        sprite_radius=tuple(r * scale for r in default.sprite_radius),
        speed=tuple(v * scale for v in default.speed),
    )


def setup_runtime(config):
    """Seeds, determinism and the dtype policy; call before building any network."""
    keras.config.set_dtype_policy(config.train.precision)
    keras.utils.set_random_seed(config.train.seed)
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()


def build_model_and_optimizer(config, sample_batch):
    """The Phase I model and its Adam optimizer, both built (every variable exists)."""
    model = build_phase_one(config)
    learning_rate = LinearDecaySchedule(
        config.train.learning_rate,
        config.train.train_steps,
        decay_start_fraction=config.train.decay_start_fraction,
    )
    optimizer = keras.optimizers.Adam(
        learning_rate, beta_1=config.train.beta_1, beta_2=config.train.beta_2
    )
    model.compile(optimizer=optimizer, jit_compile=config.train.jit_compile)
    model(sample_batch, training=False)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def make_checkpoint(model, optimizer, model_dir, max_to_keep=3):
    """The run's training state and its manager under `<model_dir>/checkpoints`."""
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(model_dir, CHECKPOINT_DIR), max_to_keep=max_to_keep
    )
    return checkpoint, manager


def write_config(config, model_dir):
    """Writes `config.json`; on resume, refuses a model config other than the saved one."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if os.path.exists(path):
        with open(path) as f:
            saved = PhaseOneConfig.from_dict(json.load(f))
        if saved.model != config.model:
            changed = {
                k: (v, getattr(config.model, k))
                for k, v in vars(saved.model).items()
                if getattr(config.model, k) != v
            }
            raise ValueError(
                f"--model_dir={model_dir!r} holds a run with other network settings; "
                f"(saved, requested): {changed}. Use a new --model_dir."
            )
    with open(path, "w") as f:
        json.dump(config.to_dict(), f, indent=2)


def load_config(model_dir):
    """The `PhaseOneConfig` saved in a run directory."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise ValueError(f"--model_dir={model_dir!r} has no {CONFIG_FILE}: it is not a fgbg run.")
    with open(path) as f:
        return PhaseOneConfig.from_dict(json.load(f))


def train_and_evaluate(config, model_dir, verbose=True):
    """Trains Phase I in `model_dir`, resuming from its last checkpoint if there is one.

    Args:
        config: a `PhaseOneConfig`; validated here before any graph is built.
        model_dir: directory for `config.json`, checkpoints and TensorBoard logs.
        verbose: show a progress bar.

    Returns:
        The logs of the last epoch of `fit` (training and validation metrics), or an empty
        dict when the run had already reached `train_steps`.

    Raises:
        TrainingDiverged: a loss term became NaN/Inf; the last good checkpoint is kept.
    """
    config.validate()
    check_model_dir(model_dir)
    write_config(config, model_dir)
    setup_runtime(config)
    train = config.train

    data_config = synthetic_config(config)
    train_clips = synthetic.make_split("train", train.num_train_clips, data_config, seed=train.seed)
    val_clips = synthetic.make_split(
        "validation", train.num_val_clips, data_config, seed=train.seed
    )
    diff_args = {"diff_mode": config.loss.diff, "diff_threshold": config.loss.diff_threshold}
    val_data = pipeline.eval_triples(val_clips, batch_size=train.pairs_per_batch, **diff_args)
    image_batch = next(iter(val_data))

    model, optimizer = build_model_and_optimizer(config, image_batch)
    checkpoint, manager = make_checkpoint(model, optimizer, model_dir, train.keep_checkpoints)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        logging.info("Resumed from %s", manager.latest_checkpoint)
    step = int(optimizer.iterations.numpy())
    if step >= train.train_steps:
        logging.info("Already trained to step %d (--train_steps=%d).", step, train.train_steps)
        return {}

    train_data = pipeline.triples(
        train_clips,
        frames_per_clip=train.frames_per_clip,
        clips_per_batch=train.clips_per_batch,
        seed=train.seed,
        start_step=step,
        **diff_args,
    )
    nan_guard = fgbg_callbacks.NaNGuard(LOSS_TERMS)
    callbacks = [
        nan_guard,
        fgbg_callbacks.CheckpointSaver(
            manager, train.checkpoint_every, train.train_steps, nan_guard
        ),
        fgbg_callbacks.Summaries(model_dir, image_batch, train.image_every),
    ]
    if verbose:
        callbacks.append(fgbg_callbacks.Progress(train.train_steps))
    epochs = -(-train.train_steps // train.log_every)
    history = model.fit(
        train_data,
        epochs=epochs,
        initial_epoch=step // train.log_every,
        steps_per_epoch=train.log_every,
        validation_data=val_data,
        validation_freq=train.checkpoint_every // train.log_every,
        callbacks=callbacks,
        verbose=0,
    )
    if nan_guard.failure is not None:
        bad_step, term, value = nan_guard.failure
        raise TrainingDiverged(
            f"Training stopped at step {bad_step}: {term} is {value}. The last good checkpoint, "
            f"{manager.latest_checkpoint}, was kept and not overwritten."
        )
    return {k: float(np.asarray(v[-1])) for k, v in history.history.items()}
