"""Builds the networks of a run from its `ModelConfig`."""

from fgbg_keras.layers.vector_quantizer import VectorQuantizer
from fgbg_keras.models.mask_generator import MaskGenerator
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


def build_frame_generator(config):
    """The VQ-VAE frame generator G of a `ModelConfig`."""
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
