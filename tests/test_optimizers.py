import keras
import numpy as np
import pytest
import tensorflow as tf

from fgbg_keras.training.optimizers import FusedAdam


def _train(optimizer, steps=4):
    """Variables of two shapes after `steps` updates with fixed gradients, in a tf.function (as
    the train steps run), with the optimizer's slots."""
    rng = np.random.default_rng(0)
    variables = [
        keras.Variable(rng.normal(size=shape).astype("float32")) for shape in [(3, 4), (5,)]
    ]
    gradients = [
        [rng.normal(size=v.shape).astype("float32") for v in variables] for _ in range(steps)
    ]

    @tf.function
    def step(grads):
        optimizer.apply(grads, variables)

    for grads in gradients:
        step(grads)
    return [v.numpy() for v in variables], [s.numpy() for s in optimizer.variables]


@pytest.mark.parametrize("amsgrad", [False, True])
def test_fused_adam_updates_as_keras_adam(amsgrad):
    kwargs = {
        "learning_rate": keras.optimizers.schedules.ExponentialDecay(1e-2, 2, 0.5),
        "beta_1": 0.5,
        "beta_2": 0.9,
        "amsgrad": amsgrad,
    }
    fused, fused_slots = _train(FusedAdam(**kwargs))
    reference, reference_slots = _train(keras.optimizers.Adam(**kwargs))
    # The same formula in one kernel: equal to float32 rounding. A wrong bias correction, beta
    # or step count moves the variables by about the learning rate (1e-2).
    for a, b in zip(fused, reference):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert len(fused_slots) == len(reference_slots)
    for a, b in zip(fused_slots, reference_slots):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_fused_adam_is_one_kernel_per_variable():
    optimizer = FusedAdam(1e-3)
    variables = [keras.Variable(np.zeros(shape, "float32")) for shape in [(3, 4), (5,), (2,)]]
    grads = [tf.ones(v.shape) for v in variables]
    optimizer.build(variables)
    graph = tf.function(lambda g: optimizer.apply(g, variables)).get_concrete_function(grads).graph
    ops = [op.type for op in graph.get_operations()]
    assert ops.count("ResourceApplyAdam") == 3
    assert "Sqrt" not in ops  # Adam's own update computes sqrt(v) as an op per variable


def test_fused_adam_config_round_trip():
    optimizer = FusedAdam(3e-4, beta_1=0.5, beta_2=0.9)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is FusedAdam
    assert (restored.beta_1, restored.beta_2) == (0.5, 0.9)
