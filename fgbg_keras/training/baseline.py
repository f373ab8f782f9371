"""Training and restoring the ConvLSTM baseline (`python train.py --phase=baseline_convlstm`).

The baseline trains on the same data, windows and optimiser settings as fgbg (`--data`,
`--frames_per_clip`, `--clips_per_batch`, `--train_steps`, `--learning_rate`...): from the first
frame of each window it rolls out the other F - 1 frames on its own predictions, steered by the
window's ground-truth offsets (zeros on data without them), with an L1 loss on every frame. It
resumes from its last checkpoint, writes TensorBoard scalars, and stops at a non-finite loss
without overwriting the last good checkpoint, as the fgbg phases do.
"""

import os

import keras
import tensorflow as tf
from absl import logging

from data_pipelines import datasets, pipeline
from fgbg_keras.models.convlstm_predictor import ConvLSTMPredictor
from fgbg_keras.training import callbacks as fgbg_callbacks
from fgbg_keras.training import loop

PHASE = "baseline_convlstm"


def build(config):
    """The baseline of a `RunConfig`, built at its frame size."""
    model = ConvLSTMPredictor(
        filters=config.baseline.convlstm_filters,
        lstm_filters=config.baseline.convlstm_lstm_filters,
        name="convlstm_baseline",
    )
    size = config.model.image_size
    model({"frame": tf.zeros([1, size, size, 3]), "offsets": tf.zeros([1, 1, 2])})
    return model


def trained_with_controls(config):
    """Whether a baseline run's windows carried ground-truth offsets: only the built-in
    synthetic source's do (converted records and TFDS windows have none: zeros)."""
    return datasets.parse_data_flag(config.train.data)[0] == "synthetic"


def inputs_and_targets(batch):
    """A batch of windows -> the ConvLSTM's inputs (first frame, offsets; zeros without them)
    and its targets (the other frames)."""
    frames = batch["frames"]
    offsets = batch.get("offsets")
    if offsets is None:
        offsets = tf.zeros_like(frames[:, 1:, 0, 0, :2])  # keeps the static number of steps
    return {"frame": frames[:, 0], "offsets": offsets}, frames[:, 1:]


def train_baseline(config, model_dir, verbose=True):
    """Trains the baseline in `model_dir`, resuming from its last checkpoint if there is one.

    Raises:
        loop.TrainingDiverged: the loss became NaN/Inf; the last good checkpoint is kept.
        ValueError: a bad config or data flag, or a `model_dir` of another kind of run.
    """
    config.validate(PHASE)
    loop.check_model_dir(model_dir)
    train = config.train
    datasets.check_data(train.data, train.frames_per_clip, train.tfds_data_dir)
    loop.write_config(config, model_dir, phase=PHASE)
    loop.setup_runtime(config)

    model = build(config)
    optimizer = loop.adam(config, train.learning_rate)
    model.compile(optimizer=optimizer, loss="mae", jit_compile=train.jit_compile)
    optimizer.build(model.trainable_variables)
    checkpoint, manager = loop.make_checkpoint(model, optimizer, model_dir, train.keep_checkpoints)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        logging.info("Resumed from %s", manager.latest_checkpoint)
    step = int(optimizer.iterations.numpy())
    if step >= train.train_steps:
        logging.info("Already trained to step %d (--train_steps=%d).", step, train.train_steps)
        return {}

    batches = pipeline.batch_windows(
        loop.train_windows(config, step),
        train.clips_per_batch,
        config.model.image_size,
        keep_offsets=True,
    )
    data = batches.map(inputs_and_targets).prefetch(tf.data.AUTOTUNE)

    nan_guard = fgbg_callbacks.NaNGuard(())
    callbacks = [
        nan_guard,
        fgbg_callbacks.CheckpointSaver(
            manager, train.checkpoint_every, train.train_steps, nan_guard
        ),
        keras.callbacks.TensorBoard(os.path.join(model_dir, "train"), write_graph=False),
    ]
    if verbose:
        callbacks.append(fgbg_callbacks.Progress(train.train_steps, ("loss",)))
    return loop.fit_and_check(model, data, config, step, callbacks, nan_guard, manager)


def restore(model_dir):
    """The `(config, model)` of a baseline run's latest checkpoint.

    Raises:
        ValueError: naming `model_dir` when it is not a baseline run or holds no checkpoint.
    """
    config, latest = loop.latest_checkpoint(model_dir, flag="--convlstm_dir")
    if loop.run_phase(model_dir) != PHASE:
        raise ValueError(f"--convlstm_dir={model_dir!r} is not a --phase={PHASE} run of train.py.")
    keras.config.set_dtype_policy(config.train.precision)
    model = build(config)
    status = tf.train.Checkpoint(model=model).restore(latest)
    status.expect_partial().assert_existing_objects_matched()
    return config, model
