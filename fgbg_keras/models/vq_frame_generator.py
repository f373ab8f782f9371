"""The frame generator G, VQ-VAE variant: draws f_{t+1} from the two streams of f_t."""

import dataclasses

import keras
from keras import ops

from fgbg_common.options import Options, fail, option
from fgbg_keras.layers import blocks
from fgbg_keras.layers.vector_quantizer import VectorQuantizer
from fgbg_keras.models import generators
from fgbg_keras.models.vq_autoencoder import VQDecoder, VQEncoder

QUANTIZE_MODES = ("joint", "separate")
CONDITION_MODES = ("split", "channel")


@keras.saving.register_keras_serializable(package="fgbg_keras")
class VQFrameGenerator(keras.Model):
    """VQ-VAE frame generator over a foreground and a background stream.

    One encoder E (shared weights) encodes both streams in a single batched call. With
    `condition="split"` the streams are `m_target * f` and `(1 - m_target) * f`; with
    `condition="channel"` they are `[m * f, m_target]` and `[(1 - m) * f, m_target]` (E then takes
    4 channels). With `quantize="joint"` (the draft) `f_hat = D(q(z_fg + z_bg))`; with
    `quantize="separate"` (the reference) `f_hat = D(q(z_fg) + q(z_bg))`.

    Args:
        encoder: a `VQEncoder` (3 input channels for `"split"`, 4 for `"channel"`).
        decoder: a `VQDecoder` with the encoder's `latent_dim`.
        quantizer: a `VectorQuantizer` with `embedding_dim == latent_dim`.
        quantize: `"joint"` or `"separate"`.
        condition: `"split"` or `"channel"`.
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        inputs: a dict with `"frame"` f_t `[B, H, W, 3]` in [-1, 1], `"mask"` m_t `[B, H, W, 1]`
            and `"target_mask"` `[B, H, W, 1]` (in Phase I the target mask is m_t).
        training: whether the quantizer may update its state.

    Returns:
        A dict with `"frame"`, the predicted next frame `[B, H, W, 3]` float32 in [-1, 1];
        `"latents"`, the encoder output that was quantized, and `"quantized"`, its raw codes
        (both `[N, h, w, latent_dim]`, N = B for joint and 2B for separate, for the VQ losses);
        `"indices"`, int32 code indices `[N, h, w]`.

    Reference: arXiv 2111.12747, section 3.2; VQ-VAE, arXiv 1711.00937.
    """

    def __init__(self, encoder, decoder, quantizer, quantize="joint", condition="split", **kwargs):
        super().__init__(**kwargs)
        if quantize not in QUANTIZE_MODES:
            raise ValueError(
                f"`quantize` must be one of {QUANTIZE_MODES}. Received: quantize={quantize!r}"
            )
        if condition not in CONDITION_MODES:
            raise ValueError(
                f"`condition` must be one of {CONDITION_MODES}. Received: condition={condition!r}"
            )
        expected_channels = 3 if condition == "split" else 4
        if encoder.input_channels != expected_channels:
            raise ValueError(
                f"`condition={condition!r}` needs an encoder with {expected_channels} input "
                f"channels. Received: encoder.input_channels={encoder.input_channels}"
            )
        if not (encoder.latent_dim == decoder.latent_dim == quantizer.embedding_dim):
            raise ValueError(
                "The encoder, decoder and quantizer must agree on the latent size. Received: "
                f"encoder.latent_dim={encoder.latent_dim}, "
                f"decoder.latent_dim={decoder.latent_dim}, "
                f"quantizer.embedding_dim={quantizer.embedding_dim}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.quantizer = quantizer
        self.quantize = quantize
        self.condition = condition
        self.downsampling_factor = encoder.downsampling_factor

    @property
    def output_kernel(self):
        """The kernel of the decoder's last convolution (for the adaptive GAN weight)."""
        return self.decoder.get_layer("to_frame_conv").kernel

    def streams(self, frame, mask, target_mask):
        """Returns the foreground and background streams, `[B, H, W, C]` each."""
        if self.condition == "split":
            return target_mask * frame, (1.0 - target_mask) * frame
        return (
            ops.concatenate([mask * frame, target_mask], axis=-1),
            ops.concatenate([(1.0 - mask) * frame, target_mask], axis=-1),
        )

    def call(self, inputs, training=None):
        frame = inputs["frame"]
        fg, bg = self.streams(frame, inputs["mask"], inputs["target_mask"])
        batch = ops.shape(frame)[0]
        z = self.encoder(ops.concatenate([fg, bg], axis=0), training=training)
        z = ops.cast(z, "float32")
        if self.quantize == "joint":
            latents = z[:batch] + z[batch:]
            quantized_st, quantized, indices = self.quantizer(latents, training=training)
            decoder_input = quantized_st
        else:
            latents = z
            quantized_st, quantized, indices = self.quantizer(latents, training=training)
            decoder_input = quantized_st[:batch] + quantized_st[batch:]
        prediction = self.decoder(decoder_input, training=training)
        return {
            "frame": ops.cast(prediction, "float32"),
            "latents": latents,
            "quantized": quantized,
            "indices": indices,
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "quantizer": keras.saving.serialize_keras_object(self.quantizer),
                "quantize": self.quantize,
                "condition": self.condition,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder", "quantizer"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


@generators.register(
    "vqvae",
    "the VQ-VAE of section 3.2",
    ablations={"quantize": QUANTIZE_MODES, "condition": CONDITION_MODES},
    rollout_note="its codebook would update once per rollout step",
)
def build_vqvae_generator(config, moving_masks=True):
    """The `VQFrameGenerator` of a `ModelConfig` (`generator_filters`, `generator_res_blocks`,
    `generator_norm_groups`, `generator_padding`, the codebook settings, `quantize`,
    `condition`); the same in every phase."""
    del moving_masks
    encoder = VQEncoder(
        filters=config.generator_filters,
        latent_dim=config.embedding_dim,
        num_res_blocks=config.generator_res_blocks,
        norm_groups=config.generator_norm_groups,
        input_channels=3 if config.condition == "split" else 4,
        padding=config.generator_padding,
        name="encoder",
    )
    decoder = VQDecoder(
        filters=config.generator_filters,
        latent_dim=config.embedding_dim,
        num_res_blocks=config.generator_res_blocks,
        norm_groups=config.generator_norm_groups,
        padding=config.generator_padding,
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


@dataclasses.dataclass
class VQOptions(Options):
    """The VQ-VAE frame generator's settings (`--generator=vqvae`)."""

    generator_filters: tuple = option(
        (16, 32, 64),
        "Widths of the VQ-VAE encoder levels, comma-separated; one stride-2 stage between "
        "consecutive levels.",
    )
    generator_res_blocks: int = option(
        1, "Residual blocks per level of the VQ-VAE encoder and decoder."
    )
    generator_norm_groups: int = option(
        8,
        "Groups of the VQ-VAE's group normalisation; every --generator_filters width must be "
        "divisible by it (taming-transformers' and the reference's: 32; faster on the CPU, where "
        "a group of one channel needs no separate scale and offset).",
    )
    generator_padding: str = option(
        "reflect",
        "Padding of the VQ-VAE's 3x3 convolutions: reflect, or zero (taming-transformers' and the "
        "reference's; faster on the CPU, no padding op of its own).",
        choices=blocks.PADDINGS,
    )
    num_embeddings: int = option(256, "Codebook size K.")
    embedding_dim: int = option(32, "Size n_z of each code vector.")
    quantize: str = option(
        "separate",
        "joint: f_hat = D(q(z_fg + z_bg)) (the draft); separate: D(q(z_fg) + q(z_bg)) (the "
        "reference; the default, measured best for masks on the synthetic set).",
        choices=QUANTIZE_MODES,
    )
    condition: str = option(
        "channel",
        "vqvae: split: streams cut by the target mask (the reference); channel: the target mask "
        "is a 4th encoder channel (the default, measured better in rollouts).",
        choices=CONDITION_MODES,
    )
    vq_ema: bool = option(
        False, "Update the codebook by exponential moving averages instead of gradients."
    )
    vq_ema_decay: float = option(
        0.99, "Decay of the codebook EMA and of the code-usage statistics."
    )
    dead_code_threshold: float = option(
        0.0, "Restart codes whose EMA usage falls below this (0 disables)."
    )

    def __post_init__(self):
        self.generator_filters = tuple(int(f) for f in self.generator_filters)

    def check(self, config):
        self.at_least(1, "num_embeddings", "embedding_dim")
        self.at_least(0, "generator_res_blocks")
        self.at_least(1, "generator_norm_groups")
        filters = ",".join(map(str, self.generator_filters))
        if not self.generator_filters or any(f < 8 or f % 8 for f in self.generator_filters):
            fail("generator_filters", filters, "must be a non-empty list of multiples of 8")
        if any(f % self.generator_norm_groups for f in self.generator_filters):
            fail(
                "generator_norm_groups",
                self.generator_norm_groups,
                f"must divide every --generator_filters width ({filters})",
            )
        if not 0.0 < self.vq_ema_decay < 1.0:
            fail("vq_ema_decay", self.vq_ema_decay, "must be in (0, 1)")
        if self.dead_code_threshold < 0:
            fail("dead_code_threshold", self.dead_code_threshold, "must be >= 0")
