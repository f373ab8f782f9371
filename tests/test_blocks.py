import numpy as np
import pytest

from fgbg_keras.layers.blocks import (
    FusedBatchNormalization,
    FusedGroupNormalization,
    InstanceNormalization,
    ReflectionPadding2D,
)
from tests.harness import check_layer


def test_reflection_padding_contract_and_values():
    x = np.arange(2 * 3 * 4 * 1, dtype="float32").reshape(2, 3, 4, 1)
    out = check_layer(ReflectionPadding2D, {"padding": 1}, x, (2, 5, 6, 1))
    out = np.asarray(out)
    # Reflection (not symmetric): the row above row 0 is row 1, the column left of col 0 is col 1.
    np.testing.assert_array_equal(out[:, 1:-1, 1:-1], x)
    np.testing.assert_array_equal(out[:, 0, 1:-1], x[:, 1])
    np.testing.assert_array_equal(out[:, 1:-1, 0], x[:, :, 1])


@pytest.mark.parametrize("padding", [-1, 1.5, "2"])
def test_reflection_padding_rejects_bad_padding(padding):
    with pytest.raises(ValueError, match="Received: padding="):
        ReflectionPadding2D(padding)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape,padding", [((2, 6, 7, 3), 1), ((1, 8, 9, 2), 3), ((1, 4, 5, 1), 1)])
def test_reflection_padding_in_training_equals_mirror_pad_forward_and_backward(
    shape, padding, dtype
):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape), dtype)
    padded_shape = (shape[0], shape[1] + 2 * padding, shape[2] + 2 * padding, shape[3])
    upstream = tf.constant(rng.normal(size=padded_shape), dtype)
    mirror = [[0, 0], [padding, padding], [padding, padding], [0, 0]]
    layer = ReflectionPadding2D(padding)

    @tf.function
    def run(x):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = layer(x, training=True)
            expected = tf.pad(x, mirror, mode="REFLECT")
        return y, expected, tape.gradient(y, x, upstream), tape.gradient(expected, x, upstream)

    y, expected, gradient, expected_gradient = run(x)
    ops = {op.type for op in run.get_concrete_function(x).graph.get_operations()}
    assert "MirrorPad" in ops and "ConcatV2" in ops  # both paths were built, the layer's sliced
    np.testing.assert_array_equal(y, expected)
    # The same sums of up to four upstream values, added in another order.
    tolerance = 1e-6 if dtype == "float32" else 2e-2
    np.testing.assert_allclose(
        tf.cast(gradient, "float32"),
        tf.cast(expected_gradient, "float32"),
        rtol=tolerance,
        atol=tolerance,
    )


def test_reflection_padding_uses_mirror_pad_outside_training_and_for_small_or_unknown_frames():
    import tensorflow as tf

    def op_types(padding, spec, training):
        fn = tf.function(lambda x: ReflectionPadding2D(padding)(x, training=training))
        return {op.type for op in fn.get_concrete_function(spec).graph.get_operations()}

    assert "MirrorPad" not in op_types(1, tf.TensorSpec([1, 4, 4, 1]), True)
    assert "MirrorPad" in op_types(1, tf.TensorSpec([1, 4, 4, 1]), False)
    assert "MirrorPad" in op_types(2, tf.TensorSpec([1, 5, 9, 1]), True)  # 5 < 2 * 2 + 2
    assert "MirrorPad" in op_types(1, tf.TensorSpec([1, None, None, 1]), True)


def _norm_and_gradients(layer, x, gamma, beta, **call_kwargs):
    import tensorflow as tf

    layer.build(x.shape)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, x.shape[-1]], x.dtype)])
    def run(x):  # unknown batch and frame size, as in the exported step models
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, **call_kwargs)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 3)
        return y, tape.gradient(loss, [x, layer.gamma, layer.beta])

    return run(tf.constant(x))


@pytest.mark.parametrize("groups", [-1, 3, 1])
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_normalization_equals_group_normalization_forward_and_backward(policy, groups):
    import keras

    rng = np.random.default_rng(0)
    # Channels of one group differ in mean and scale: a kernel that normalised each channel
    # on its own, or mixed the groups, would not match.
    x = 3.0 * rng.standard_normal((3, 10, 12, 6)) + np.arange(6) * [1, -2, 3, 0.5, 2, -1]
    x = x.astype("float32")
    gamma, beta = rng.standard_normal(6).astype("float32"), rng.standard_normal(6).astype("float32")
    keras.config.set_dtype_policy(policy)
    try:
        if groups == -1:
            layer = InstanceNormalization(epsilon=1e-5)
        else:
            layer = FusedGroupNormalization(groups=groups, epsilon=1e-5)
        fast = _norm_and_gradients(layer, x, gamma, beta)
        keras_gn = keras.layers.GroupNormalization(groups=groups, epsilon=1e-5)
        reference = _norm_and_gradients(keras_gn, x, gamma, beta)
    finally:
        keras.config.set_dtype_policy("float32")
    # bfloat16 outputs are rounded to 8 bits; the gradients are float32 in both policies.
    atol = 1e-5 if policy == "float32" else 3e-2
    np.testing.assert_allclose(np.float32(fast[0]), np.float32(reference[0]), atol=atol)
    for a, b in zip(fast[1], reference[1]):
        np.testing.assert_allclose(
            a.numpy(), b.numpy(), rtol=2e-2 if atol > 1e-5 else 1e-4, atol=atol
        )


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_batch_normalization_equals_batch_normalization(policy):
    import keras

    rng = np.random.default_rng(2)
    x = (3.0 * rng.standard_normal((3, 10, 12, 4)) + [1, -2, 3, 0.5]).astype("float32")
    gamma, beta = rng.standard_normal(4).astype("float32"), rng.standard_normal(4).astype("float32")
    keras.config.set_dtype_policy(policy)
    try:
        layers = [
            cls(momentum=0.9, epsilon=1e-5)
            for cls in (FusedBatchNormalization, keras.layers.BatchNormalization)
        ]
        trained = [_norm_and_gradients(layer, x, gamma, beta, training=True) for layer in layers]
        inferred = [np.float32(layer(x + 1.0, training=False)) for layer in layers]
    finally:
        keras.config.set_dtype_policy("float32")
    atol = 1e-4 if policy == "float32" else 3e-2
    (fast, fast_gradients), (reference, reference_gradients) = trained
    np.testing.assert_allclose(np.float32(fast), np.float32(reference), atol=atol)
    for a, b in zip(fast_gradients, reference_gradients):
        np.testing.assert_allclose(
            a.numpy(), b.numpy(), rtol=2e-2 if atol > 1e-4 else 1e-4, atol=atol
        )
    # One step of the moving statistics from their start (0, 1) towards the batch's.
    for name in ("moving_mean", "moving_variance"):
        a, b = (getattr(layer, name).numpy() for layer in layers)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        assert not np.allclose(a, 0.0 if name == "moving_mean" else 1.0)
    np.testing.assert_allclose(inferred[0], inferred[1], atol=atol)


def test_fused_batch_normalization_frozen_uses_moving_statistics():
    x = np.random.default_rng(3).normal(5.0, 2.0, (2, 4, 4, 3)).astype("float32")
    layer = FusedBatchNormalization(epsilon=1e-5)
    layer.build(x.shape)
    layer.trainable = False
    out = np.asarray(layer(x, training=True))
    # Moving mean 0 and variance 1: the input passes through, the statistics stay.
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-5), rtol=1e-4)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), 0.0)


def test_instance_normalization_contract():
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 4)).astype("float32")
    out = np.asarray(check_layer(InstanceNormalization, {"epsilon": 1e-5}, x, (2, 8, 8, 4), 2, 0))
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0.0, atol=1e-5)  # gamma 1, beta 0
    np.testing.assert_allclose(out.std(axis=(1, 2)), 1.0, atol=1e-3)
    with pytest.raises(ValueError, match="`groups` must be -1"):
        InstanceNormalization(groups=2)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_silu_equals_keras_silu_in_float32_forward_and_backward(dtype):
    import keras
    import tensorflow as tf

    from fgbg_keras.layers.blocks import silu

    wide = tf.constant(np.random.default_rng(0).normal(0, 4, (2, 5, 5, 3)), "float32")
    upstream = tf.constant(np.random.default_rng(1).normal(0, 1, wide.shape), "float32")
    x = tf.cast(wide, dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = silu(x)
    gradient = tape.gradient(y, x, tf.cast(upstream, dtype))
    assert y.dtype == dtype and gradient.dtype == dtype
    # Keras' SiLU in float32, of the same (rounded) inputs: the value rounded once to `dtype`.
    rounded = tf.cast(x, "float32")
    with tf.GradientTape() as tape:
        tape.watch(rounded)
        expected = keras.activations.silu(rounded)
    expected_gradient = tape.gradient(
        expected, rounded, tf.cast(tf.cast(upstream, dtype), "float32")
    )
    np.testing.assert_array_equal(y, tf.cast(expected, dtype))
    # bfloat16 rounds the slope and its product with the upstream gradient (8 bits of mantissa).
    tolerance = 1e-6 if dtype == "float32" else 1e-2
    np.testing.assert_allclose(
        tf.cast(gradient, "float32"), expected_gradient, rtol=tolerance, atol=tolerance
    )
    # Saved and rebuilt by name, as a model's config holds it.
    layer = keras.layers.Activation(silu)
    assert keras.layers.Activation.from_config(layer.get_config()).activation is silu
