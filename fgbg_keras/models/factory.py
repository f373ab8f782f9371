"""Builds the networks of a run from its `ModelConfig`."""

from fgbg_keras.layers.vector_quantizer import VectorQuantizer
from fgbg_keras.models.mask_generator import MaskGenerator
from fgbg_keras.models.patchgan import PatchDiscriminator
from fgbg_keras.models.unet_diff_generator import UNetDiffGenerator
from fgbg_keras.models.vq_autoencoder import VQDecoder, VQEncoder
from fgbg_keras.models.vq_frame_generator import VQFrameGenerator


def build_mask_generator(config):
    """The mask network M of a `ModelConfig`."""
    return MaskGenerator(
        ngf=config.mask_ngf,
        num_res_blocks=config.mask_res_blocks,
        num_downsampling=config.mask_downsampling,
        name="mask_generator",
    )


def _build_vqvae(config):
    encoder = VQEncoder(
        filters=config.generator_filters,
        latent_dim=config.embedding_dim,
        num_res_blocks=config.generator_res_blocks,
        input_channels=3 if config.condition == "split" else 4,
        name="encoder",
    )
    decoder = VQDecoder(
        filters=config.generator_filters,
        latent_dim=config.embedding_dim,
        num_res_blocks=config.generator_res_blocks,
        name="decoder",
    )
    quantizer = VectorQuantizer(
        num_embeddings=config.num_embeddings,
        embedding_dim=config.embedding_dim,
        use_ema=config.vq_ema,
        ema_decay=config.vq_ema_decay,
        dead_code_threshold=config.dead_code_threshold,
        name="quantizer",
    )
    return VQFrameGenerator(
        encoder,
        decoder,
        quantizer,
        quantize=config.quantize,
        condition=config.condition,
        name="frame_generator",
    )


def _build_unet(config, phase):
    return UNetDiffGenerator(
        num_levels=config.resolved_unet_levels,
        filters=config.unet_filters,
        max_filters=config.unet_max_filters,
        paste=config.unet_paste,
        # Phase I learns to redraw the object: nothing of it is kept as pasted.
        keep_pasted=config.unet_keep_pasted if phase == 2 else 0,
        name="frame_generator",
    )


def build_frame_generator(config, phase):
    """The frame generator G of a `ModelConfig` for `phase` (1, or 2 for Phase II and
    generation): `VQFrameGenerator` or `UNetDiffGenerator`. Both phases' generators have the
    same weights; they differ only in `ModelConfig.PHASE_TWO_ONLY` settings."""
    if config.generator == "unet":
        return _build_unet(config, phase)
    return _build_vqvae(config)


def build_discriminators(config):
    """The Phase II discriminators of a `PhaseTwoConfig`: a dict `"global"` (and `"local"`)."""
    channels = 6 if config.disc_conditional else 3
    names = ("global", "local") if config.local_disc else ("global",)
    return {
        name: PatchDiscriminator(
            input_channels=channels, ndf=config.disc_filters, name=f"{name}_discriminator"
        )
        for name in names
    }
