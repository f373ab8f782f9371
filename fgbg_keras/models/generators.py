"""The registry of frame generators G: `--generator=NAME` builds the one registered as NAME.

A frame generator is a `keras.Model` with this contract, on which Phase I, Phase II, the rollout,
the evaluation and the exports rely:

- Called as `G({"frame": f_t, "mask": m_t, "target_mask": m_target}, training=...)`, with f_t
  float `[B, H, W, 3]` in [-1, 1] and both masks `[B, H, W, 1]` in [0, 1] (in Phase I the target
  mask is m_t itself), it returns a dict holding `"frame"`, the predicted next frame
  `[B, H, W, 3]`, float32 in [-1, 1].
- A generator with a codebook also returns `"latents"`, `"quantized"` and `"indices"` (see
  `VQFrameGenerator`) and has a `quantizer` with `num_embeddings`: the phases then add the
  codebook and commitment losses and log code usage (`codebook_terms`). A generator without
  one adds nothing.
- `output_kernel`: the kernel of its last layer, where Phase II's adaptive GAN weight compares
  the gradients of the reconstruction and GAN terms.
- `downsampling_factor`: frame sizes must be divisible by it (checked when the networks are
  built, `factory.build_networks`).
- Optionally `memory`: the names of `MEMORY` whose inputs it reads (see there); none if absent.
- Optionally `reset_head()`: zeroes the last layer so that G draws its base frame; Phase II calls
  it on a fresh start with `--reset_generator_head`. A generator that draws the whole frame (the
  VQ-VAE) has none: a zero last layer would draw a blank frame.
- Deterministic layer names and `get_config`, like every network of fgbg.

A new generator is one file in this package holding the network, its options (an `Options`
group of `fgbg_common.options`, which `fgbg_keras.config.ModelConfig` lists among its bases:
each field is then a flag of train.py) and a builder registered with
`@generators.register(name, help, ...)`, which says what it supports;
`fgbg_keras/models/__init__.py` imports that file. `--generator` lists it with its help, and
the ablation grid trains it, and the variants it lists in `ablations`, without further changes.
"""

import dataclasses
from collections.abc import Callable

from keras import ops

from fgbg_common.registry import Registry
from fgbg_keras import losses
from fgbg_keras.layers.vector_quantizer import code_usage


@dataclasses.dataclass(frozen=True)
class Generator:
    """A registered frame generator.

    Attributes:
        name: the value of `--generator`.
        help: what it is, for the help of `--generator`.
        build: `build(model_config, moving_masks)` -> the built-from-config generator, named
            `"frame_generator"`. `moving_masks` is False for Phase I, whose target mask is always
            the current mask and which must learn to redraw the object; True for Phase II and
            generation, where the target mask moves.
        ablations: `{ModelConfig field: values}`: settings that only this generator uses, whose
            other values the ablation grid trains with it.
        trains_on_rollouts: Phase II may train it on rollouts of its own outputs
            (`--train_rollout`); where not, `rollout_note` says why.
        memory_flags: `{MEMORY name: ModelConfig field}`: the settings that give it each
            memory input.
        memory: `memory(model_config)` -> the names of `MEMORY` that the built generator reads.
        gated: `gated(model_config)` -> whether the built generator blends its drawing with the
            input frame by a learned gate (which Phase II adds to a Phase I run's generator).
    """

    name: str
    help: str
    build: Callable
    ablations: dict
    trains_on_rollouts: bool = False
    rollout_note: str = ""
    memory_flags: dict = dataclasses.field(default_factory=dict)
    memory: Callable = lambda model_config: ()
    gated: Callable = lambda model_config: False


# Optional inputs of a rollout step, by name: the rollout's first frame and its mask, and the
# frame and mask the previous step was fed. A rollout (`rollout.rollout`, Phase II's
# `--train_rollout`) passes them all; a caller with no rollout (a pair of frames, one step) leaves
# them out, and a generator that reads them takes the current frame and mask in their place,
# which is what they are at a rollout's first step.
MEMORY = {"first": ("first_frame", "first_mask"), "previous": ("previous_frame", "previous_mask")}


def memory_inputs(inputs, memory):
    """The tensors of the `MEMORY` entries named in `memory`, frame then mask for each, from
    a generator's input dict; the current frame or mask stands in for one it lacks."""
    current = {"frame": inputs["frame"], "mask": inputs["mask"]}
    return [inputs.get(key, current[key.split("_")[1]]) for name in memory for key in MEMORY[name]]


def reads_memory(frame_generator):
    """The names of `MEMORY` that `frame_generator` reads (empty for most generators)."""
    return tuple(getattr(frame_generator, "memory", ()))


def check_memoryless(frame_generator, what):
    """Raises a ValueError when `frame_generator` reads `MEMORY` inputs, which `what` (a
    one-step model, whose caller keeps no rollout) has no inputs for."""
    memory = reads_memory(frame_generator)
    if memory:
        raise ValueError(
            f"{what} has no inputs for the rollout's memory that this run's frame generator "
            f"reads (the {' and '.join(memory)} frame). Use a whole rollout (the SavedModel's "
            "`generate`, `fgbg_keras.generate`), or a run trained without that memory."
        )


def rollout_inputs(frame, mask, target_mask, first, previous):
    """A rollout step's input dict: the current frame, mask and target, and the `MEMORY`
    inputs from `first` and `previous`, each a `(frame, mask)` pair."""
    return {
        "frame": frame,
        "mask": mask,
        "target_mask": target_mask,
        "first_frame": first[0],
        "first_mask": first[1],
        "previous_frame": previous[0],
        "previous_mask": previous[1],
    }


_GENERATORS = Registry("frame generator", "--generator")
# The registered generators' names, in the order they were registered; the `Generator` of one.
names = _GENERATORS.names
get = _GENERATORS.get


def register(name, help, ablations=None, **supports):
    """Decorator: registers `build(model_config, moving_masks)` as the generator `name`, which
    `help` describes; `supports` are the other fields of `Generator` (what it supports)."""

    def decorator(build):
        _GENERATORS.register(name, Generator(name, help, build, dict(ablations or {}), **supports))
        return build

    return decorator


def codebook_terms(frame_generator, outputs, commitment_beta):
    """The codebook's loss terms and code-usage statistics of a frame generator's outputs, which
    both phases add to their losses and logs.

    A generator without a codebook (the U-Net) contributes zero losses and no statistics.

    Returns:
        `({"codebook_loss", "commitment_loss"}, {"perplexity", "codes_used"} or {})`.
    """
    if "latents" not in outputs:
        zero = ops.zeros((), "float32")
        return {"codebook_loss": zero, "commitment_loss": zero}, {}
    latents, quantized = outputs["latents"], outputs["quantized"]
    perplexity, codes_used = code_usage(
        outputs["indices"], frame_generator.quantizer.num_embeddings
    )
    terms = {
        "codebook_loss": losses.codebook_loss(latents, quantized),
        "commitment_loss": losses.commitment_loss(latents, quantized, beta=commitment_beta),
    }
    return terms, {"perplexity": perplexity, "codes_used": codes_used}
