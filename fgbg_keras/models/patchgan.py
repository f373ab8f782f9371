"""The PatchGAN discriminator and the crops that feed its local copy."""

import dataclasses

import keras
import tensorflow as tf
from keras import ops

from fgbg_common.checks import check_int
from fgbg_common.options import Options, fail, option
from fgbg_keras.layers import blocks
from fgbg_keras.models.network import Network

NORMS = ("instance", "none")


def _apply_patch_conv(x, filters, strides, name, norm):
    """Zero padding of 1, a 4x4 convolution, optional instance norm and LeakyReLU(0.2)."""
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    # A bias before instance norm is cancelled by the mean subtraction.
    x = keras.layers.Conv2D(
        filters, 4, strides=strides, use_bias=norm == "none", name=f"{name}_conv"
    )(x)
    if norm == "instance":
        x = blocks.apply_norm(x, -1, f"{name}_norm")
    return keras.layers.LeakyReLU(negative_slope=0.2, name=f"{name}_act")(x)


@keras.saving.register_keras_serializable(package="fgbg_keras")
class PatchDiscriminator(Network):
    """The pix2pix PatchGAN: one real/fake logit per 70x70 patch of the input.

    Five 4x4 convolutions, each after a zero padding of 1 pixel: three of stride 2 (widths `ndf`,
    `2 * ndf`, `4 * ndf`), one of stride 1 (`8 * ndf`), each followed by LeakyReLU(0.2) and, all
    but the first, by normalisation; then a stride-1 convolution to one channel. Every output
    logit sees a 70x70 window of the input. The logits are computed in float32 whatever the dtype
    policy.

    An input of size `H` gives an output of size `floor(H / 8) - 2` along that axis (a padded
    stride-2 layer maps `n` to `floor(n / 2)`, a padded stride-1 layer maps `n` to `n - 1`): 30 for
    256, 6 for 64, 2 for 32. Inputs need `H, W >= 24`.

    Args:
        input_channels: 3 for a frame alone, 6 when conditioned on f_t by concatenation
            `concat(f_t, f)`.
        ndf: width of the first layer. pix2pix: 64.
        norm: `"instance"` (`GroupNormalization(groups=-1)`) or `"none"`.
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        inputs: `[B, H, W, input_channels]` in [-1, 1].

    Returns:
        Logits `[B, floor(H / 8) - 2, floor(W / 8) - 2, 1]`, float32.

    Reference: pix2pix, arXiv 1611.07004, appendix 6.1.2; arXiv 2111.12747, section 3.3.
    """

    def __init__(self, input_channels=3, ndf=64, norm="instance", **kwargs):
        check_int("input_channels", input_channels)
        check_int("ndf", ndf)
        if norm not in NORMS:
            raise ValueError(f"`norm` must be one of {NORMS}. Received: norm={norm!r}")

        inputs = keras.Input((None, None, input_channels), name="image")
        x = _apply_patch_conv(inputs, ndf, 2, "conv0", "none")
        x = _apply_patch_conv(x, 2 * ndf, 2, "conv1", norm)
        x = _apply_patch_conv(x, 4 * ndf, 2, "conv2", norm)
        x = _apply_patch_conv(x, 8 * ndf, 1, "conv3", norm)
        x = keras.layers.ZeroPadding2D(1, name="logits_pad")(x)
        outputs = keras.layers.Conv2D(1, 4, dtype="float32", name="logits")(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        self.input_channels = input_channels
        self.ndf = ndf
        self.norm = norm

    def get_config(self):
        config = super().get_config()
        config.update({"input_channels": self.input_channels, "ndf": self.ndf, "norm": self.norm})
        return config


def mask_boxes(masks, margin=0.1):
    """The bounding box of each mask's foreground, grown by a margin.

    Boxes are in pixel-edge coordinates normalised by the frame size: pixel `(r, c)` of an
    `H x W` mask covers `[r / H, (r + 1) / H] x [c / W, (c + 1) / W]`, so a box of a single pixel is
    `[r / H, c / W, (r + 1) / H, (c + 1) / W]` and the whole frame is `[0, 0, 1, 1]`. (This is not
    `tf.image.crop_and_resize`'s convention, which maps `y` to the pixel centre `y * (H - 1)`;
    `local_crops` converts.)

    Args:
        masks: float tensor `[B, H, W, 1]` in [0, 1]; pixels above 0.5 are foreground.
        margin: non-negative float; each side moves out by `margin` times the box's extent along
            its axis, then the box is clipped to the frame.

    Returns:
        A float32 tensor `[B, 4]` of `(y1, x1, y2, x2)` in [0, 1]. A mask with no foreground
        gives the whole frame `[0, 0, 1, 1]`.
    """
    if margin < 0:
        raise ValueError(f"`margin` must be non-negative. Received: margin={margin}")
    foreground = ops.cast(masks, "float32")[..., 0] > 0.5
    height, width = ops.shape(foreground)[1], ops.shape(foreground)[2]

    def extent(active, size):
        # active: [B, size]; the edges of the first and past the last active index.
        index = ops.cast(ops.arange(size), "float32")
        low = ops.min(ops.where(active, index, ops.cast(size, "float32")), axis=1)
        high = ops.max(ops.where(active, index + 1.0, 0.0), axis=1)
        size = ops.cast(size, "float32")
        return low / size, high / size

    y1, y2 = extent(ops.any(foreground, axis=2), height)
    x1, x2 = extent(ops.any(foreground, axis=1), width)
    grow_y = margin * (y2 - y1)
    grow_x = margin * (x2 - x1)
    boxes = ops.stack([y1 - grow_y, x1 - grow_x, y2 + grow_y, x2 + grow_x], axis=1)
    boxes = ops.clip(boxes, 0.0, 1.0)
    empty = ops.logical_not(ops.any(foreground, axis=(1, 2)))
    whole = ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0], dtype="float32")
    return ops.where(empty[:, None], whole[None, :], boxes)


def local_crops(images, masks, size, margin=0.1):
    """Crops each image around its mask's box and resizes the crop to `size x size`.

    The crop samples the box `mask_boxes(masks, margin)` on a `size x size` grid of cell centres
    with bilinear interpolation, as `tf.image.resize` does with half-pixel centres: the whole-frame
    box at `size == H == W` returns the image itself. Samples that fall within half a pixel outside
    the frame take the value of the nearest border pixel.

    Args:
        images: float tensor `[B, H, W, C]`.
        masks: float tensor `[B, H, W, 1]` in [0, 1].
        size: int, the side of the output crops.
        margin: the box margin of `mask_boxes`.

    Returns:
        A float32 tensor `[B, size, size, C]`.
    """
    check_int("size", size)
    images = tf.cast(images, tf.float32)
    boxes = mask_boxes(masks, margin)
    shape = tf.shape(images)
    extent = tf.cast(tf.stack([shape[1], shape[2], shape[1], shape[2]]), tf.float32)
    # Edge coordinates (normalised) to the pixel-centre index of the first and last sample.
    edges = boxes * extent
    cell = (edges[:, 2:] - edges[:, :2]) / float(size)
    first = edges[:, :2] + 0.5 * cell - 0.5
    last = edges[:, 2:] - 0.5 * cell - 0.5
    # One replicated border pixel keeps every sample inside the image, so crop_and_resize never
    # fills with its extrapolation value; indices shift by 1 and the padded size is H + 2.
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    scale = tf.cast(tf.stack([shape[1], shape[2]]), tf.float32) + 1.0
    centre_boxes = tf.concat([(first + 1.0) / scale, (last + 1.0) / scale], axis=1)
    return tf.image.crop_and_resize(
        padded,
        centre_boxes,
        tf.range(shape[0]),
        [size, size],
        method="bilinear",
    )


@dataclasses.dataclass
class DiscriminatorOptions(Options):
    """Phase II's PatchGAN discriminators."""

    disc_start: int = option(
        500,
        "Phase 2: step at which the discriminators and the GAN loss join; a multiple of "
        "--log_every.",
    )
    disc_filters: int = option(
        64,
        "Phase 2: width of the PatchGAN discriminators' first layer (pix2pix: 64).",
        network=True,
    )
    disc_conditional: bool = option(
        True,
        "Phase 2: discriminators see concat(f_t, frame) (the draft), not the frame alone (the "
        "reference).",
        network=True,
    )
    local_disc: bool = option(
        True,
        "Phase 2: add the local discriminator on a crop around the target mask.",
        network=True,
    )
    local_crop_size: int = option(32, "Phase 2: side in pixels of the local discriminator's crop.")
    disc_learning_rate: float = option(
        0.0, "Phase 2: the discriminators' learning rate; 0 uses --learning_rate."
    )

    def resolved_disc_start(self):
        """The step at which the discriminators join; None: never (`--gan_weight=0`, whose
        zero weight would leave G's gradient as it is: they would train for nothing)."""
        return None if self.gan_weight == 0 else self.disc_start

    def check(self, config):
        self.finite_non_negative("disc_learning_rate")
        self.at_least(1, "disc_filters")
        if self.local_crop_size < 32:
            fail("local_crop_size", self.local_crop_size, "must be >= 32 (the PatchGAN's input)")
        if self.disc_start < 0:
            fail("disc_start", self.disc_start, "must be >= 0")
