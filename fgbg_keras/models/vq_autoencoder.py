"""Encoder E and decoder D of the VQ-VAE frame generator."""

import keras

from fgbg_common.checks import check_int
from fgbg_keras.layers import blocks
from fgbg_keras.models.network import Network


def _check_padding(padding):
    if padding not in blocks.PADDINGS:
        raise ValueError(
            f"`padding` must be one of {blocks.PADDINGS}. Received: padding={padding!r}"
        )
    return padding == "reflect"


def _check_filters(filters, groups):
    if not filters:
        raise ValueError(f"`filters` must be a non-empty list. Received: filters={filters}")
    for value in filters:
        check_int("filters", value)
    if any(f % groups for f in filters):
        raise ValueError(
            f"Every entry of `filters` must be divisible by `norm_groups={groups}`. "
            f"Received: filters={filters}"
        )


@keras.saving.register_keras_serializable(package="fgbg_keras")
class VQEncoder(Network):
    """Convolutional encoder of the VQ-VAE: frames to a grid of latent vectors.

    Level i runs `num_res_blocks` residual blocks at width `filters[i]`; every level but the last
    ends with a stride-2 convolution, so the latent grid is `len(filters) - 1` times halved.

    Args:
        filters: widths per level, e.g. `[32, 64]` (one downsampling).
        latent_dim: size of each latent vector (the codebook's `n_z`).
        num_res_blocks: residual blocks per level.
        input_channels: 3 for frames, 4 when the target mask is a 4th channel
            (`condition="channel"`).
        norm_groups: groups of the group normalisation.
        padding: `"reflect"` or `"zero"` (taming-transformers' and the reference's; faster, no
            padding op of its own) for the 3x3 convolutions.
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        inputs: `[B, H, W, input_channels]`.

    Returns:
        Latents `[B, H / f, W / f, latent_dim]` with `f = 2 ** (len(filters) - 1)`.
    """

    def __init__(
        self,
        filters=(32, 64),
        latent_dim=32,
        num_res_blocks=1,
        input_channels=3,
        norm_groups=8,
        padding="reflect",
        **kwargs,
    ):
        filters = list(filters)
        check_int("norm_groups", norm_groups)
        _check_filters(filters, norm_groups)
        reflect = _check_padding(padding)
        check_int("latent_dim", latent_dim)
        check_int("num_res_blocks", num_res_blocks, minimum=0)
        check_int("input_channels", input_channels)

        inputs = keras.Input((None, None, input_channels), name="stream")
        x = blocks.apply_conv(inputs, filters[0], 3, "stem", reflect=reflect)
        for i, width in enumerate(filters):
            for j in range(num_res_blocks):
                x = blocks.apply_residual_block(
                    x,
                    width,
                    f"level{i}_res{j}",
                    groups=norm_groups,
                    activation=blocks.silu,
                    reflect=reflect,
                )
            if i < len(filters) - 1:
                x = blocks.apply_conv(
                    x, filters[i + 1], 3, f"level{i}_down", strides=2, reflect=reflect
                )
        x = blocks.apply_norm(x, norm_groups, "out_norm")
        x = keras.layers.Activation(blocks.silu, name="out_act")(x)
        outputs = keras.layers.Conv2D(latent_dim, 1, name="to_latent")(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        self.filters = filters
        self.latent_dim = latent_dim
        self.num_res_blocks = num_res_blocks
        self.input_channels = input_channels
        self.norm_groups = norm_groups
        self.padding = padding
        self.downsampling_factor = 2 ** (len(filters) - 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "latent_dim": self.latent_dim,
                "num_res_blocks": self.num_res_blocks,
                "input_channels": self.input_channels,
                "norm_groups": self.norm_groups,
                "padding": self.padding,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="fgbg_keras")
class VQDecoder(Network):
    """Convolutional decoder of the VQ-VAE: quantized latents to a frame in [-1, 1].

    The mirror of `VQEncoder`: levels in reverse order of `filters`, each but the first preceded
    by a x2 upsampling stage, then a 3x3 convolution to the image channels and `tanh`.

    Args:
        filters: the encoder's widths per level (given in the encoder's order).
        latent_dim: size of each latent vector.
        num_res_blocks: residual blocks per level.
        output_channels: channels of the frame.
        norm_groups: groups of the group normalisation.
        padding: `"reflect"` or `"zero"` (taming-transformers' and the reference's; faster, no
            padding op of its own) for the 3x3 convolutions.
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        inputs: `[B, h, w, latent_dim]`.

    Returns:
        Frames `[B, h * f, w * f, output_channels]` in [-1, 1], float32.
    """

    def __init__(
        self,
        filters=(32, 64),
        latent_dim=32,
        num_res_blocks=1,
        output_channels=3,
        norm_groups=8,
        padding="reflect",
        **kwargs,
    ):
        filters = list(filters)
        check_int("norm_groups", norm_groups)
        _check_filters(filters, norm_groups)
        reflect = _check_padding(padding)
        check_int("latent_dim", latent_dim)
        check_int("num_res_blocks", num_res_blocks, minimum=0)
        check_int("output_channels", output_channels)

        inputs = keras.Input((None, None, latent_dim), name="latents")
        x = blocks.apply_conv(inputs, filters[-1], 3, "stem", reflect=reflect)
        for i in reversed(range(len(filters))):
            if i < len(filters) - 1:
                x = blocks.apply_upsample(
                    x,
                    filters[i],
                    f"level{i}_up",
                    groups=norm_groups,
                    activation=blocks.silu,
                    reflect=reflect,
                )
            for j in range(num_res_blocks):
                x = blocks.apply_residual_block(
                    x,
                    filters[i],
                    f"level{i}_res{j}",
                    groups=norm_groups,
                    activation=blocks.silu,
                    reflect=reflect,
                )
        x = blocks.apply_norm(x, norm_groups, "out_norm")
        x = keras.layers.Activation(blocks.silu, name="out_act")(x)
        x = blocks.apply_conv(x, output_channels, 3, "to_frame", reflect=reflect)
        outputs = keras.layers.Activation("tanh", dtype="float32", name="frame")(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        self.filters = filters
        self.latent_dim = latent_dim
        self.num_res_blocks = num_res_blocks
        self.output_channels = output_channels
        self.norm_groups = norm_groups
        self.padding = padding
        self.downsampling_factor = 2 ** (len(filters) - 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "latent_dim": self.latent_dim,
                "num_res_blocks": self.num_res_blocks,
                "output_channels": self.output_channels,
                "norm_groups": self.norm_groups,
                "padding": self.padding,
            }
        )
        return config
