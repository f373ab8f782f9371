"""Run directories: what a run of train.py leaves in its `--model_dir`, and how it is loaded.

    <model_dir>/config.json    the phase ({"phase": 1, 2 or "baseline_convlstm"}), `--init_from`
                               if any, and every config section (`RunConfig.to_dict`)
    <model_dir>/flags.json     the flags as train.py resolved them
    <model_dir>/checkpoints/   `tf.train.Checkpoint`s: "model" (the phase's model, whose
                               networks are "model/mask_generator", "model/frame_generator" in
                               Phase I and II), "optimizer" and, in Phase II,
                               "discriminator_optimizer"
    <model_dir>/checkpoints/set_aside/   checkpoints that did not read whole (`run_guard`)
    <model_dir>/writer.lock    held by the process that trains the run (`run_guard`)
    <model_dir>/train/, validation/   TensorBoard logs

Training writes and resumes these (`fgbg_keras.training.loop`); evaluation, generation and the
exports load the networks of the latest checkpoint through `restore_networks` and
`restore_convlstm`, without the training loop.
"""

import json
import os
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from fgbg_keras import run_guard
from fgbg_keras.config import RunConfig, field_changes
from fgbg_keras.models import factory, generators
from fgbg_keras.training import phases

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


def check_model_dir(model_dir):
    """Creates `model_dir` if needed; raises ValueError naming it if it cannot be written."""
    if not model_dir:
        raise ValueError("--model_dir is required: the directory for checkpoints and logs.")
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--model_dir={model_dir!r} cannot be created: {error.strerror}") from None
    if not os.access(model_dir, os.W_OK):
        raise ValueError(f"--model_dir={model_dir!r} is not writable.")


def _read_config_file(model_dir, flag="--model_dir"):
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isdir(model_dir):
        raise ValueError(f"{flag}={model_dir!r} does not exist.")
    if not os.path.exists(path):
        raise ValueError(f"{flag}={model_dir!r} has no {CONFIG_FILE}: it is not a fgbg run.")
    with open(path) as f:
        return json.load(f)


def load_config(model_dir, flag="--model_dir"):
    """The `RunConfig` saved in a run directory."""
    return RunConfig.from_dict(_read_config_file(model_dir, flag))


def recorded_phase(name):
    """How config.json records the `--phase` `name`: a numbered phase as its number (1, 2), as
    runs always have, any other by its name."""
    return int(name) if name.isdigit() else name


def run_phase(model_dir, flag="--model_dir"):
    """The `--phase` a run directory was trained with, as config.json records it
    (`recorded_phase`): 1, 2 or "baseline_convlstm" (runs from before the phases were recorded
    are Phase I runs)."""
    return recorded_phase(str(_read_config_file(model_dir, flag).get("phase", 1)))


def write_config(config, model_dir, phase, init_from=None, write=True):
    """Writes `config.json` for a run of `phase` (a `phases.Phase`); on resume, refuses another
    phase or other network settings, naming them. With `write=False` (a multi-worker task
    other than the chief) it only checks."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if os.path.exists(path):
        with open(path) as f:
            values = json.load(f)
        saved_phase = values.get("phase", 1)
        if saved_phase != recorded_phase(phase.name):
            raise ValueError(
                f"--model_dir={model_dir!r} holds a Phase {saved_phase} run, not a Phase "
                f"{phase.name} one. Use a new --model_dir."
            )
        changes = RunConfig.from_dict(values).network_changes(config, phase.sections)
        if changes:
            raise ValueError(
                f"--model_dir={model_dir!r} holds a run with other network settings; "
                f"(saved, requested): {changes}. Use a new --model_dir."
            )
    if not write:
        return
    values = {"phase": recorded_phase(phase.name), **config.to_dict()}
    if init_from:
        values["init_from"] = os.path.abspath(init_from)
    # Written whole and then renamed: the other workers of a multi-worker run read it meanwhile.
    partial = f"{path}.partial"
    with open(partial, "w") as f:
        json.dump(values, f, indent=2)
    os.replace(partial, path)


def checkpoint_dir(model_dir):
    return os.path.join(model_dir, CHECKPOINT_DIR)


def latest_checkpoint(model_dir, flag="--model_dir"):
    """The saved config of a run and the path of its latest checkpoint that reads whole
    (`run_guard.usable_checkpoint`: those after it are set aside, and logged).

    Raises:
        ValueError: naming `flag` when `model_dir` is not a run or holds no checkpoint.
    """
    config = load_config(model_dir, flag)
    latest = run_guard.usable_checkpoint(checkpoint_dir(model_dir))
    if latest is None:
        raise ValueError(
            f"{flag}={model_dir!r} has no checkpoint that reads whole under "
            f"{checkpoint_dir(model_dir)}."
        )
    return config, latest


def make_checkpoint(state, model_dir, max_to_keep=3):
    """The checkpoint of a run's training state (`Phase.checkpoint_state`: the model and its
    optimizers, by name) and its manager under `<model_dir>/checkpoints`."""
    checkpoint = tf.train.Checkpoint(**state)
    manager = tf.train.CheckpointManager(
        checkpoint, checkpoint_dir(model_dir), max_to_keep=max_to_keep
    )
    return checkpoint, manager


def restore_fgbg_networks(mask_generator, frame_generator, checkpoint, written_by=None):
    """Restores M and G from the checkpoint of a Phase I or II run into built networks; the
    rest of the checkpoint (optimizers, discriminators) is left out.

    With `written_by`, the `(ModelConfig, moving_masks)` of the run that wrote the checkpoint
    (a Phase II run starting from another run), G is restored into a generator built as that
    run's, then copied into `frame_generator` by `copy_widened`: where G takes more inputs than
    that run's (the U-Net's `memory` and, with its copy gate, the input frame, which Phase I does
    not have), their weights start at zero, and layers that run did not have (the gate) keep
    their initial values, so G starts as the generator that was trained (behind a shut gate).
    """
    source = frame_generator
    if written_by is not None:
        model_config, moving_masks = written_by
        source = factory.build_frame_generator(model_config, moving_masks)
        factory.create_generator_weights(source, model_config.image_size)
    view = tf.train.Checkpoint(
        model=tf.train.Checkpoint(mask_generator=mask_generator, frame_generator=source)
    )
    view.restore(checkpoint).expect_partial().assert_existing_objects_matched()
    if source is not frame_generator:
        copy_widened(source, frame_generator)


def copy_widened(source, target):
    """Copies the weights of network `source` into `target`, the same layers where a kernel may
    take more input channels (its axis -2): those channels come last in `target`'s inputs, and
    their weights start at zero. Layers of `target` that `source` lacks keep their values.

    Raises:
        ValueError: naming the first weight that differs otherwise, or when `target` lacks a
            layer of `source`.
    """

    def paths(network):
        # Relative to the network: a weight a layer makes itself (the VQ codebook) is named
        # with the models above it, which differ between a network alone and one in a phase.
        return {w.path.split(f"{network.name}/", 1)[-1]: w for w in network.weights}

    sources, targets = paths(source), paths(target)
    missing = [path for path in sources if path not in targets]
    if missing:
        raise ValueError(
            f"{target.name!r} does not have the layers of {source.name!r} (e.g. {missing[0]}): "
            "its weights cannot start from it."
        )
    for path, weight in sources.items():
        into = targets[path]
        value = keras.ops.convert_to_numpy(weight)
        shape = tuple(into.shape)
        if value.shape != shape:
            extra = shape[-2] - value.shape[-2] if len(shape) >= 2 else -1
            if extra < 0 or value.shape[:-2] + value.shape[-1:] != shape[:-2] + shape[-1:]:
                raise ValueError(
                    f"{weight.path}: shape {value.shape} cannot start {shape}; only more input "
                    "channels (axis -2) can."
                )
            padding = [(0, 0)] * value.ndim
            padding[-2] = (0, extra)
            value = np.pad(value, padding)
        into.assign(value)


def _generator_memory(model_config, moving_masks):
    """The memory (`generators.MEMORY`) of the frame generator that a run's config builds, and
    whether it has the U-Net's copy gate."""
    if not moving_masks:
        return (), False
    generator = generators.get(model_config.generator)
    return generator.memory(model_config), generator.gated(model_config)


def check_init_from(config, init_from):
    """The latest checkpoint of the run whose networks start a Phase II run, and what
    `restore_fgbg_networks` needs to widen its generator (None: nothing to widen).

    Settings marked `moving_masks_only` (`ModelConfig.networks`) may differ from that run's; the
    U-Net's memory may only be added to, after that run's (its inputs come last), and its copy
    gate added, not dropped.

    Raises:
        ValueError: naming `--init_from` when it is missing, holds no checkpoint, or was trained
            with other network settings (frame size, widths, generator variant...), with a
            memory this run drops or reorders, or with a copy gate this run drops.
    """
    saved, latest = latest_checkpoint(init_from, flag="--init_from")
    if saved.model.networks() != config.model.networks():
        raise ValueError(
            f"--init_from={init_from!r} was trained with other network settings than this "
            f"run; (saved, requested): "
            f"{field_changes(saved.model.networks(), config.model.networks())}."
        )
    moving_masks = phases.get(run_phase(init_from)).moving_masks
    saved_memory, saved_gate = _generator_memory(saved.model, moving_masks)
    memory, gate = _generator_memory(config.model, True)
    if saved_gate and (not gate or memory != saved_memory):
        # The gate's input frame comes after the memory: more memory would take its place.
        raise ValueError(
            f"--init_from={init_from!r} was trained with the U-Net's copy gate "
            "(--unet_copy_gate): this run must keep it, and the same memory."
        )
    if memory[: len(saved_memory)] != saved_memory:
        memory_flags = generators.get(saved.model.generator).memory_flags
        flags = ", ".join(f"--{memory_flags[name]}" for name in saved_memory)
        raise ValueError(
            f"--init_from={init_from!r} was trained with the U-Net seeing the rollout's "
            f"{' and '.join(saved_memory)} frame ({flags}); this run must keep that memory, "
            "and may only add to it."
        )
    widened = (memory, gate) != (saved_memory, saved_gate)
    return latest, ((saved.model, moving_masks) if widened else None)


class RestoredRun(NamedTuple):
    """The networks of a run's latest checkpoint, with what they were trained under.

    `moving_masks`: the frame generator was trained to draw the object at moving target masks
    (Phase II), rather than at the current mask (Phase I).
    """

    config: RunConfig
    checkpoint: str
    phase: int
    mask_generator: keras.Model
    frame_generator: keras.Model
    moving_masks: bool


def restore_networks(model_dir, precision=None):
    """The mask network and frame generator of the latest checkpoint of a Phase I or II run.

    Sets the run's dtype policy, or `precision` if given (the TFLite export asks for float32:
    mixed-precision variables are float32 either way, so the checkpoint loads). Both networks
    are built for `config.model.image_size` (they take any size divisible by their
    downsampling) and restored.

    Returns:
        A `RestoredRun`.

    Raises:
        ValueError: naming `model_dir` when it is not a run, holds no checkpoint, or holds a run
            of a phase without these networks.
    """
    config, latest = latest_checkpoint(model_dir)
    saved_phase = run_phase(model_dir)
    phase = phases.get(saved_phase)
    if not phase.fgbg_networks:
        raise ValueError(
            f"--model_dir={model_dir!r} holds a --phase={saved_phase} run, not a fgbg one (pass a "
            "ConvLSTM baseline run as --convlstm_dir)."
        )
    keras.config.set_dtype_policy(precision or config.train.precision)
    mask_generator, frame_generator = factory.build_networks(
        config.model, phase.moving_masks, create_weights=True
    )
    restore_fgbg_networks(mask_generator, frame_generator, latest)
    return RestoredRun(
        config, latest, saved_phase, mask_generator, frame_generator, phase.moving_masks
    )


def fresh_run(config, phase, precision):
    """A `RestoredRun` of fresh networks of `phase` (a `phases.Phase`) at
    `config.model.image_size`, in `precision`: for timing, which does not depend on the weights."""
    keras.config.set_dtype_policy(precision)
    mask_generator, frame_generator = factory.build_networks(
        config.model, phase.moving_masks, create_weights=True
    )
    return RestoredRun(
        config,
        "(fresh weights)",
        recorded_phase(phase.name),
        mask_generator,
        frame_generator,
        phase.moving_masks,
    )


def restore_convlstm(model_dir):
    """The `(config, model)` of the latest checkpoint of a ConvLSTM baseline run.

    Raises:
        ValueError: naming `--convlstm_dir` when `model_dir` is not a baseline run or holds no
            checkpoint.
    """
    config, latest = latest_checkpoint(model_dir, flag="--convlstm_dir")
    saved_phase = run_phase(model_dir)
    if not phases.get(saved_phase).convlstm_network:
        raise ValueError(
            f"--convlstm_dir={model_dir!r} is not a --phase=baseline_convlstm run of train.py."
        )
    keras.config.set_dtype_policy(config.train.precision)
    model = factory.build_convlstm(config)
    status = tf.train.Checkpoint(model=model).restore(latest)
    status.expect_partial().assert_existing_objects_matched()
    return config, model
