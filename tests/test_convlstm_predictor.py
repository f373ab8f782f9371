import keras
import numpy as np
import pytest
import tensorflow as tf

from fgbg_keras.models.convlstm_predictor import ConvLSTMPredictor
from tests.harness import check_layer

TINY = {"filters": 4, "lstm_filters": 8}


def inputs(batch=2, size=16, steps=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "frame": rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32"),
        "offsets": rng.uniform(-3, 3, (batch, steps, 2)).astype("float32"),
    }


def test_contract():
    # Encoder 2 x (kernel, bias), ConvLSTM (kernel, recurrent kernel, bias), decoder 2 x 2, head 2.
    out = check_layer(
        ConvLSTMPredictor, TINY, inputs(), (2, 3, 16, 16, 3), expected_num_trainable_weights=13
    )
    assert np.all(np.abs(np.asarray(out)) <= 1.0)


def test_steps_depend_on_their_own_and_earlier_controls_only():
    model = ConvLSTMPredictor(**TINY)
    data = inputs(steps=4)
    out = np.asarray(model(data))
    changed = {**data, "offsets": data["offsets"].copy()}
    changed["offsets"][:, 2] += 5.0
    again = np.asarray(model(changed))
    np.testing.assert_array_equal(again[:, :2], out[:, :2])
    assert np.abs(again[:, 2:] - out[:, 2:]).max() > 1e-4


def moving_squares(batch=8, size=16, steps=4, seed=0):
    """A bright square on grey moving by whole-pixel offsets: frames `[B, T + 1, S, S, 3]`."""
    rng = np.random.default_rng(seed)
    offsets = rng.integers(-2, 3, (batch, steps, 2)).astype("float32")
    frames = np.full((batch, steps + 1, size, size, 3), -0.5, "float32")
    for b in range(batch):
        x, y = rng.integers(5, 8, 2)
        for t in range(steps + 1):
            frames[b, t, y : y + 4, x : x + 4] = 1.0
            if t < steps:
                x, y = x + int(offsets[b, t, 0]), y + int(offsets[b, t, 1])
    return frames, offsets


def test_it_learns_to_move_the_square_with_the_controls():
    keras.utils.set_random_seed(0)
    frames, offsets = moving_squares(steps=2)
    model = ConvLSTMPredictor(filters=8, lstm_filters=16)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mae")
    x = {"frame": frames[:, 0], "offsets": offsets}
    before = model.evaluate(x, frames[:, 1:], verbose=0)
    # 500 steps on the whole batch, as one epoch: fit's per-epoch work would double the time.
    steps = tf.data.Dataset.from_tensors((x, frames[:, 1:])).repeat(500)
    model.fit(steps, epochs=1, shuffle=False, verbose=0)
    after = model.evaluate(x, frames[:, 1:], verbose=0)
    assert after < 0.4 * before, (before, after)
    # It uses the controls: told that the square stays put, it draws it in the wrong place.
    still = model.evaluate({**x, "offsets": np.zeros_like(offsets)}, frames[:, 1:], verbose=0)
    assert still > 2.0 * after, (still, after)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="filters=0"):
        ConvLSTMPredictor(filters=0)
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvLSTMPredictor(**TINY)(inputs(size=18))
