"""Callbacks of a training run: NaN guard, checkpoints, TensorBoard summaries, progress."""

import math

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from data_pipelines.preprocess import preprocess_frames
from fgbg_keras import mask_ops, rollout, run_guard
from fgbg_keras.media import overlay


def _step(model):
    return int(model.optimizer.iterations.numpy())


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss term and remembers which one it was.

    Args:
        terms: the loss names to check, in the order they are reported; the total `"loss"` is
            checked after them, so the message names the term that went bad first.
    """

    def __init__(self, terms):
        super().__init__()
        self.terms = tuple(terms) + ("loss",)
        self.failure = None

    def on_train_batch_end(self, batch, logs=None):
        if self.failure is not None or not logs:
            return
        for name in self.terms:
            if name in logs and not math.isfinite(float(logs[name])):
                self.failure = (_step(self.model), name, float(logs[name]))
                self.model.stop_training = True
                logging.error(
                    "Loss term %r is %s at step %d: stopping.",
                    name,
                    self.failure[2],
                    self.failure[0],
                )
                return


class CheckpointSaver(keras.callbacks.Callback):
    """Saves the training state every `every` steps and at the end, never with bad weights; a
    save that fails stops the run (`run_guard.CheckpointNotWritten`), the earlier ones intact.

    Args:
        manager: a `tf.train.CheckpointManager`.
        every: steps between checkpoints.
        total_steps: the last step of the run, always saved.
        nan_guard: the run's `NaNGuard`; nothing is saved once it has stopped training.
    """

    def __init__(self, manager, every, total_steps, nan_guard):
        super().__init__()
        self.manager = manager
        self.every = every
        self.total_steps = total_steps
        self.nan_guard = nan_guard

    def on_epoch_end(self, epoch, logs=None):
        step = _step(self.model)
        if self.nan_guard.failure is not None:
            return
        if step % self.every and step != self.total_steps:
            return
        bad = [v.path for v in self.model.variables if not np.all(np.isfinite(v.numpy()))]
        if bad:
            self.nan_guard.failure = (step, f"weights ({bad[0]})", float("nan"))
            self.model.stop_training = True
            logging.error("Non-finite weights at step %d (%s): not saving.", step, bad[0])
            return
        path = run_guard.save_checkpoint(self.manager, step)
        logging.info("Saved checkpoint %s", path)


class Summaries(keras.callbacks.Callback):
    """Writes TensorBoard scalars and images at the real optimizer step.

    Scalars are the epoch's Mean trackers (an "epoch" of `fit` is `--log_every` steps) and the
    learning rate; validation scalars go to their own writer. Every `image_every` steps the
    model's masks and predictions on a fixed validation batch are written as images.

    Args:
        log_dir: the run's directory; writers go to `train/` and `validation/` under it.
        image_batch: a fixed batch (dict with `"frame"` and `"next_frame"`) for the images.
        image_every: steps between image summaries.
        max_images: images per summary.
    """

    def __init__(self, log_dir, image_batch, image_every, max_images=4):
        super().__init__()
        self.train_writer = tf.summary.create_file_writer(f"{log_dir}/train")
        self.val_writer = tf.summary.create_file_writer(f"{log_dir}/validation")
        self.image_batch = {k: v[:max_images] for k, v in image_batch.items()}
        self.image_every = image_every
        self.max_images = max_images
        self._last_image_step = None

    def on_epoch_end(self, epoch, logs=None):
        step = _step(self.model)
        logs = logs or {}
        with self.train_writer.as_default(step=step):
            for name, value in logs.items():
                if not name.startswith("val_"):
                    tf.summary.scalar(name, value)
            tf.summary.scalar("learning_rate", self.model.optimizer.learning_rate)
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        if val:
            with self.val_writer.as_default(step=step):
                for name, value in val.items():
                    tf.summary.scalar(name, value)
        if self._last_image_step is None or step - self._last_image_step >= self.image_every:
            self._last_image_step = step
            self.write_images(step)
        self.train_writer.flush()
        self.val_writer.flush()

    def write_images(self, step):
        outputs = self.model(self.image_batch, training=False)
        frame = self.image_batch["frame"]
        with self.val_writer.as_default(step=step):
            for name, image in (
                ("frame_t", (frame + 1.0) / 2.0),
                ("frame_t_plus_1", (self.image_batch["next_frame"] + 1.0) / 2.0),
                ("predicted_frame", (outputs["frame"] + 1.0) / 2.0),
                ("mask", outputs["mask"]),
                ("mask_overlay", overlay(frame, outputs["mask"])),
            ):
                tf.summary.image(
                    name, tf.clip_by_value(image, 0.0, 1.0), max_outputs=self.max_images
                )


class PhaseTwoSwitches(keras.callbacks.Callback):
    """Turns on the discriminators and scheduled sampling at their start steps.

    Both change what `PhaseTwo.train_step` computes, so each is a Python switch on the model
    and the train function is retraced when one flips. The steps are multiples of
    `--log_every`, so the flips fall on `fit` epoch boundaries, also when a run resumes.

    Args:
        disc_start: first step with the adversarial losses; None: never (`--gan_weight=0`).
        ss_start: first step with scheduled sampling; None: never (`--train_rollout`).
    """

    def __init__(self, disc_start, ss_start):
        super().__init__()
        self.disc_start = disc_start
        self.ss_start = ss_start

    def _switch(self):
        step = _step(self.model)
        adversarial = self.disc_start is not None and step >= self.disc_start
        sampling = self.ss_start is not None and step >= self.ss_start
        if (adversarial, sampling) != (self.model.adversarial, self.model.scheduled_sampling):
            self.model.adversarial = adversarial
            self.model.scheduled_sampling = sampling
            self.model.make_train_function(force=True)
            logging.info(
                "Step %d: discriminators %s, scheduled sampling %s.",
                step,
                "on" if adversarial else "off",
                "on" if sampling else "off",
            )

    def on_train_begin(self, logs=None):
        self._switch()

    def on_epoch_begin(self, epoch, logs=None):
        self._switch()


class RolloutSummaries(keras.callbacks.Callback):
    """Writes a controlled rollout as a TensorBoard image every `every` steps.

    From the first frame of each of a few validation clips, the model rolls out the clip's
    true offsets, or, for data without ground truth, the offsets fitted between the model's own
    masks of consecutive true frames (docs/method.md's parameterized control); the image stacks the
    true frames over the generated ones, left to right.

    Args:
        log_dir: the run's directory; images go to `validation/` under it.
        clips: dict of arrays as returned by `synthetic.make_split` (`offsets` optional).
        every: steps between rollouts.
        num_clips: clips shown.
        steps: rollout length (at most the clip length - 1).
        image_size: the model's frame size, if the clips have another.
    """

    def __init__(self, log_dir, clips, every, num_clips=3, steps=8, image_size=None):
        super().__init__()
        self.writer = tf.summary.create_file_writer(f"{log_dir}/validation")
        steps = min(steps, clips["frames"].shape[1] - 1)
        self.frames = preprocess_frames(clips["frames"][:num_clips, : steps + 1], image_size)
        self.controls = None
        if "offsets" in clips:
            self.controls = mask_ops.translation_controls(
                tf.constant(clips["offsets"][:num_clips, :steps], tf.float32)
            )
        self.every = every
        self._last_step = None
        self._rollout = None

    def on_epoch_end(self, epoch, logs=None):
        step = _step(self.model)
        if self._last_step is not None and step - self._last_step < self.every:
            return
        self._last_step = step
        if self._rollout is None:
            self._rollout = rollout.make_rollout_fn(
                self.model.mask_generator, self.model.frame_generator
            )
        controls = self.controls
        if controls is None:
            batch, length, height, width = self.frames.shape[:4]
            flat = tf.reshape(self.frames, [-1, height, width, 3])
            masks = mask_ops.binarize(self.model.mask_generator(flat, training=False))
            masks = tf.reshape(masks, [batch, length, height, width, 1])
            controls = mask_ops.fitted_controls(masks)
        generated = self._rollout(self.frames[:, 0], controls)["frames"]
        generated = tf.concat([self.frames[:, :1], generated], axis=1)

        def strip(frames):
            return tf.concat(tf.unstack(frames, axis=1), axis=2)

        image = tf.concat([strip(self.frames), strip(generated)], axis=1)
        with self.writer.as_default(step=step):
            tf.summary.image(
                "rollout_true_over_generated",
                tf.clip_by_value((image + 1.0) / 2.0, 0.0, 1.0),
                max_outputs=image.shape[0],
            )
        self.writer.flush()


class Progress(keras.callbacks.Callback):
    """A progress bar over the whole run, with a few running values."""

    def __init__(
        self, total_steps, names=("loss", "background_loss", "sparsity_weight", "mask_mean")
    ):
        super().__init__()
        self.total_steps = total_steps
        self.names = names
        self.bar = None

    def on_train_begin(self, logs=None):
        self.bar = keras.utils.Progbar(self.total_steps, stateful_metrics=self.names)
        self.bar.update(_step(self.model))

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        values = [(n, float(logs[n])) for n in self.names if n in logs]
        self.bar.update(_step(self.model), values=values)
