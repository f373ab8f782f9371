import keras
import numpy as np
import pytest

from fgbg_keras.layers import blocks
from fgbg_keras.layers.vector_quantizer import VectorQuantizer
from fgbg_keras.models.vq_autoencoder import VQDecoder, VQEncoder
from fgbg_keras.models.vq_frame_generator import VQFrameGenerator
from tests.harness import check_layer, config_round_trip

FILTERS = [8, 16]


def make_generator(quantize="joint", condition="split", latent_dim=8):
    channels = 3 if condition == "split" else 4
    return VQFrameGenerator(
        VQEncoder(FILTERS, latent_dim, num_res_blocks=1, input_channels=channels),
        VQDecoder(FILTERS, latent_dim, num_res_blocks=1),
        VectorQuantizer(16, latent_dim),
        quantize=quantize,
        condition=condition,
    )


def inputs(batch=2, size=(16, 16), seed=0):
    rng = np.random.default_rng(seed)
    mask = (rng.uniform(size=(batch, *size, 1)) > 0.5).astype("float32")
    return {
        "frame": rng.uniform(-1, 1, (batch, *size, 3)).astype("float32"),
        "mask": mask,
        "target_mask": mask,
    }


@pytest.mark.parametrize("size", [(16, 16), (8, 24), (32, 32)])
def test_encoder_decoder_shapes(size):
    x = np.zeros((2, *size, 3), "float32")
    z = check_layer(
        VQEncoder, {"filters": FILTERS, "latent_dim": 8}, x, (2, size[0] // 2, size[1] // 2, 8)
    )
    check_layer(VQDecoder, {"filters": FILTERS, "latent_dim": 8}, np.asarray(z), (2, *size, 3))


@pytest.mark.parametrize("quantize, rows", [("joint", 2), ("separate", 4)])
@pytest.mark.parametrize("condition", ["split", "channel"])
@pytest.mark.parametrize("size", [(16, 16), (8, 24)])
def test_generator_shapes(quantize, rows, condition, size):
    generator = make_generator(quantize, condition)
    out = generator(inputs(size=size))
    h, w = size[0] // 2, size[1] // 2
    assert tuple(out["frame"].shape) == (2, *size, 3)
    assert tuple(out["latents"].shape) == (rows, h, w, 8)
    assert tuple(out["quantized"].shape) == (rows, h, w, 8)
    assert tuple(out["indices"].shape) == (rows, h, w)
    frame = np.asarray(out["frame"])
    assert np.all(np.abs(frame) <= 1.0)


@pytest.mark.parametrize("quantize", ["joint", "separate"])
@pytest.mark.parametrize("condition", ["split", "channel"])
def test_config_round_trip_and_same_output(quantize, condition):
    generator = make_generator(quantize, condition)
    data = inputs()
    out = generator(data)
    restored = config_round_trip(generator)
    restored(data)
    restored.set_weights(generator.get_weights())
    np.testing.assert_allclose(restored(data)["frame"], out["frame"], atol=1e-6)
    assert restored.quantize == quantize and restored.condition == condition


def test_split_streams_use_the_target_mask():
    generator = make_generator()
    frame = np.ones((1, 4, 4, 3), "float32")
    mask = np.zeros((1, 4, 4, 1), "float32")
    target = np.zeros((1, 4, 4, 1), "float32")
    target[0, 0, 0] = 1.0
    fg, bg = generator.streams(frame, mask, target)
    assert float(np.sum(fg)) == 3.0 and float(np.sum(bg)) == 45.0


def test_channel_streams_append_the_target_mask():
    generator = make_generator(condition="channel")
    frame = np.ones((1, 4, 4, 3), "float32")
    mask = np.ones((1, 4, 4, 1), "float32")
    target = np.full((1, 4, 4, 1), 0.5, "float32")
    fg, bg = generator.streams(frame, mask, target)
    np.testing.assert_array_equal(np.asarray(fg)[..., :3], 1.0)
    np.testing.assert_array_equal(np.asarray(bg)[..., :3], 0.0)
    np.testing.assert_array_equal(np.asarray(fg)[..., 3], 0.5)


def test_joint_quantizes_the_sum_of_the_streams():
    generator = make_generator("joint")
    data = inputs()
    out = generator(data)
    fg, bg = generator.streams(data["frame"], data["mask"], data["target_mask"])
    expected = generator.encoder(fg) + generator.encoder(bg)
    np.testing.assert_allclose(out["latents"], expected, atol=1e-5)


def test_zero_padding_is_the_references():
    """`padding="zero"`: no padding layers; every 3x3 convolution sees zeros beyond the border,
    and the stride-2 one pads one row and column after the image only, like taming-transformers'
    `Downsample` (pad (0, 1, 0, 1), then a valid convolution)."""
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    zero = VQEncoder(FILTERS, 8, padding="zero")
    assert not [layer for layer in zero.layers if isinstance(layer, blocks.ReflectionPadding2D)]
    reflect = VQEncoder(FILTERS, 8)
    reflect.set_weights(zero.get_weights())
    assert np.abs(np.asarray(zero(x)) - np.asarray(reflect(x))).max() > 1e-3
    assert config_round_trip(zero).padding == "zero"
    down = zero.get_layer("level0_down_conv")
    features = keras.Model(zero.input, down.input)(x)
    kernel, bias = down.get_weights()
    padded = np.pad(np.asarray(features), [(0, 0), (0, 1), (0, 1), (0, 0)])
    expected = keras.ops.conv(padded, kernel, strides=2, padding="valid") + bias
    np.testing.assert_allclose(down(features), expected, rtol=1e-5, atol=1e-5)
    decoder = VQDecoder(FILTERS, 8, padding="zero")
    assert tuple(decoder(np.asarray(zero(x))).shape) == (2, 16, 16, 3)
    with pytest.raises(ValueError, match="Received: padding='same'"):
        VQDecoder(FILTERS, 8, padding="same")


def test_rejects_mismatched_parts():
    with pytest.raises(ValueError, match="condition='channel'"):
        VQFrameGenerator(
            VQEncoder(FILTERS, 8),
            VQDecoder(FILTERS, 8),
            VectorQuantizer(16, 8),
            condition="channel",
        )
    with pytest.raises(ValueError, match="latent size"):
        VQFrameGenerator(VQEncoder(FILTERS, 8), VQDecoder(FILTERS, 4), VectorQuantizer(16, 8))
    with pytest.raises(ValueError, match="Received: quantize="):
        make_generator(quantize="both")
    with pytest.raises(ValueError, match="divisible by `norm_groups"):
        VQEncoder([12, 16], 8)


def test_gradient_reaches_encoder_through_the_quantizer():
    import tensorflow as tf

    generator = make_generator()
    data = {k: tf.constant(v) for k, v in inputs().items()}
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(generator(data, training=True)["frame"] ** 2)
    grads = tape.gradient(loss, generator.encoder.trainable_weights)
    assert all(g is not None for g in grads)
    assert max(float(tf.reduce_max(tf.abs(g))) for g in grads) > 0
