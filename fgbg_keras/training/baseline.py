"""The ConvLSTM baseline as a phase: `python train.py --phase=baseline_convlstm`.

The baseline trains on the same data, windows and optimiser settings as fgbg (`--data`,
`--frames_per_clip`, `--clips_per_batch`, `--train_steps`, `--learning_rate`...): from the first
frame of each window it rolls out the other F - 1 frames on its own predictions, steered by the
window's ground-truth offsets (zeros on data without them), with an L1 loss on every frame. Like
every phase (`loop.train_and_evaluate`), it resumes from its last checkpoint, writes TensorBoard
scalars, and stops at a non-finite loss without overwriting the last good checkpoint; its
networks are loaded with `runs.restore_convlstm`.
"""

import os

import keras
import tensorflow as tf

from fgbg_keras.models import factory
from fgbg_keras.training import phases


def inputs_and_targets(batch):
    """A batch of windows -> the ConvLSTM's inputs (first frame, offsets; zeros without them)
    and its targets (the other frames)."""
    frames = batch["frames"]
    offsets = batch.get("offsets")
    if offsets is None:
        offsets = tf.zeros_like(frames[:, 1:, 0, 0, :2])  # keeps the static number of steps
    return {"frame": frames[:, 0], "offsets": offsets}, frames[:, 1:]


class ConvLSTMBaseline(phases.Phase):
    """`--phase=baseline_convlstm`: the ConvLSTM predictor with an L1 loss on its rollouts."""

    name = "baseline_convlstm"
    help = (
        "baseline_convlstm: train the ConvLSTM baseline on the same data (the data and training "
        "flags apply; evaluate it beside a fgbg run with `python -m fgbg_keras.evaluate "
        "--convlstm_dir`)."
    )
    sections = ("baseline",)
    fgbg_networks = False
    convlstm_network = True
    validates = False

    def keeps_offsets(self, config):
        return True

    def build(self, config, sample_batch):
        model = factory.build_convlstm(config)
        optimizer = phases.adam(config, config.train.learning_rate)
        model.compile(optimizer=optimizer, loss="mae", jit_compile=config.train.jit_compile)
        optimizer.build(model.trainable_variables)
        return model, optimizer

    def train_data(self, config, batches):
        return batches.map(inputs_and_targets).prefetch(tf.data.AUTOTUNE)

    def callbacks(self, config, model_dir, validation, writes=True):
        if not writes:
            return []
        return [keras.callbacks.TensorBoard(os.path.join(model_dir, "train"), write_graph=False)]

    def next_steps(self, model_dir):
        return (
            "Evaluate the baseline beside a fgbg run of the same data and frame size: python -m "
            f"fgbg_keras.evaluate --model_dir=FGBG_RUN --convlstm_dir={model_dir} "
            "--output=REPORT_DIR\n"
        )


PHASE = phases.register(ConvLSTMBaseline())
