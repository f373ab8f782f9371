"""Tests of the learning-rate and sparsity-weight schedules, with values worked out by hand."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from fgbg_keras import schedules


def _float(x):
    return float(np.asarray(x))


# initial 2e-4, total 1000, decay from step 500: (1000 - step) / 500 of the rate after step 500.
@pytest.mark.parametrize(
    "step, expected", [(0, 2e-4), (500, 2e-4), (750, 1e-4), (1000, 0.0), (2000, 0.0)]
)
def test_linear_decay_values(step, expected):
    schedule = schedules.LinearDecaySchedule(2e-4, total_steps=1000)
    assert _float(schedule(step)) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_linear_decay_serializes_and_drives_an_optimizer():
    schedule = schedules.LinearDecaySchedule(1e-3, total_steps=10, decay_start_fraction=0.2)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(schedule)))
    restored = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(restored, schedules.LinearDecaySchedule)
    assert restored.get_config() == schedule.get_config()
    optimizer = keras.optimizers.Adam(learning_rate=restored)
    # Step 6: decay starts at 2 and spans 8 steps, (10 - 6) / 8 = 0.5.
    optimizer.iterations.assign(6)
    assert _float(optimizer.learning_rate) == pytest.approx(5e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"initial_learning_rate": 0.0, "total_steps": 10}, "initial_learning_rate=0.0"),
        ({"initial_learning_rate": 1e-3, "total_steps": 0}, "total_steps=0"),
        (
            {"initial_learning_rate": 1e-3, "total_steps": 10, "decay_start_fraction": 1.5},
            "decay_start_fraction=1.5",
        ),
    ],
)
def test_linear_decay_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        schedules.LinearDecaySchedule(**kwargs)


def _halving():
    return schedules.HalvingSparsitySchedule(
        background_weight=50.0, start_ratio=16.0, halve_every=100, min_ratio=2.0
    )


def test_halving_weights():
    schedule = _halving()
    # Before any update, r = start_ratio.
    assert _float(schedule.weight) == pytest.approx(50 / 16)
    # r = max(16 / 2 ** floor(step / 100), 2).
    for step, ratio in [(0, 16), (99, 16), (100, 8), (250, 4), (350, 2), (10000, 2)]:
        assert _float(schedule.update(step, 1.0, 1.0)) == pytest.approx(50 / ratio)
        assert _float(schedule.weight) == pytest.approx(50 / ratio)


def test_halving_logs_a_smoothed_ratio():
    schedule = _halving()
    # The first measurement starts the average: 2 / 0.5 = 4.
    schedule.update(0, 2.0, 0.5)
    assert _float(schedule.ratio) == pytest.approx(4.0)
    # 0.9 * 4 + 0.1 * (1 / 0.5) = 3.8.
    schedule.update(1, 1.0, 0.5)
    assert _float(schedule.ratio) == pytest.approx(3.8)


def _controller(**kwargs):
    defaults = dict(initial_weight=1.0, target_start=8.0, target_end=2.0, target_steps=100)
    return schedules.ControllerSparsitySchedule(**{**defaults, **kwargs})


@pytest.mark.parametrize("step, expected", [(0, 8.0), (50, 5.0), (100, 2.0), (200, 2.0)])
def test_controller_target_line(step, expected):
    # 8 + (2 - 8) * min(step / 100, 1).
    assert _float(_controller().target(step)) == pytest.approx(expected)


def test_controller_raises_weight_when_ratio_below_target():
    schedule = _controller(gain=0.1)
    # Ratio 1 / 1 = 1 < 8: log(8) = 2.08 clips to 1, so each update multiplies by exp(0.1).
    for step in range(3):
        weight = schedule.update(step, 1.0, 1.0)
    assert _float(weight) == pytest.approx(math.exp(0.3), rel=1e-5)


def test_controller_lowers_weight_when_ratio_above_target():
    schedule = _controller(gain=0.1)
    # Ratio 100 > 8: log(8 / 100) clips to -1, so each update multiplies by exp(-0.1).
    for step in range(3):
        weight = schedule.update(step, 100.0, 1.0)
    assert _float(weight) == pytest.approx(math.exp(-0.3), rel=1e-5)


def test_controller_step_inside_the_clip():
    schedule = _controller(gain=1.0)
    # Ratio 4 / 1 = 4, target 8: exp(1 * log(8 / 4)) = 2.
    assert _float(schedule.update(0, 4.0, 1.0)) == pytest.approx(2.0, rel=1e-5)
    assert _float(schedule.ratio) == pytest.approx(4.0)


def test_controller_respects_bounds():
    rising = _controller(gain=1.0, max_weight=3.0)
    falling = _controller(gain=1.0, min_weight=0.5)
    for step in range(5):
        rising.update(step, 1.0, 1.0)
        falling.update(step, 100.0, 1.0)
    assert _float(rising.weight) == pytest.approx(3.0)
    assert _float(falling.weight) == pytest.approx(0.5)


def test_controller_ignores_non_finite_losses():
    schedule = _controller(gain=1.0)
    schedule.update(0, 4.0, 1.0)
    weight, ratio = _float(schedule.weight), _float(schedule.ratio)
    for background, sparsity in [(np.nan, 1.0), (1.0, np.inf), (np.nan, np.nan)]:
        assert _float(schedule.update(1, background, sparsity)) == weight
        assert _float(schedule.ratio) == ratio


def test_controller_guards_zero_sparsity_loss():
    schedule = _controller(gain=0.1)
    # L_spar = 0: the ratio is 1 / eps, far above target, so the weight falls by exp(-0.1).
    weight = schedule.update(0, 1.0, 0.0)
    assert np.isfinite(_float(schedule.ratio))
    assert _float(weight) == pytest.approx(math.exp(-0.1), rel=1e-5)


def test_controller_runs_inside_tf_function():
    eager, compiled = _controller(gain=0.5), _controller(gain=0.5)
    update = tf.function(compiled.update)
    for step, background, sparsity in [(0, 1.0, 1.0), (10, 30.0, 1.0), (60, 3.0, 0.0)]:
        expected = _float(eager.update(step, background, sparsity))
        got = update(tf.constant(step, tf.int64), tf.constant(background), tf.constant(sparsity))
        assert _float(got) == pytest.approx(expected, rel=1e-6)
    assert _float(compiled.ratio) == pytest.approx(_float(eager.ratio), rel=1e-6)


def test_checkpoint_saves_and_restores_the_state(tmp_path):
    schedule = _controller(gain=0.5)
    schedule.update(0, 2.0, 1.0)
    schedule.update(1, 3.0, 1.0)
    saved = [_float(v) for v in (schedule.weight, schedule.ratio, schedule.ratio_seen)]
    checkpoint = tf.train.Checkpoint(schedule=schedule)
    path = checkpoint.write(str(tmp_path / "ckpt"))
    schedule.update(2, 100.0, 1.0)
    assert _float(schedule.weight) != saved[0]

    fresh = _controller(gain=0.5)
    tf.train.Checkpoint(schedule=fresh).read(path).assert_consumed()
    assert [_float(v) for v in (fresh.weight, fresh.ratio, fresh.ratio_seen)] == saved
    checkpoint.read(path).assert_consumed()
    assert _float(schedule.weight) == saved[0]


def test_schedules_track_no_trainable_variables():
    for schedule in (_controller(), _halving()):
        assert len(schedule.variables) == 3
        assert not schedule.trainable_variables


@pytest.mark.parametrize(
    "name, kwargs",
    [
        (
            "controller",
            dict(initial_weight=2.0, target_start=8.0, target_end=2.0, target_steps=100),
        ),
        ("halving", dict(background_weight=50.0, start_ratio=16.0, halve_every=100, min_ratio=2.0)),
    ],
)
def test_registry_and_config(name, kwargs):
    schedule = schedules.make_sparsity_schedule(name, **kwargs)
    assert type(schedule) is schedules.SPARSITY_SCHEDULES[name]
    config = json.loads(json.dumps(schedule.get_config()))
    assert {key: config[key] for key in kwargs} == kwargs
    assert type(schedule).from_config(config).get_config() == schedule.get_config()


def test_registry_rejects_unknown_name():
    with pytest.raises(ValueError, match="name='constant'"):
        schedules.make_sparsity_schedule("constant")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target_end": 9.0}, "target_end=9.0"),
        ({"target_end": 0.0}, "target_end=0.0"),
        ({"target_steps": 0}, "target_steps=0"),
        ({"gain": 0.0}, "gain=0.0"),
        ({"smoothing": 1.0}, "smoothing=1.0"),
        ({"initial_weight": 5000.0}, "initial_weight=5000.0"),
        ({"min_weight": 2.0, "max_weight": 1.0}, "min_weight=2.0"),
    ],
)
def test_controller_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _controller(**kwargs)


def test_halving_rejects_bad_arguments():
    with pytest.raises(ValueError, match="min_ratio=32"):
        schedules.HalvingSparsitySchedule(50.0, start_ratio=16.0, halve_every=100, min_ratio=32)
    with pytest.raises(ValueError, match="halve_every=0"):
        schedules.HalvingSparsitySchedule(50.0, start_ratio=16.0, halve_every=0, min_ratio=2.0)


def test_off_keeps_the_sparsity_weight_at_zero_and_still_logs_the_ratio():
    schedule = schedules.make_sparsity_schedule("off")
    assert float(schedule.weight) == 0.0
    for step in range(3):
        assert float(schedule.update(step, 2.0, 0.5)) == 0.0
    assert float(schedule.ratio) == pytest.approx(4.0)
