"""The ConvLSTM baseline: a control-conditioned next-frame predictor.

The draft compares fgbg against ConvLSTM video prediction (Shi et al., arXiv:1506.04214). This
baseline gets what fgbg gets: the first frame and one control (dx, dy) per step, fed as two
constant planes beside the frame, so that it can move the object too. It rolls out on its own
predictions, in training as at test time, so that it learns the rollout it is evaluated on
(trained only on true previous frames, a ConvLSTM's rollouts blur within a few steps). On data
without ground-truth controls it gets zeros and is a plain next-frame predictor.
"""

import dataclasses

import keras
from keras import ops

from fgbg_common.checks import check_int
from fgbg_common.options import Options, option


@keras.saving.register_keras_serializable(package="fgbg_keras")
class ConvLSTMPredictor(keras.Model):
    """Predicts frames `t + 1 ... t + T` from frame `t` and T controls, one step at a time.

    Two stride-2 convolutions encode `concat(frame, dx plane, dy plane)`, a `ConvLSTM2D` cell
    carries the state from step to step at 1/4 of the frame size, two transposed convolutions
    decode, and a last convolution on `concat(decoded, frame)` gives the change to the frame:
    the next frame is `clip(frame + change, -1, 1)`, and the next step's input. (Predicting the
    whole frame instead, the baseline blurred towards grey on the synthetic set and fell below
    copy-first-frame from the first step.)

    Args:
        filters: width of the first encoder convolution (the second has twice as many).
        lstm_filters: channels of the ConvLSTM state.
        control_scale: multiplies the controls (pixels) before they become input planes.

    Call arguments:
        inputs: dict with `"frame"` float `[B, H, W, 3]` in [-1, 1], H and W divisible by 4,
            and `"offsets"` float `[B, T, 2]` (dx, dy per step, in pixels).

    Returns:
        float `[B, T, H, W, 3]`: the predicted frames.

    Reference: Shi et al., arXiv:1506.04214.
    """

    # Two stride-2 convolutions: frame sizes must be divisible by 4.
    downsampling_factor = 4

    def __init__(self, filters=32, lstm_filters=64, control_scale=0.5, **kwargs):
        super().__init__(**kwargs)
        check_int("filters", filters)
        check_int("lstm_filters", lstm_filters)
        self.filters = filters
        self.lstm_filters = lstm_filters
        self.control_scale = float(control_scale)
        conv = dict(padding="same", activation="relu")
        # One attribute per layer: layers kept in a list are not tracked by tf.train.Checkpoint.
        self.encode1 = keras.layers.Conv2D(filters, 3, strides=2, name="encode1", **conv)
        self.encode2 = keras.layers.Conv2D(2 * filters, 3, strides=2, name="encode2", **conv)
        self.convlstm = keras.layers.ConvLSTM2D(
            lstm_filters, 3, padding="same", return_state=True, name="convlstm"
        )
        # The ConvLSTM2D layer keeps its weights in its cell, which tf.train.Checkpoint does not
        # reach through the layer: tracked here, under this model.
        self.convlstm_cell = self.convlstm.cell
        self.decode1 = keras.layers.Conv2DTranspose(
            2 * filters, 3, strides=2, name="decode1", **conv
        )
        self.decode2 = keras.layers.Conv2DTranspose(filters, 3, strides=2, name="decode2", **conv)
        self.head = keras.layers.Conv2D(3, 3, padding="same", name="head")

    def _step(self, frame, offset, state):
        height, width = ops.shape(frame)[1], ops.shape(frame)[2]
        planes = ops.ones_like(frame[..., :2]) * ops.reshape(
            offset * self.control_scale, (-1, 1, 1, 2)
        )
        x = ops.concatenate([frame, ops.cast(planes, frame.dtype)], axis=-1)
        x = self.encode2(self.encode1(x))
        x, hidden, cell = self.convlstm(ops.expand_dims(x, 1), initial_state=state)
        x = self.decode2(self.decode1(x))
        x = x[:, :height, :width]
        change = self.head(ops.concatenate([x, ops.cast(frame, x.dtype)], axis=-1))
        return ops.clip(ops.cast(frame, change.dtype) + change, -1.0, 1.0), [hidden, cell]

    def call(self, inputs):
        frame, offsets = inputs["frame"], inputs["offsets"]
        height, width = frame.shape[1], frame.shape[2]
        if height is None or width is None:
            raise ValueError(
                f"The frame height and width must be known when the model is called. Received: "
                f"frame.shape={frame.shape}"
            )
        if height % 4 or width % 4:
            raise ValueError(
                f"Frame height and width must be divisible by 4. Received: frame.shape="
                f"{frame.shape}"
            )
        steps = offsets.shape[1]
        if steps is None:
            raise ValueError("`offsets` needs a static number of steps T: [B, T, 2].")
        zeros = ops.zeros(
            (ops.shape(frame)[0], height // 4, width // 4, self.lstm_filters), self.compute_dtype
        )
        state, frames = [zeros, zeros], []
        for t in range(steps):
            frame, state = self._step(frame, offsets[:, t], state)
            frames.append(frame)
        return ops.stack(frames, axis=1)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            lstm_filters=self.lstm_filters,
            control_scale=self.control_scale,
        )
        return config


@dataclasses.dataclass
class ConvLSTMOptions(Options):
    """The ConvLSTM baseline's settings (`--phase=baseline_convlstm`)."""

    convlstm_filters: int = option(32, "baseline_convlstm: width of the first encoder convolution.")
    convlstm_lstm_filters: int = option(64, "baseline_convlstm: channels of the ConvLSTM state.")

    def check(self, config):
        self.at_least(1, "convlstm_filters", "convlstm_lstm_filters")
