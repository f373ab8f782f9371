import keras
import numpy as np
import pytest

from fgbg_keras.models.mask_generator import MaskGenerator
from tests.harness import check_layer

TINY = {"ngf": 4, "num_res_blocks": 1, "num_downsampling": 2}


@pytest.mark.parametrize(
    "size, choices",
    [
        ((32, 32), {}),
        ((16, 48), {}),
        ((64, 64), {}),
        ((16, 48), {"resampling": "transposed"}),
        ((16, 48), {"norm": "batch"}),
    ],
)
def test_output_shape_for_several_frame_sizes(size, choices):
    frames = np.random.default_rng(0).uniform(-1, 1, (2, *size, 3)).astype("float32")
    mask = check_layer(MaskGenerator, {**TINY, **choices}, frames, (2, *size, 1))
    mask = np.asarray(mask)
    assert mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0


def test_weight_count():
    model = MaskGenerator(**TINY)
    # stem conv+norm (4) + 2 down (8) + res block: 2 conv + 2 norm (8) + 2 up (8) + head conv (2).
    assert len(model.trainable_weights) == 4 + 8 + 8 + 8 + 2


def test_transposed_resampling_upsamples_by_transposed_convolutions():
    model = MaskGenerator(**TINY, resampling="transposed")
    layer_types = [type(layer).__name__ for layer in model.layers]
    assert "Conv2DTranspose" in layer_types and "UpSampling2D" not in layer_types
    # No reflection padding in the stride-2 stages: only the stem, residual block and head pad.
    assert layer_types.count("ReflectionPadding2D") == 4
    assert len(model.trainable_weights) == 4 + 8 + 8 + 8 + 2


def test_batch_norm_trains_its_moving_statistics():
    model = MaskGenerator(**TINY, norm="batch")
    assert len(model.trainable_weights) == 4 + 8 + 8 + 8 + 2
    assert len(model.non_trainable_weights) == 2 * 7  # moving mean and variance of 7 norms
    frames = np.random.default_rng(2).uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
    before = np.asarray(model(frames, training=False))
    model(frames, training=True)
    moved = model.get_layer("stem_norm").moving_mean.numpy()
    assert np.abs(moved).max() > 0
    assert not np.allclose(np.asarray(model(frames, training=False)), before)


def test_output_is_sigmoid_of_twice_the_logits():
    model = MaskGenerator(**TINY)
    frames = np.random.default_rng(1).uniform(-1, 1, (1, 16, 16, 3)).astype("float32")
    probe = keras.Model(model.inputs[0], model.get_layer("head_conv").output)
    z = np.asarray(probe(frames))
    np.testing.assert_allclose(np.asarray(model(frames)), (np.tanh(z) + 1) / 2, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"ngf": 0}, "ngf"),
        ({"num_res_blocks": -1}, "num_res_blocks"),
        ({"num_downsampling": 1.5}, "num_downsampling"),
        ({"norm": "group"}, "norm"),
        ({"resampling": "bilinear"}, "resampling"),
    ],
)
def test_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        MaskGenerator(**{**TINY, **kwargs})


def test_the_run_options_build_the_network_they_name():
    from fgbg_keras.config import ModelConfig
    from fgbg_keras.models import factory

    config = ModelConfig(
        mask_ngf=4, mask_res_blocks=1, mask_norm="batch", mask_resampling="transposed"
    )
    model = factory.build_mask_generator(config)
    assert (model.norm, model.resampling) == ("batch", "transposed")
    assert type(model.get_layer("res0_a_norm")).__name__ == "FusedBatchNormalization"
    assert type(model.get_layer("up0_conv")).__name__ == "Conv2DTranspose"


def test_a_bad_choice_is_named_with_the_choices():
    with pytest.raises(ValueError, match=r"`norm` must be one of \('instance', 'batch'\)"):
        MaskGenerator(**TINY, norm="group")
