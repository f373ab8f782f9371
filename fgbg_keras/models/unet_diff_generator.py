"""The frame generator G, difference variant: a U-Net draws a change inside the masks."""

import dataclasses
import math

import keras
from keras import ops

from fgbg_common.checks import check_int
from fgbg_common.options import Options, fail, option
from fgbg_keras.layers import blocks
from fgbg_keras.mask_ops import PASTE_REGIONS, dilate_masks, erode_masks, paste_foreground
from fgbg_keras.models import generators
from fgbg_keras.models.network import Network


def kept_interior(target_mask, pixels):
    """Where a pasted foreground is kept as it is: the target mask eroded by `pixels` (zero
    for `pixels == 0`).

    Args:
        target_mask: `[B, H, W, 1]`.
        pixels: int >= 0, the band inside the target mask's edge that stays changeable.

    Returns:
        float32 `[B, H, W, 1]` in {0, 1}.
    """
    if not pixels:
        return ops.zeros_like(ops.cast(target_mask, "float32"))
    return erode_masks(target_mask, pixels)


# How open the copy gate (`UNetDiffGenerator(copy_gate=True)`) is where it starts: the drawn
# frame's share of each pixel, the input frame's being the rest.
GATE_START = 0.05
_GATE_BIAS = math.log(GATE_START / (1.0 - GATE_START))


def level_widths(num_levels, filters, max_filters):
    """Channels of encoder level i: `min(filters * 2**i, max_filters)`, i < `num_levels`."""
    return [min(filters * 2**i, max_filters) for i in range(num_levels)]


@keras.saving.register_keras_serializable(package="fgbg_keras")
class UNet(Network):
    """U-Net that maps the frame and both masks to a difference map in [-2, 2].

    Encoder level i is a stride-2 3x3 convolution to `min(filters * 2**i, max_filters)` channels,
    group normalisation and LeakyReLU(0.2). The innermost level, the bottleneck at `H / 2**L` (1x1
    when `num_levels` follows the frame size down, as in the paper), has no normalisation, as in
    pix2pix. The decoder mirrors the encoder: nearest x2 upsampling, a 3x3 conv-norm-ReLU stage,
    then concatenation with the encoder output of the same resolution; at full resolution it is
    concatenated with the input itself, so the last layer sees the exact mask edges. A final 3x3
    convolution and `2 * tanh` give the difference (a difference of two frames in [-1, 1] lies in
    [-2, 2]), in float32 whatever the dtype policy. With `gate`, a second 3x3 convolution of the
    same features gives a fourth channel, the logit of a gate that starts at `GATE_START`
    everywhere (a zero kernel, a bias of its logit). Convolutions pad by reflection.

    Args:
        num_levels: stride-2 levels L; frame sizes must be divisible by `2**L`. Paper: 8 at
            256x256.
        filters: width of the first level.
        max_filters: cap on the width of every level.
        norm_groups: groups of the group normalisation; every level width must be divisible by
            it. Group rather than instance normalisation keeps statistics meaningful on the 2x2
            maps next to the bottleneck.
        input_channels: channels of the input, 5 for `concat(frame, mask, target_mask)`.
        gate: also give the gate's logit.
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        inputs: `[B, H, W, input_channels]`.

    Returns:
        Differences `[B, H, W, 3]` in [-2, 2], float32; with `gate`, `[B, H, W, 4]`, the gate's
        logit last.

    Reference: arXiv 2111.12747, section 3.4; U-Net, arXiv 1505.04597; pix2pix, arXiv 1611.07004.
    """

    def __init__(
        self,
        num_levels=4,
        filters=64,
        max_filters=512,
        norm_groups=8,
        input_channels=5,
        gate=False,
        **kwargs,
    ):
        check_int("num_levels", num_levels)
        check_int("filters", filters)
        check_int("max_filters", max_filters)
        check_int("norm_groups", norm_groups)
        check_int("input_channels", input_channels)
        widths = level_widths(num_levels, filters, max_filters)
        if any(w % norm_groups for w in widths):
            raise ValueError(
                f"Every level width {widths} must be divisible by `norm_groups`. Received: "
                f"filters={filters}, max_filters={max_filters}, norm_groups={norm_groups}"
            )

        inputs = keras.Input((None, None, input_channels), name="frame_and_masks")
        skips = [inputs]
        x = inputs
        for i, width in enumerate(widths[:-1]):
            x = blocks.apply_conv_norm_act(
                x, width, 3, f"down{i}", strides=2, groups=norm_groups, activation="leaky_relu"
            )
            skips.append(x)
        bottom = num_levels - 1
        x = blocks.apply_conv(x, widths[-1], 3, f"down{bottom}", strides=2)
        x = keras.layers.Activation("leaky_relu", name=f"down{bottom}_act")(x)
        for i in reversed(range(num_levels)):
            # Level i's decoder output has the resolution and width of encoder level i - 1.
            width = widths[i - 1] if i > 0 else filters
            x = blocks.apply_upsample(x, width, f"up{i}", groups=norm_groups)
            x = keras.layers.Concatenate(name=f"up{i}_skip")([x, skips[i]])
        features = x
        x = blocks.apply_conv(features, 3, 3, "head")
        x = keras.layers.Activation("tanh", dtype="float32", name="head_tanh")(x)
        outputs = keras.layers.Rescaling(2.0, dtype="float32", name="difference")(x)
        if gate:
            logit = blocks.apply_conv(
                features,
                1,
                3,
                "gate",
                kernel_initializer="zeros",
                bias_initializer=keras.initializers.Constant(_GATE_BIAS),
            )
            logit = keras.layers.Activation("linear", dtype="float32", name="gate_logit")(logit)
            outputs = keras.layers.Concatenate(dtype="float32", name="difference_and_gate")(
                [outputs, logit]
            )
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        self.num_levels = num_levels
        self.filters = filters
        self.max_filters = max_filters
        self.norm_groups = norm_groups
        self.input_channels = input_channels
        self.gate = bool(gate)
        self.downsampling_factor = 2**num_levels

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_levels": self.num_levels,
                "filters": self.filters,
                "max_filters": self.max_filters,
                "norm_groups": self.norm_groups,
                "input_channels": self.input_channels,
                "gate": self.gate,
            }
        )
        return config


def composite(frame, difference, region):
    """`(1 - r) * f + r * clip(f + d, -1, 1)`: the change applies only inside the region.

    Args:
        frame: float tensor `[B, H, W, 3]` in [-1, 1].
        difference: float tensor `[B, H, W, 3]`.
        region: float tensor `[B, H, W, 1]` in [0, 1].

    Returns:
        A float32 tensor `[B, H, W, 3]` in [-1, 1]; equal to `frame` wherever `region == 0`.
    """
    frame = ops.cast(frame, "float32")
    region = ops.cast(region, "float32")
    changed = ops.clip(frame + ops.cast(difference, "float32"), -1.0, 1.0)
    return (1.0 - region) * frame + region * changed


@keras.saving.register_keras_serializable(package="fgbg_keras")
class UNetDiffGenerator(keras.Model):
    """Difference frame generator: a U-Net changes f_t inside the masks.

    The `UNet` takes `concat(b, m_t, m_target)` and predicts a difference d; the prediction is
    `f_hat = (1 - r) * b + r * clip(b + d, -1, 1)` with `r = max(m_t, m_target)`. The union,
    because the object must be erased where it was as well as drawn where it goes; in Phase I
    `m_target == m_t` and `r` is the draft's m. The base b is f_t (the paper), or with
    `paste=True` f_t with the content of m_t copied by whole pixels to the target mask
    (`mask_ops.paste_foreground`): the layered view of the method, where the moved foreground is
    given and the network refines it and fills the background it uncovers. In Phase I both are
    f_t. With `paste=True` and `keep_pasted=k > 0`, the pasted object's interior (the target mask
    eroded by k pixels) is kept as pasted: `r` drops it, so the U-Net changes only the background
    the object uncovered and a band of k pixels inside the target mask's edge. Measured on the
    synthetic set, this stops the slow drift of the object's appearance that a U-Net free to
    repaint it accumulates over a long rollout. A still object (equal masks) keeps its interior
    too. With `region_margin=n > 0`, `r` is the union dilated by n pixels: the U-Net may also
    redraw what lies next to the masks, such as the links of an arm whose mask holds only the
    gripper and the lower links, which move with it (the pushing set). Phase I, where the
    generator must learn to redraw the object and a wider `r` would let it explain motion the
    masks miss, is built with `keep_pasted=0` and `region_margin=0` (`build_unet_generator`).

    With `copy_gate=True` the prediction is a per-pixel blend of the input frame and the frame
    drawn as above: `f_hat = f_t + g * (drawn - f_t)`, where the gate `g` in [0, 1] is the
    sigmoid of a fourth output of the U-Net, zero outside the union of the masks (dilated by
    `region_margin`). The U-Net then also sees f_t itself (beside the pasted base, which no
    longer shows what the foreground covered). The gate starts almost shut (`GATE_START`), so
    the generator starts as copy-last-frame and opens it only where drawing predicts better than
    copying: on real video, where M's masks flicker between frames and the controls fitted from
    them carry noise, pasting can do worse than leaving the frame as it is.

    Same call interface as `VQFrameGenerator`.

    Args:
        num_levels: stride-2 levels of the U-Net; frame sizes must be divisible by
            `2**num_levels`. Paper: 8 at 256x256 (down to 1x1); the caller picks it for its size.
        filters: width of the first U-Net level. Paper: 64.
        max_filters: cap on the width of every level. Paper: 512.
        norm_groups: groups of the U-Net's group normalisation.
        paste: start from the pasted foreground instead of f_t.
        paste_region: where `paste` pastes it (`mask_ops.paste_foreground`): `"target"`, the
            target mask, or `"moved"`, the current mask moved by the same whole pixels, so
            that a target mask that only changes shape (M's masks flicker on real video)
            moves nothing.
        keep_pasted: with `paste`, the width in pixels of the band inside the target mask's
            edge that the U-Net may change; the interior beyond it is kept as pasted. 0: the
            U-Net changes the whole union. Ignored without `paste`.
        region_margin: pixels by which the changeable region reaches beyond the union of the
            masks (0: the paper's region).
        memory: names of `generators.MEMORY` whose frame and mask the U-Net also sees, appended
            to its input channels: `"first"` the rollout's first frame (the object's appearance
            before any generated step), `"previous"` the frame fed to the previous step (how the
            object was moving). Each adds 4 input channels, whose weights start at zero when
            Phase II starts from a Phase I run (`runs.restore_fgbg_networks`).
        copy_gate: blend the drawn frame with the input frame by a learned gate (above). Adds
            3 input channels (after the memory's) and the gate's output, which start at zero
            and shut when Phase II starts from a Phase I run.
        band_where_moved: with `paste`, the U-Net changes pixels only within `keep_pasted`
            pixels (at least 1) of where the mask and the target mask differ: where they are
            equal, a still object, the prediction is the base frame itself.
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        inputs: a dict with `"frame"` f_t `[B, H, W, 3]` in [-1, 1], `"mask"` m_t `[B, H, W, 1]`
            and `"target_mask"` `[B, H, W, 1]`, both in [0, 1], and optionally the `MEMORY`
            inputs (`generators.memory_inputs`).
        training: standard Keras flag.

    Returns:
        A dict with `"frame"`, the predicted next frame `[B, H, W, 3]` float32 in [-1, 1].

    Reference: arXiv 2111.12747, section 3.4.
    """

    def __init__(
        self,
        num_levels=4,
        filters=64,
        max_filters=512,
        norm_groups=8,
        paste=False,
        paste_region="target",
        keep_pasted=0,
        region_margin=0,
        memory=(),
        copy_gate=False,
        band_where_moved=False,
        **kwargs,
    ):
        # The frame and masks come in as they are, float32 under a mixed precision policy too:
        # what the generator copies (outside the masks, a pasted object, the shut gate's
        # share) is the input frame itself, not its bfloat16 rounding (up to 1/256 off). The
        # U-Net inside still computes in the policy's dtype.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if paste_region not in PASTE_REGIONS:
            raise ValueError(
                f"`paste_region` must be one of {PASTE_REGIONS}. Received: "
                f"paste_region={paste_region!r}"
            )
        check_int("keep_pasted", keep_pasted, minimum=0)
        check_int("region_margin", region_margin, minimum=0)
        memory = tuple(memory)
        unknown = [name for name in memory if name not in generators.MEMORY]
        if unknown or len(set(memory)) != len(memory):
            raise ValueError(
                f"`memory` must name distinct entries of {sorted(generators.MEMORY)}. Received: "
                f"memory={memory}"
            )
        self.memory = memory
        self.copy_gate = bool(copy_gate)
        self.unet = UNet(
            num_levels,
            filters,
            max_filters,
            norm_groups,
            input_channels=5 + 4 * len(memory) + 3 * self.copy_gate,
            gate=self.copy_gate,
            name="unet",
        )
        self.num_levels = num_levels
        self.filters = filters
        self.max_filters = max_filters
        self.norm_groups = norm_groups
        self.paste = bool(paste)
        self.paste_region = paste_region
        self.keep_pasted = int(keep_pasted)
        self.region_margin = int(region_margin)
        self.band_where_moved = bool(band_where_moved)
        self.downsampling_factor = 2**num_levels

    @property
    def output_kernel(self):
        """The kernel of the U-Net's last convolution (for the VQGAN adaptive GAN weight)."""
        return self.unet.get_layer("head_conv").kernel

    def reset_head(self):
        """Zeroes the U-Net's last convolution, so that the prediction is the base frame (with
        `copy_gate`, the gate's convolution goes back to its start, almost shut: the prediction
        is then nearly the input frame).

        The other layers keep their weights; training grows the difference from zero, as a
        residual branch initialised at zero does.
        """
        head = self.unet.get_layer("head_conv")
        for weight in head.weights:
            weight.assign(keras.ops.zeros(weight.shape, weight.dtype))
        if self.copy_gate:
            gate = self.unet.get_layer("gate_conv")
            gate.kernel.assign(keras.ops.zeros(gate.kernel.shape, gate.kernel.dtype))
            gate.bias.assign(keras.ops.full(gate.bias.shape, _GATE_BIAS, gate.bias.dtype))

    def call(self, inputs, training=None):
        frame, mask, target_mask = (
            ops.cast(inputs[key], "float32") for key in ("frame", "mask", "target_mask")
        )
        base = frame
        if self.paste:
            base = paste_foreground(frame, mask, target_mask, self.paste_region)
        memory = [ops.cast(x, "float32") for x in generators.memory_inputs(inputs, self.memory)]
        seen = [frame] if self.copy_gate else []
        features = ops.concatenate([base, mask, target_mask, *memory, *seen], axis=-1)
        outputs = self.unet(features, training=training)
        changed = ops.maximum(mask, target_mask)
        if self.region_margin:
            changed = dilate_masks(changed, self.region_margin)
        region = changed
        if self.paste:
            region = region * (1.0 - kept_interior(target_mask, self.keep_pasted))
            if self.band_where_moved:  # near where the masks differ (binarised at 0.5)
                differ = ops.abs(mask - target_mask)
                region = region * dilate_masks(differ, max(self.keep_pasted, 1))
        drawn = composite(base, outputs[..., :3], region)
        if not self.copy_gate:
            return {"frame": drawn}
        gate = ops.cast(changed, "float32") * ops.sigmoid(outputs[..., 3:])
        return {"frame": frame + gate * (drawn - frame)}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_levels": self.num_levels,
                "filters": self.filters,
                "max_filters": self.max_filters,
                "norm_groups": self.norm_groups,
                "paste": self.paste,
                "paste_region": self.paste_region,
                "keep_pasted": self.keep_pasted,
                "region_margin": self.region_margin,
                "memory": list(self.memory),
                "copy_gate": self.copy_gate,
                "band_where_moved": self.band_where_moved,
            }
        )
        return config


def halvings(size):
    """How often `size` halves to a whole number: the U-Net's levels down to the smallest map
    (8 at 256)."""
    levels = 0
    while size > 1 and size % 2 == 0:
        levels, size = levels + 1, size // 2
    return levels


# The `ModelConfig` field (and flag) that gives the U-Net each entry of `generators.MEMORY`.
MEMORY_FLAGS = {"first": "unet_first_frame", "previous": "unet_previous_frame"}


def unet_memory(config):
    """The `memory` of a `ModelConfig`'s U-Net: the `MEMORY_FLAGS` entries that are on, in
    their order."""
    return tuple(name for name, flag in MEMORY_FLAGS.items() if getattr(config, flag))


@generators.register(
    "unet",
    "the difference U-Net of the paper's section 3.4: f_hat = f_t + d inside the masks, f_t "
    "outside (the default, measured best in controlled rollouts)",
    trains_on_rollouts=True,
    memory_flags=MEMORY_FLAGS,
    memory=unet_memory,
    gated=lambda config: config.unet_copy_gate,
)
def build_unet_generator(config, moving_masks=True):
    """The `UNetDiffGenerator` of a `ModelConfig` (its `unet_*` settings; `unet_levels=0`
    follows the frame size down). Phase I (`moving_masks=False`) keeps nothing as pasted and
    changes only the mask, with no margin, no memory and no gate: the generator learns to redraw
    the object from pairs of frames."""
    return UNetDiffGenerator(
        num_levels=config.unet_levels or halvings(config.image_size),
        filters=config.unet_filters,
        max_filters=config.unet_max_filters,
        paste=config.unet_paste,
        paste_region=config.unet_paste_region,
        keep_pasted=config.unet_keep_pasted if moving_masks else 0,
        region_margin=config.unet_region_margin if moving_masks else 0,
        memory=unet_memory(config) if moving_masks else (),
        copy_gate=config.unet_copy_gate and moving_masks,
        band_where_moved=config.unet_band_where_moved and moving_masks,
        name="frame_generator",
    )


@dataclasses.dataclass
class UNetOptions(Options):
    """The difference U-Net's settings (`--generator=unet`, `--unet_*`)."""

    unet_filters: int = option(
        32,
        "unet: width of the U-Net's first level, doubling per level (paper: 64; the default is "
        "smaller, for a CPU).",
    )
    unet_max_filters: int = option(
        256, "unet: the cap on the U-Net's widths (paper: 512; the default is smaller, for a CPU)."
    )
    unet_levels: int = option(
        0,
        "unet: stride-2 levels; 0 halves down to the smallest map the image size allows (8 levels "
        "at 256x256, as the paper).",
    )
    unet_paste: bool = option(
        True,
        "unet: start from f_t with the foreground copied by whole pixels to the target mask and "
        "the background it uncovers filled in from around it, instead of from f_t (the paper; "
        "--nounet_paste); the U-Net then refines both. No effect in Phase 1, where the masks do "
        "not move.",
        moving_masks_only=True,
    )
    unet_paste_region: str = option(
        "target",
        "unet with --unet_paste: where the moved foreground is pasted. target: the target mask. "
        "moved: the current mask moved by the same whole pixels, so that a target mask that "
        "differs from the current one only in shape (M's masks of a still object flicker on "
        "real video) moves nothing. No effect in Phase 1.",
        choices=PASTE_REGIONS,
        moving_masks_only=True,
    )
    unet_keep_pasted: int = option(
        1,
        "unet with --unet_paste: the U-Net changes only the background the object uncovered and "
        "a band this many pixels wide inside the target mask's edge; the object's interior stays "
        "the exact pasted copy. 0: it changes the whole union of the masks. No effect in Phase 1.",
        moving_masks_only=True,
    )
    unet_band_where_moved: bool = option(
        False,
        "unet with --unet_paste: the U-Net changes only pixels within --unet_keep_pasted pixels "
        "(at least 1) of where the current and the target masks differ, so that where they are "
        "equal (a still object) the prediction is the frame itself. No effect in Phase 1.",
        moving_masks_only=True,
    )
    unet_region_margin: int = option(
        0,
        "unet: the U-Net may also change the pixels within this many pixels of the union of the "
        "masks (0: the union only, the paper). For objects whose mask misses parts that move "
        "with it, such as an arm's upper links. No effect in Phase 1.",
        moving_masks_only=True,
    )
    unet_first_frame: bool = option(
        False,
        "unet: the U-Net also sees the rollout's first frame and its mask at every step: the "
        "object as it looked before any generated step. No effect in Phase 1; its weights "
        "start at zero from the Phase 1 run.",
        moving_masks_only=True,
    )
    unet_previous_frame: bool = option(
        False,
        "unet: the U-Net also sees the frame and mask the previous rollout step was fed: how the "
        "object was moving. No effect in Phase 1; its weights start at zero from the Phase 1 run.",
        moving_masks_only=True,
    )
    unet_copy_gate: bool = option(
        False,
        "unet: the prediction is a per-pixel blend, by a gate the U-Net learns, of the frame it "
        "draws and the input frame, starting almost all input frame: the generator starts as "
        "copy-last-frame and draws only where that predicts better (real video, whose masks and "
        "controls are noisy). No effect in Phase 1.",
        moving_masks_only=True,
    )

    def check(self, config):
        self.at_least(1, "unet_filters", "unet_max_filters")
        self.at_least(0, "unet_levels", "unet_keep_pasted", "unet_region_margin")
        for name in ("unet_filters", "unet_max_filters"):
            if getattr(self, name) % 8:
                fail(name, getattr(self, name), "must be a multiple of 8 (the group norm's groups)")
