import keras
import numpy as np
import pytest
import tensorflow as tf

from fgbg_keras.layers.vector_quantizer import VectorQuantizer, code_usage
from tests.harness import check_layer, config_round_trip


def _built(codebook, **kwargs):
    codebook = np.asarray(codebook, "float32")
    layer = VectorQuantizer(codebook.shape[0], codebook.shape[1], **kwargs)
    layer.build((None, codebook.shape[1]))
    layer.codebook.assign(codebook)
    if layer.use_ema:
        layer.ema_embed_sum.assign(codebook)
    return layer


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("use_ema, trainable, non_trainable", [(False, 1, 1), (True, 0, 4)])
def test_layer_contract(use_ema, trainable, non_trainable):
    z = np.random.default_rng(0).normal(size=(2, 4, 4, 8)).astype("float32")
    st, q, idx = check_layer(
        VectorQuantizer,
        {"num_embeddings": 16, "embedding_dim": 8, "use_ema": use_ema, "dead_code_threshold": 0.1},
        z,
        expected_output_shape=((2, 4, 4, 8), (2, 4, 4, 8), (2, 4, 4)),
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=non_trainable,
    )
    assert keras.backend.standardize_dtype(idx.dtype) == "int32"


def test_config_keeps_every_argument():
    layer = VectorQuantizer(
        7, 3, use_ema=True, ema_decay=0.9, epsilon=1e-3, dead_code_threshold=2.0, name="vq"
    )
    config = config_round_trip(layer).get_config()
    assert config["num_embeddings"] == 7
    assert config["embedding_dim"] == 3
    assert config["use_ema"] is True
    assert config["ema_decay"] == 0.9
    assert config["epsilon"] == 1e-3
    assert config["dead_code_threshold"] == 2.0
    assert config["name"] == "vq"


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_embeddings": 0}, "num_embeddings"),
        ({"num_embeddings": 4.0}, "num_embeddings"),
        ({"embedding_dim": -1}, "embedding_dim"),
        ({"use_ema": 1}, "use_ema"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"dead_code_threshold": -0.5}, "dead_code_threshold"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    args = {"num_embeddings": 4, "embedding_dim": 2, **kwargs}
    with pytest.raises(ValueError, match=f"Received: {name}="):
        VectorQuantizer(**args)


def test_wrong_input_depth_raises():
    with pytest.raises(ValueError, match="embedding_dim"):
        VectorQuantizer(4, 3)(np.zeros((2, 5), "float32"))


def test_indices_match_brute_force_and_quantized_is_gathered():
    rng = np.random.default_rng(1)
    codebook = rng.normal(size=(16, 8)).astype("float32")
    z = rng.normal(size=(2, 5, 5, 8)).astype("float32")
    layer = _built(codebook)

    st, q, idx = layer(z)

    brute = np.argmin(((z[..., None, :] - codebook) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(_np(idx), brute)
    np.testing.assert_array_equal(_np(q), codebook[brute])
    np.testing.assert_allclose(_np(st), _np(q), atol=1e-6)


def test_straight_through_gradient_is_upstream_gradient():
    rng = np.random.default_rng(2)
    layer = _built(rng.normal(size=(8, 4)))
    z = tf.constant(rng.normal(size=(3, 6, 4)), tf.float32)
    upstream = tf.constant(rng.normal(size=(3, 6, 4)), tf.float32)

    with tf.GradientTape() as tape:
        tape.watch(z)
        st, _, _ = layer(z)
        loss = tf.reduce_sum(st * upstream)

    np.testing.assert_array_equal(tape.gradient(loss, z).numpy(), upstream.numpy())


def test_codebook_gradient_only_at_used_codes():
    codebook = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [-9.0, 9.0]], "float32")
    z = np.array([[0.1, 0.2], [0.9, 1.3], [1.2, 0.7], [-0.3, 0.0]], "float32")
    layer = _built(codebook)

    with tf.GradientTape() as tape:
        _, q, idx = layer(z)
        loss = tf.reduce_sum(tf.square(tf.stop_gradient(z) - q))
    grad = tf.convert_to_tensor(tape.gradient(loss, layer.codebook.value)).numpy()

    # Codes 0 and 1 take two vectors each; the gradient of sum (e - z)^2 is 2 * sum (e - z).
    np.testing.assert_array_equal(_np(idx), [0, 1, 1, 0])
    expected = np.array(
        [
            2 * ((codebook[0] - z[0]) + (codebook[0] - z[3])),
            2 * ((codebook[1] - z[1]) + (codebook[1] - z[2])),
            [0.0, 0.0],
            [0.0, 0.0],
        ]
    )
    np.testing.assert_allclose(grad, expected, atol=1e-6)


def test_ema_moves_code_toward_cluster_mean():
    layer = _built([[0.0, 0.0], [10.0, 10.0]], use_ema=True, ema_decay=0.5, epsilon=1e-5)
    z = np.array([[1.0, 1.0], [1.2, 0.8], [0.8, 1.2], [1.0, 1.0]], "float32")

    layer(z, training=True)

    # Counts [4, 0], sums [[4, 4], 0]; the EMA state starts at count 1, sum = codebook:
    # cluster sizes 0.5 * 1 + 0.5 * [4, 0] = [2.5, 0.5], sums [[2, 2], [5, 5]], total n = 3.
    # Laplace: s = (c + eps) / (n + 2 eps) * n; code = sum / s -> about [0.8, 0.8] and [10, 10].
    eps = 1e-5
    s = (np.array([2.5, 0.5]) + eps) / (3.0 + 2 * eps) * 3.0
    expected = np.array([[2.0, 2.0], [5.0, 5.0]]) / s[:, None]
    np.testing.assert_allclose(_np(layer.codebook), expected, rtol=1e-6)
    np.testing.assert_allclose(_np(layer.codebook)[0], [0.8, 0.8], atol=1e-5)
    np.testing.assert_allclose(_np(layer.ema_cluster_size), [2.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(_np(layer.ema_embed_sum), [[2.0, 2.0], [5.0, 5.0]], rtol=1e-6)
    np.testing.assert_allclose(_np(layer.usage), [2.0, 0.0], rtol=1e-6)


@pytest.mark.parametrize("use_ema", [False, True])
def test_dead_code_is_restarted_at_a_batch_vector(use_ema):
    rng = np.random.default_rng(3)
    codebook = np.array([[0.0, 0.0], [1.0, 1.0], [100.0, 100.0]], "float32")
    centres = codebook[rng.integers(0, 2, size=16)]
    z = (centres + rng.uniform(-0.3, 0.3, size=(16, 2))).astype("float32")
    layer = _built(codebook, use_ema=use_ema, ema_decay=0.9, dead_code_threshold=0.5)
    before = [w.copy() for w in layer.get_weights()]

    layer(z, training=False)
    for w, b in zip(layer.get_weights(), before):
        np.testing.assert_array_equal(w, b)

    layer(z, training=True)
    # Code 2 receives nothing: usage 0.9 * 0.5 < 0.5, so it moves onto one of the 16 inputs.
    new_code = _np(layer.codebook)[2]
    assert np.min(np.abs(z - new_code).sum(axis=1)) == 0.0
    np.testing.assert_allclose(_np(layer.usage)[2], 0.5)
    if use_ema:
        np.testing.assert_allclose(_np(layer.ema_cluster_size)[2], 1.0)
        np.testing.assert_array_equal(_np(layer.ema_embed_sum)[2], new_code)
    else:
        np.testing.assert_array_equal(_np(layer.codebook)[:2], codebook[:2])


@pytest.mark.parametrize(
    "indices, num_embeddings, perplexity, fraction",
    [
        ([0, 0, 1, 1], 4, 2.0, 0.5),
        ([[2, 2], [2, 2]], 4, 1.0, 0.25),
        ([[0, 1], [2, 3]], 4, 4.0, 1.0),
        ([0, 0, 0, 1], 8, np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25))), 0.25),
    ],
)
def test_code_usage(indices, num_embeddings, perplexity, fraction):
    got_perplexity, got_fraction = code_usage(np.array(indices, "int32"), num_embeddings)
    np.testing.assert_allclose(_np(got_perplexity), perplexity, rtol=1e-6)
    np.testing.assert_allclose(_np(got_fraction), fraction, rtol=1e-6)
    assert keras.backend.standardize_dtype(got_perplexity.dtype) == "float32"
    assert keras.backend.standardize_dtype(got_fraction.dtype) == "float32"


def test_training_inside_tf_function_updates_state():
    rng = np.random.default_rng(4)
    layer = _built(rng.normal(size=(8, 4)), use_ema=True, dead_code_threshold=0.5)
    z = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    before = [w.copy() for w in layer.get_weights()]

    step = tf.function(
        lambda x: layer(x, training=True),
        input_signature=[tf.TensorSpec((None, 3, 3, 4), tf.float32)],
    )
    st, q, idx = step(z)

    assert tuple(idx.shape) == (2, 3, 3)
    for w, b in zip(layer.get_weights(), before):
        assert not np.array_equal(w, b)


def test_fit_step_with_ema_and_restarts():
    inputs = keras.Input((4, 4, 3))
    latents = keras.layers.Dense(4)(inputs)
    vq = VectorQuantizer(8, 4, use_ema=True, dead_code_threshold=0.5)
    st, _, _ = vq(latents)
    model = keras.Model(inputs, keras.layers.Dense(3)(st))
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(5).normal(size=(4, 4, 4, 3)).astype("float32")
    usage_before = _np(vq.usage).copy()

    model.fit(x, x, batch_size=4, epochs=1, verbose=0)

    assert not np.array_equal(_np(vq.usage), usage_before)
    assert np.all(np.isfinite(_np(vq.codebook)))


def test_mixed_bfloat16_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = VectorQuantizer(16, 8, use_ema=True, dead_code_threshold=0.5)
        z = tf.cast(tf.random.normal((2, 4, 4, 8)), "bfloat16")
        st, q, idx = layer(z, training=True)
    finally:
        keras.config.set_dtype_policy(previous)

    assert tuple(st.shape) == (2, 4, 4, 8)
    assert tuple(q.shape) == (2, 4, 4, 8)
    assert tuple(idx.shape) == (2, 4, 4)
    assert keras.backend.standardize_dtype(st.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(q.dtype) == "float32"
    assert keras.backend.standardize_dtype(layer.codebook.dtype) == "float32"
    assert np.all(np.isfinite(_np(tf.cast(st, tf.float32))))
    assert np.all(np.isfinite(_np(q)))
