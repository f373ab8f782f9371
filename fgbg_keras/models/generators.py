"""The registry of frame generators G: `--generator=NAME` builds the one registered as NAME.

A frame generator is a `keras.Model` with this contract, on which Phase I, Phase II, the rollout,
the evaluation and the exports rely:

- Called as `G({"frame": f_t, "mask": m_t, "target_mask": m_target}, training=...)`, with f_t
  float `[B, H, W, 3]` in [-1, 1] and both masks `[B, H, W, 1]` in [0, 1] (in Phase I the target
  mask is m_t itself), it returns a dict holding `"frame"`, the predicted next frame
  `[B, H, W, 3]`, float32 in [-1, 1].
- A generator with a codebook also returns `"latents"`, `"quantized"` and `"indices"` (see
  `VQFrameGenerator`) and has a `quantizer` with `num_embeddings`: the phases then add the
  codebook and commitment losses and log code usage. A generator without one adds nothing.
- `output_kernel`: the kernel of its last layer, where Phase II's adaptive GAN weight compares
  the gradients of the reconstruction and GAN terms.
- `downsampling_factor`: frame sizes must be divisible by it (checked when the networks are
  built, `factory.build_networks`).
- Optionally `reset_head()`: zeroes the last layer so that G draws its base frame; Phase II calls
  it on a fresh start with `--reset_generator_head`. A generator that draws the whole frame (the
  VQ-VAE) has none: a zero last layer would draw a blank frame.
- Deterministic layer names and `get_config`, like every network of fgbg.

A new generator is one file in this package holding the network and a builder registered with
`@generators.register(name)`; `fgbg_keras/models/__init__.py` imports that file. Its options are
fields of `ModelConfig` (each with its help text, which makes it a flag of train.py), and the
ablation grid trains it, and the variants it lists in `ablations`, without further changes.
"""

import dataclasses
from typing import Callable

from data_pipelines.registry import Registry


@dataclasses.dataclass(frozen=True)
class Generator:
    """A registered frame generator.

    Attributes:
        name: the value of `--generator`.
        build: `build(model_config, moving_masks)` -> the built-from-config generator, named
            `"frame_generator"`. `moving_masks` is False for Phase I, whose target mask is always
            the current mask and which must learn to redraw the object; True for Phase II and
            generation, where the target mask moves.
        ablations: `{ModelConfig field: values}`: settings that only this generator uses, whose
            other values the ablation grid trains with it.
    """

    name: str
    build: Callable
    ablations: dict


_GENERATORS = Registry("frame generator", "--generator")
# The registered generators' names, in the order they were registered; the `Generator` of one.
names = _GENERATORS.names
get = _GENERATORS.get


def register(name, ablations=None):
    """Decorator: registers `build(model_config, moving_masks)` as the generator `name`."""

    def decorator(build):
        _GENERATORS.register(name, Generator(name, build, dict(ablations or {})))
        return build

    return decorator
