"""The frame generator registry: every registered generator keeps the written contract of
`fgbg_keras.models.generators`, an unknown name is an error naming the flag, and the frame size
is checked against the built networks."""

import keras
import numpy as np
import pytest

from fgbg_keras.config import ModelConfig
from fgbg_keras.models import factory, generators

SMALL = {
    "image_size": 16,
    "mask_ngf": 4,
    "mask_res_blocks": 1,
    "unet_filters": 8,
    "unet_max_filters": 16,
    "generator_filters": (8, 16),
    "num_embeddings": 8,
    "embedding_dim": 4,
}


def contract_inputs(size, target_shift=0):
    rng = np.random.default_rng(0)
    mask = np.zeros((2, size, size, 1), "float32")
    mask[:, 4:10, 4:10] = 1.0
    return {
        "frame": rng.uniform(-1, 1, (2, size, size, 3)).astype("float32"),
        "mask": mask,
        "target_mask": np.roll(mask, target_shift, axis=2),
    }


def test_the_built_in_generators_are_registered_in_order():
    assert generators.names() == ("unet", "vqvae")
    assert generators.get("vqvae").ablations == {
        "quantize": ("joint", "separate"),
        "condition": ("split", "channel"),
    }
    assert ModelConfig.__dataclass_fields__["generator"].metadata["choices"] == generators.names()


@pytest.mark.parametrize("name", generators.names())
@pytest.mark.parametrize("moving_masks", [False, True])
def test_every_generator_keeps_the_contract(name, moving_masks):
    keras.utils.set_random_seed(0)
    config = ModelConfig(generator=name, **SMALL)
    generator = factory.build_frame_generator(config, moving_masks)
    assert generator.name == "frame_generator"
    data = contract_inputs(16, target_shift=2 if moving_masks else 0)
    outputs = generator(data, training=False)
    frame = np.asarray(outputs["frame"])
    assert frame.shape == (2, 16, 16, 3) and frame.dtype == np.float32
    assert np.all(np.abs(frame) <= 1.0)
    assert any(generator.output_kernel is v for v in generator.trainable_variables)
    assert 16 % generator.downsampling_factor == 0
    if "latents" in outputs:
        # A codebook: the phases add its losses and count its codes.
        assert {"quantized", "indices"} <= set(outputs)
        assert generator.quantizer.num_embeddings == config.num_embeddings
    if hasattr(generator, "reset_head"):
        generator.reset_head()
        # A zero head leaves the base frame: with still masks, f_t itself.
        still = contract_inputs(16)
        np.testing.assert_allclose(generator(still)["frame"], still["frame"], atol=1e-6)


def test_an_unknown_generator_is_an_error_naming_the_flag():
    config = ModelConfig(generator="gan", **SMALL)
    with pytest.raises(ValueError, match=r"--generator='gan': must be one of \('unet', 'vqvae'\)"):
        factory.build_frame_generator(config)
    with pytest.raises(ValueError, match="--generator='gan'"):
        config.validate(None)


def test_the_frame_size_is_checked_against_the_built_networks():
    # 24 halves three times, so the U-Net has 3 levels (8); the mask network downsamples by 4.
    mask_generator, frame_generator = factory.build_networks(
        ModelConfig(**{**SMALL, "image_size": 24})
    )
    assert (mask_generator.downsampling_factor, frame_generator.downsampling_factor) == (4, 8)
    config = ModelConfig(**{**SMALL, "image_size": 20, "unet_levels": 3})
    with pytest.raises(ValueError, match=r"--image_size=20: must be divisible by 8.*generator 8"):
        factory.build_networks(config)
    vqvae = ModelConfig(**{**SMALL, "generator": "vqvae", "image_size": 18})
    with pytest.raises(ValueError, match=r"--image_size=18: must be divisible by 4"):
        factory.build_networks(vqvae)


def test_a_generator_registers_once():
    with pytest.raises(ValueError, match="already registered"):
        generators.register("unet", "again")(lambda config, moving_masks: None)


def test_the_vqvae_normalises_the_groups_asked_for_and_a_count_that_does_not_divide_is_named():
    from fgbg_keras.layers.blocks import FusedGroupNormalization

    config = ModelConfig(**{**SMALL, "generator": "vqvae", "generator_norm_groups": 4})
    config.validate(None)
    generator = factory.build_frame_generator(config)
    groups = {
        layer.groups
        for network in (generator.encoder, generator.decoder)
        for layer in network.layers
        if isinstance(layer, FusedGroupNormalization)
    }
    assert groups == {4}
    config = ModelConfig(**{**SMALL, "generator": "vqvae", "generator_norm_groups": 16})
    with pytest.raises(ValueError, match=r"--generator_norm_groups=16: must divide every "):
        config.validate(None)
