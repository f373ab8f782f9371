"""Builds the networks of a run from its config sections."""

import dataclasses
import math

import tensorflow as tf

from fgbg_common.options import Options, option
from fgbg_keras.models import generators
from fgbg_keras.models.convlstm_predictor import ConvLSTMPredictor
from fgbg_keras.models.mask_generator import MaskGenerator
from fgbg_keras.models.patchgan import PatchDiscriminator


def build_mask_generator(config):
    """The mask network M of a `ModelConfig`."""
    return MaskGenerator(
        ngf=config.mask_ngf,
        num_res_blocks=config.mask_res_blocks,
        num_downsampling=config.mask_downsampling,
        norm=config.mask_norm,
        resampling=config.mask_resampling,
        name="mask_generator",
    )


def build_frame_generator(config, moving_masks=True):
    """The frame generator G that `config.generator` names (`generators.get`); `moving_masks`
    is False for Phase I (see `generators.Generator`). Both are the same weights."""
    return generators.get(config.generator).build(config, moving_masks)


def check_frame_size(image_size, networks):
    """Raises a ValueError naming `--image_size` unless it is divisible by the downsampling of
    every network of `networks` (`{description: network}`), as the built networks report it."""
    factors = {name: network.downsampling_factor for name, network in networks.items()}
    total = math.lcm(*factors.values())
    if image_size % total:
        described = ", ".join(f"{name} {factor}" for name, factor in factors.items())
        raise ValueError(
            f"--image_size={image_size!r}: must be divisible by {total}, the total downsampling "
            f"of the networks ({described})"
        )


def build_networks(config, moving_masks=True, create_weights=False):
    """M and G of a `ModelConfig`, after checking that `image_size` suits both.

    Args:
        config: a `ModelConfig`.
        moving_masks: see `build_frame_generator`.
        create_weights: call both once on zeros at `image_size`, so that every weight exists
            (before restoring a checkpoint into them).

    Returns:
        `(mask_generator, frame_generator)`.

    Raises:
        ValueError: naming `--image_size` when the networks cannot take frames of that size.
    """
    mask_generator = build_mask_generator(config)
    frame_generator = build_frame_generator(config, moving_masks)
    check_frame_size(
        config.image_size,
        {"mask network": mask_generator, "frame generator": frame_generator},
    )
    if create_weights:
        mask_generator(tf.zeros([1, config.image_size, config.image_size, 3]))
        create_generator_weights(frame_generator, config.image_size)
    return mask_generator, frame_generator


def create_generator_weights(frame_generator, image_size):
    """Calls a frame generator once on zeros at `image_size`, so that every weight exists."""
    frame = tf.zeros([1, image_size, image_size, 3])
    mask = tf.zeros([1, image_size, image_size, 1])
    frame_generator({"frame": frame, "mask": mask, "target_mask": mask})


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


def build_convlstm(config):
    """The ConvLSTM baseline of a `RunConfig`, built at its frame size.

    Raises:
        ValueError: naming `--image_size` when the baseline cannot take frames of that size.
    """
    model = ConvLSTMPredictor(
        filters=config.baseline.convlstm_filters,
        lstm_filters=config.baseline.convlstm_lstm_filters,
        name="convlstm_baseline",
    )
    size = config.model.image_size
    check_frame_size(size, {"ConvLSTM baseline": model})
    model({"frame": tf.zeros([1, size, size, 3]), "offsets": tf.zeros([1, 1, 2])})
    return model


@dataclasses.dataclass
class NetworkOptions(Options):
    """The frame size and which frame generator (`--generator`, `generators.names()`)."""

    image_size: int = option(
        64,
        "Frame height and width in pixels; must be divisible by the networks' total downsampling.",
    )
    generator: str = option(
        "unet",
        "Frame generator: "
        + "; ".join(f"{name}: {generators.get(name).help}" for name in generators.names())
        + ".",
        choices=generators.names(),
    )

    def check(self, config):
        self.at_least(1, "image_size")
