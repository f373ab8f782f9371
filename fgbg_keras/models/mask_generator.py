"""The mask network M: a frame in, a soft foreground mask out."""

import dataclasses

import keras

from fgbg_common.checks import check_int
from fgbg_common.options import Options, option
from fgbg_keras.layers import blocks
from fgbg_keras.models.network import Network

# `MaskGenerator`'s normalisations, as `blocks.apply_norm`'s `groups`.
NORMS = {"instance": -1, "batch": blocks.BATCH}
RESAMPLINGS = ("resize", "transposed")


@keras.saving.register_keras_serializable(package="fgbg_keras")
class MaskGenerator(Network):
    """ResNet mask generator in the CycleGAN style.

    A 7x7 stem, `num_downsampling` stride-2 convolutions, `num_res_blocks` residual blocks, as many
    upsampling stages, and a 7x7 convolution to one channel squashed by `(tanh(x) + 1) / 2` (the
    reference's sigmoid of 2x). One normalisation throughout (`norm`). The mask is computed in
    float32 whatever the dtype policy.

    Args:
        ngf: width of the stem; level i has `ngf * 2**i` channels. Paper: 64.
        num_res_blocks: residual blocks at the lowest resolution. Paper: 9.
        num_downsampling: stride-2 stages; frame sizes must be divisible by `2**num_downsampling`.
        image_channels: channels of the input frame.
        norm: one of `NORMS`: `"instance"` (each frame's own statistics), or `"batch"` (the
            batch's while training, moving averages at inference, as the authors' code).
        resampling: one of `RESAMPLINGS`: `"resize"` (reflection-padded stride-2 convolutions
            down; nearest-neighbour x2 and a reflection-padded 3x3 convolution up, free of
            checkerboard artefacts) or `"transposed"` (zero-padded stride-2 convolutions down,
            stride-2 transposed convolutions up, as CycleGAN and the authors' code: less work).
        **kwargs: standard `keras.Model` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: frames `[B, H, W, image_channels]` in [-1, 1].

    Returns:
        Masks `[B, H, W, 1]` in [0, 1], float32.

    Reference: arXiv 2111.12747, section 3.4; Johnson et al. 2016 / CycleGAN (arXiv 1703.10593).
    """

    def __init__(
        self,
        ngf=64,
        num_res_blocks=9,
        num_downsampling=2,
        image_channels=3,
        norm="instance",
        resampling="resize",
        **kwargs,
    ):
        check_int("ngf", ngf)
        check_int("num_res_blocks", num_res_blocks, minimum=0)
        check_int("num_downsampling", num_downsampling, minimum=0)
        check_int("image_channels", image_channels)
        for name, value, choices in (
            ("norm", norm, NORMS),
            ("resampling", resampling, RESAMPLINGS),
        ):
            if value not in choices:
                raise ValueError(
                    f"`{name}` must be one of {tuple(choices)}. Received: {name}={value!r}"
                )

        groups = NORMS[norm]
        resize = resampling == "resize"
        inputs = keras.Input((None, None, image_channels), name="frame")
        x = blocks.apply_conv_norm_act(inputs, ngf, 7, "stem", groups=groups)
        for i in range(num_downsampling):
            x = blocks.apply_conv_norm_act(
                x, ngf * 2 ** (i + 1), 3, f"down{i}", strides=2, groups=groups, reflect=resize
            )
        width = ngf * 2**num_downsampling
        for i in range(num_res_blocks):
            x = blocks.apply_residual_block(x, width, f"res{i}", groups=groups)
        upsample = blocks.apply_upsample if resize else blocks.apply_transposed_upsample
        for i in reversed(range(num_downsampling)):
            x = upsample(x, ngf * 2**i, f"up{i}", groups=groups)
        x = blocks.apply_conv(x, 1, 7, "head")
        # (tanh(x) + 1) / 2 == sigmoid(2x), computed in float32.
        x = keras.layers.Rescaling(2.0, dtype="float32", name="head_scale")(x)
        outputs = keras.layers.Activation("sigmoid", dtype="float32", name="mask")(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        self.ngf = ngf
        self.num_res_blocks = num_res_blocks
        self.num_downsampling = num_downsampling
        self.image_channels = image_channels
        self.norm = norm
        self.resampling = resampling
        self.downsampling_factor = 2**num_downsampling

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "ngf": self.ngf,
                "num_res_blocks": self.num_res_blocks,
                "num_downsampling": self.num_downsampling,
                "image_channels": self.image_channels,
                "norm": self.norm,
                "resampling": self.resampling,
            }
        )
        return config


@dataclasses.dataclass
class MaskOptions(Options):
    """The mask network's settings (`--mask_*`)."""

    mask_ngf: int = option(
        16, "Width of the mask network's stem (paper: 64; the default is smaller, for a CPU)."
    )
    mask_res_blocks: int = option(
        3, "Residual blocks of the mask network (paper: 9; the default is fewer, for a CPU)."
    )
    mask_downsampling: int = option(2, "Stride-2 stages of the mask network.")
    mask_norm: str = option(
        "instance",
        "Normalisation of the mask network: instance (each frame's own statistics) or batch "
        "(each replica's batch statistics while training, moving averages at inference: the "
        "authors' code's).",
        choices=tuple(NORMS),
    )
    mask_resampling: str = option(
        "resize",
        "The mask network's down- and upsampling: resize (reflection-padded stride-2 "
        "convolutions; nearest-neighbour x2 then a convolution, free of checkerboard artefacts) "
        "or transposed (zero-padded stride-2 convolutions; stride-2 transposed convolutions, as "
        "CycleGAN and the authors' code: less work).",
        choices=RESAMPLINGS,
    )

    def check(self, config):
        self.at_least(1, "mask_ngf")
        self.at_least(0, "mask_res_blocks", "mask_downsampling")
