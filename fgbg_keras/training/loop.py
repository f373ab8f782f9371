"""`train_and_evaluate`: a whole run of either phase in a directory, resumable."""

import json
import os
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from data_pipelines import datasets, pipeline, synthetic
from fgbg_keras.config import RunConfig
from fgbg_keras.models.factory import build_frame_generator, build_mask_generator
from fgbg_keras.schedules import LinearDecaySchedule
from fgbg_keras.training import callbacks as fgbg_callbacks
from fgbg_keras.training import phase_one, phase_two

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
    """The `SyntheticConfig` of a run's built-in data (`synthetic.scaled_config`)."""
    return synthetic.scaled_config(config.model.image_size, config.train.clip_length)


def setup_runtime(config):
    """Seeds, determinism and the dtype policy; call before building any network."""
    keras.config.set_dtype_policy(config.train.precision)
    keras.utils.set_random_seed(config.train.seed)
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()


def adam(config, learning_rate):
    """Adam with the run's betas and its linearly decaying learning rate."""
    schedule = LinearDecaySchedule(
        learning_rate,
        config.train.train_steps,
        decay_start_fraction=config.train.decay_start_fraction,
    )
    return keras.optimizers.Adam(schedule, beta_1=config.train.beta_1, beta_2=config.train.beta_2)


def build_model_and_optimizer(config, sample_batch, phase=1):
    """The model of `phase` and its Adam optimizer, both built (every variable exists).

    `sample_batch` is a pair dict (`frame`, `next_frame`, ...). In Phase II the returned
    optimizer trains the frame generator; the discriminators' own optimizer is
    `model.discriminator_optimizer`.
    """
    optimizer = adam(config, config.train.learning_rate)
    if phase == 1:
        model = phase_one.build_phase_one(config)
        model.compile(optimizer=optimizer, jit_compile=config.train.jit_compile)
        model(sample_batch, training=False)
        optimizer.build(model.trainable_variables)
    else:
        model = phase_two.build_phase_two(config)
        disc_rate = config.phase_two.disc_learning_rate or config.train.learning_rate
        model.compile(
            optimizer=optimizer,
            discriminator_optimizer=adam(config, disc_rate),
            jit_compile=config.train.jit_compile,
        )
        outputs = model(sample_batch, training=False)
        model.discriminate(sample_batch["frame"], outputs["frame"], outputs["mask"], False)
        model.discriminator_optimizer.build(model.discriminator_variables)
        optimizer.build(model.frame_generator.trainable_variables)
    return model, optimizer


def make_checkpoint(model, optimizer, model_dir, max_to_keep=3):
    """The run's training state and its manager under `<model_dir>/checkpoints`."""
    state = {"model": model, "optimizer": optimizer}
    if getattr(model, "discriminator_optimizer", None) is not None:
        state["discriminator_optimizer"] = model.discriminator_optimizer
    checkpoint = tf.train.Checkpoint(**state)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(model_dir, CHECKPOINT_DIR), max_to_keep=max_to_keep
    )
    return checkpoint, manager


def _networks_checkpoint(mask_generator, frame_generator):
    """A checkpoint view that matches the networks inside either phase's saved `model`."""
    return tf.train.Checkpoint(
        model=tf.train.Checkpoint(mask_generator=mask_generator, frame_generator=frame_generator)
    )


def latest_checkpoint(model_dir, flag="--model_dir"):
    """The saved config of a run and the path of its latest checkpoint."""
    config = load_config(model_dir, flag)
    manager_dir = os.path.join(model_dir, CHECKPOINT_DIR)
    latest = tf.train.latest_checkpoint(manager_dir)
    if latest is None:
        raise ValueError(f"{flag}={model_dir!r} has no checkpoint under {manager_dir}.")
    return config, latest


class RestoredRun(NamedTuple):
    """The networks of a run's latest checkpoint, with what they were trained under."""

    config: RunConfig
    checkpoint: str
    phase: int
    mask_generator: keras.Model
    frame_generator: keras.Model


def restore_networks(model_dir, precision=None):
    """The mask network and frame generator of the latest checkpoint of a run of either phase.

    Sets the run's dtype policy, or `precision` if given (the TFLite export asks for float32:
    mixed-precision variables are float32 either way, so the checkpoint loads). Both networks
    are built for `config.model.image_size` (they take any size divisible by their
    downsampling) and restored.

    Returns:
        A `RestoredRun`.

    Raises:
        ValueError: naming `model_dir` when it is not a run or holds no checkpoint.
    """
    config, latest = latest_checkpoint(model_dir)
    phase = run_phase(model_dir)
    if phase not in (1, 2):
        raise ValueError(
            f"--model_dir={model_dir!r} holds a --phase={phase} run, not a fgbg one (pass a "
            "ConvLSTM baseline run as --convlstm_dir)."
        )
    keras.config.set_dtype_policy(precision or config.train.precision)
    mask_generator = build_mask_generator(config.model)
    frame_generator = build_frame_generator(config.model, phase)
    size = config.model.image_size
    frame = tf.zeros([1, size, size, 3])
    mask = mask_generator(frame)
    frame_generator({"frame": frame, "mask": mask, "target_mask": mask})
    status = _networks_checkpoint(mask_generator, frame_generator).restore(latest)
    status.expect_partial().assert_existing_objects_matched()
    return RestoredRun(config, latest, phase, mask_generator, frame_generator)


def train_windows(config, step):
    """The training stream of windows of `--data`, from the element that `step` reaches (so a
    resumed run continues the stream where it stopped)."""
    train = config.train
    clips = None
    if datasets.parse_data_flag(train.data)[0] == "synthetic":
        clips = synthetic.make_split(
            "train", train.num_train_clips, synthetic_config(config), seed=train.seed
        )
    return datasets.windows(
        train.data,
        train.frames_per_clip,
        train.seed,
        start_index=step * train.clips_per_batch,
        synthetic_clips=clips,
        tfds_data_dir=train.tfds_data_dir,
    )


def run_phase(model_dir):
    """The `--phase` a run directory was trained with: 1, 2 or "baseline_convlstm"."""
    with open(os.path.join(model_dir, CONFIG_FILE)) as f:
        phase = json.load(f).get("phase", 1)
    return int(phase) if str(phase).isdigit() else phase


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
        verbose=0,
    )
    if nan_guard.failure is not None:
        bad_step, term, value = nan_guard.failure
        raise TrainingDiverged(
            f"Training stopped at step {bad_step}: {term} is {value}. The last good checkpoint, "
            f"{manager.latest_checkpoint}, was kept and not overwritten."
        )
    return {k: float(np.asarray(v[-1])) for k, v in history.history.items()}


def _config_changes(saved, requested):
    return {
        k: (v, getattr(requested, k)) for k, v in vars(saved).items() if getattr(requested, k) != v
    }


def write_config(config, model_dir, phase=1, init_from=None):
    """Writes `config.json`; on resume, refuses another phase or other network settings."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if os.path.exists(path):
        with open(path) as f:
            values = json.load(f)
        saved = RunConfig.from_dict(values)
        if values.get("phase", 1) != phase:
            raise ValueError(
                f"--model_dir={model_dir!r} holds a Phase {values.get('phase', 1)} run, not a "
                f"Phase {phase} one. Use a new --model_dir."
            )
        changes = {
            **_config_changes(saved.model, config.model),
            **_config_changes(saved.baseline, config.baseline),
        }
        if changes:
            raise ValueError(
                f"--model_dir={model_dir!r} holds a run with other network settings; "
                f"(saved, requested): {changes}. "
                "Use a new --model_dir."
            )
    values = {"phase": phase, **config.to_dict()}
    if init_from:
        values["init_from"] = os.path.abspath(init_from)
    with open(path, "w") as f:
        json.dump(values, f, indent=2)


def load_config(model_dir, flag="--model_dir"):
    """The `RunConfig` saved in a run directory."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isdir(model_dir):
        raise ValueError(f"{flag}={model_dir!r} does not exist.")
    if not os.path.exists(path):
        raise ValueError(f"{flag}={model_dir!r} has no {CONFIG_FILE}: it is not a fgbg run.")
    with open(path) as f:
        return RunConfig.from_dict(json.load(f))


def initialize_from(model, config, init_from):
    """Loads the mask network and frame generator of a Phase I run into a Phase II model.

    Settings in `ModelConfig.PHASE_TWO_ONLY` may differ from the Phase I run's.

    Raises:
        ValueError: naming `init_from` when it is missing, holds no checkpoint, or was trained
            with other network settings (frame size, widths, generator variant...).
    """
    saved, latest = latest_checkpoint(init_from, flag="--init_from")
    if saved.model.networks() != config.model.networks():
        raise ValueError(
            f"--init_from={init_from!r} was trained with other network settings than this "
            f"run; (saved, requested): "
            f"{_config_changes(saved.model.networks(), config.model.networks())}."
        )
    status = _networks_checkpoint(model.mask_generator, model.frame_generator).restore(latest)
    status.expect_partial().assert_existing_objects_matched()
    logging.info("Initialised the mask network and frame generator from %s", latest)
    # The VQ-VAE draws the whole frame: a zero last layer would make it draw a blank one.
    if config.phase_two.reset_generator_head and config.model.generator == "unet":
        model.frame_generator.reset_head()
        logging.info("The U-Net's last layer starts at zero: Phase 2 starts from its base frame.")


def train_and_evaluate(config, model_dir, phase=1, init_from=None, verbose=True):
    """Trains one phase in `model_dir`, resuming from its last checkpoint if there is one.

    Args:
        config: a `RunConfig`; validated here before any graph is built.
        model_dir: directory for `config.json`, checkpoints and TensorBoard logs.
        phase: 1 (masks and generator) or 2 (generator conditioned on the target mask, GAN).
        init_from: Phase II only: the Phase I run directory whose networks start the run
            (checked even when resuming, so a wrong directory is caught).
        verbose: show a progress bar.

    Returns:
        The logs of the last epoch of `fit` (training and validation metrics), or an empty
        dict when the run had already reached `train_steps`.

    Raises:
        TrainingDiverged: a loss term became NaN/Inf; the last good checkpoint is kept.
        ValueError: a bad config, or (Phase II) a missing or incompatible `init_from`.
    """
    if phase not in (1, 2):
        raise ValueError(f"--phase={phase!r}: must be 1 or 2")
    if phase == 2 and not init_from:
        raise ValueError("--init_from is required with --phase=2: the Phase I run directory.")
    config.validate(phase)
    check_model_dir(model_dir)
    datasets.check_data(config.train.data, config.train.frames_per_clip, config.train.tfds_data_dir)
    if phase == 2:
        latest_checkpoint(init_from, flag="--init_from")
    write_config(config, model_dir, phase, init_from)
    setup_runtime(config)
    train = config.train

    size = config.model.image_size
    val_clips = datasets.evaluation_clips(
        train.data,
        "validation",
        train.num_val_clips,
        train.clip_length,
        size,
        train.seed,
        tfds_data_dir=train.tfds_data_dir,
    )
    diff_args = {"diff_mode": config.loss.diff, "diff_threshold": config.loss.diff_threshold}
    val_data = pipeline.eval_triples(
        val_clips, batch_size=train.pairs_per_batch, image_size=size, **diff_args
    )
    image_batch = next(iter(val_data))

    model, optimizer = build_model_and_optimizer(config, image_batch, phase)
    checkpoint, manager = make_checkpoint(model, optimizer, model_dir, train.keep_checkpoints)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        logging.info("Resumed from %s", manager.latest_checkpoint)
    elif phase == 2:
        initialize_from(model, config, init_from)
    step = int(optimizer.iterations.numpy())
    if step >= train.train_steps:
        logging.info("Already trained to step %d (--train_steps=%d).", step, train.train_steps)
        return {}

    batches = pipeline.batch_windows(train_windows(config, step), train.clips_per_batch, size)
    if phase == 1:
        train_data = pipeline.pairs(batches, **diff_args)
        loss_terms = phase_one.LOSS_TERMS
        progress_names = ("loss", "background_loss", "sparsity_weight", "mask_mean")
    else:
        train_data = batches.prefetch(tf.data.AUTOTUNE)
        loss_terms = phase_two.LOSS_TERMS
        progress_names = ("loss", "reconstruction_loss", "discriminator_loss", "ss_probability")
    nan_guard = fgbg_callbacks.NaNGuard(loss_terms)
    callbacks = [
        nan_guard,
        fgbg_callbacks.CheckpointSaver(
            manager, train.checkpoint_every, train.train_steps, nan_guard
        ),
        fgbg_callbacks.Summaries(model_dir, image_batch, train.image_every),
    ]
    if phase == 2:
        two = config.phase_two
        callbacks.insert(
            0,
            fgbg_callbacks.PhaseTwoSwitches(
                two.disc_start, two.resolved_ss_start(train.train_steps)
            ),
        )
        callbacks.append(
            fgbg_callbacks.RolloutSummaries(
                model_dir, val_clips, train.image_every, image_size=size
            )
        )
    if verbose:
        callbacks.append(fgbg_callbacks.Progress(train.train_steps, progress_names))
    return fit_and_check(model, train_data, config, step, callbacks, nan_guard, manager, val_data)
