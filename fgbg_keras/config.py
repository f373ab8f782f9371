"""Configuration of a training run, validated before any graph is built.

The run's sections are assembled from the option groups that each component declares beside its
code (`fgbg_common.options.Options`): the networks' sizes and variants from the mask network and
each frame generator, the losses' weights from the losses, the change map and the sparsity
schedules, the data from `--data`'s options, and so on. Every field is a flag of train.py of the
same name (`fgbg_keras.flags` defines them), and a validation error names the flag to fix. What
this module adds is the run's own settings (steps, batches, optimiser, bookkeeping, precision)
and the checks across components, which ask the registries what a component supports.
"""

import dataclasses
import math

from data_pipelines.augment import AugmentOptions
from data_pipelines.change_map import ChangeMapOptions
from data_pipelines.data_options import DataOptions
from data_pipelines.pushing import PushingFlags
from data_pipelines.stabilize import AlignOptions
from fgbg_common.options import fail, option
from fgbg_keras.distribute import DistributionOptions
from fgbg_keras.losses import GanOptions, LossOptions
from fgbg_keras.mask_ops import TRAIN_CONTROLS
from fgbg_keras.models import generators
from fgbg_keras.models.convlstm_predictor import ConvLSTMOptions
from fgbg_keras.models.factory import NetworkOptions
from fgbg_keras.models.mask_generator import MaskOptions
from fgbg_keras.models.patchgan import DiscriminatorOptions
from fgbg_keras.models.unet_diff_generator import UNetOptions
from fgbg_keras.models.vq_frame_generator import VQOptions
from fgbg_keras.schedules import ScheduledSamplingOptions, SparsityOptions

PRECISIONS = ("float32", "mixed_bfloat16")
# --precision=auto becomes one of PRECISIONS when the flags are read (`hardware.auto_precision`).
AUTO_PRECISION = "auto"


# A section's groups are listed last first: a dataclass orders the fields of its bases from the
# last base to the first, which is the order of --helpfull and config.json.
@dataclasses.dataclass
class ModelConfig(UNetOptions, VQOptions, MaskOptions, NetworkOptions):
    """Sizes and variants of the networks."""

    def networks(self):
        """This config with its `moving_masks_only` settings at their defaults: what the
        weights of a Phase I run depend on."""
        defaults = {
            f.name: f.default for f in dataclasses.fields(self) if f.metadata["moving_masks_only"]
        }
        return dataclasses.replace(self, **defaults)


@dataclasses.dataclass
class LossConfig(SparsityOptions, AlignOptions, ChangeMapOptions, LossOptions):
    """Weights and variants of the Phase I losses (docs/method.md, the losses)."""


@dataclasses.dataclass
class TrainConfig(DataOptions, DistributionOptions, AugmentOptions):
    """Data, optimisation and bookkeeping of a run."""

    train_steps: int = option(2000, "Total optimizer steps of the phase.")
    clips_per_batch: int = option(
        2, "Clips per batch; a batch holds clips_per_batch * (frames_per_clip - 1) pairs."
    )
    frames_per_clip: int = option(10, "Consecutive frames sampled from each clip (paper: 10).")
    long_windows_from: int = option(
        0,
        "A curriculum: from this step on, train on windows of --long_frames_per_clip frames, "
        "--long_clips_per_batch per batch (0: never). In Phase II with --train_rollout the "
        "training rollouts grow with them; the learning-rate schedule spans --train_steps "
        "either way.",
    )
    long_frames_per_clip: int = option(
        16, "With --long_windows_from: the frames of each window from then on."
    )
    long_clips_per_batch: int = option(
        2, "With --long_windows_from: the clips of each batch from then on."
    )
    learning_rate: float = option(
        2e-4, "Adam learning rate (constant, then linear decay to 0; paper: 2e-4)."
    )
    beta_1: float = option(0.5, "Adam beta_1.")
    beta_2: float = option(0.999, "Adam beta_2 (the reference uses 0.9).")
    decay_start_fraction: float = option(
        0.5, "Fraction of --train_steps before the learning rate starts to decay."
    )
    log_every: int = option(
        50, "Steps between TensorBoard scalars (each is the mean over these steps)."
    )
    checkpoint_every: int = option(250, "Steps between checkpoints and validation runs.")
    image_every: int = option(250, "Steps between TensorBoard images of masks and predictions.")
    keep_checkpoints: int = option(3, "Checkpoints kept on disk.")
    seed: int = option(0, "Seed of the data, the initial weights and every random choice.")
    precision: str = option(
        "float32",
        "float32, mixed_bfloat16 (fast on CPUs with AMX or AVX512-BF16 and on Ampere or newer "
        "GPUs; emulated, and several times slower than float32, on other CPUs) or auto: "
        "mixed_bfloat16 where this machine computes in bfloat16, float32 elsewhere, decided when "
        "the flags are read and logged (each worker of a multi-worker run decides for itself).",
        choices=PRECISIONS + (AUTO_PRECISION,),
    )
    jit_compile: bool = option(False, "Compile the train step with XLA.")
    deterministic: bool = option(
        True,
        "Enable TensorFlow's op determinism, and on a machine with no GPU turn Grappler's graph "
        "rewrites off (about 3% slower), so two runs with one seed and settings are "
        "bit-identical, in one process or two.",
    )

    def check(self, config):
        self.at_least(
            1,
            "train_steps",
            "clips_per_batch",
            "log_every",
            "checkpoint_every",
            "image_every",
            "keep_checkpoints",
        )
        if self.precision == AUTO_PRECISION:
            fail(
                "precision",
                self.precision,
                "is decided when the flags are read (fgbg_keras.hardware.resolve_precision); a "
                f"RunConfig holds one of {PRECISIONS}",
            )
        if self.frames_per_clip < 2:
            fail("frames_per_clip", self.frames_per_clip, "must be >= 2 (one pair of frames)")
        if self.frames_per_clip > self.clip_length:
            fail(
                "frames_per_clip",
                self.frames_per_clip,
                f"must be <= --clip_length={self.clip_length}",
            )
        if self.long_windows_from:
            self._check_long_windows()
        for name in ("train_steps", "checkpoint_every", "long_windows_from"):
            if getattr(self, name) % self.log_every:
                multiple = f"must be a multiple of --log_every={self.log_every}"
                fail(name, getattr(self, name), multiple)
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            fail("learning_rate", self.learning_rate, "must be a finite number > 0")
        for name in ("beta_1", "beta_2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                fail(name, getattr(self, name), "must be in [0, 1)")
        if not 0.0 <= self.decay_start_fraction <= 1.0:
            fail("decay_start_fraction", self.decay_start_fraction, "must be in [0, 1]")

    def _check_long_windows(self):
        if not 0 < self.long_windows_from < self.train_steps:
            fail(
                "long_windows_from",
                self.long_windows_from,
                f"must be 0 (off) or between 0 and --train_steps={self.train_steps}",
            )
        if not 2 <= self.long_frames_per_clip <= self.clip_length:
            fail(
                "long_frames_per_clip",
                self.long_frames_per_clip,
                f"must be >= 2 and <= --clip_length={self.clip_length}",
            )
        if self.long_clips_per_batch < 1:
            fail("long_clips_per_batch", self.long_clips_per_batch, "must be >= 1")

    def window_stretches(self, step):
        """The stretches of training left from `step`: `(first step, end step, frames_per_clip,
        clips_per_batch, index of the first window of its stream)` each, the short windows
        first, then (`--long_windows_from`) the long ones."""
        switch = self.long_windows_from or self.train_steps
        stretches = []
        if step < switch:
            stretches.append(
                (
                    step,
                    switch,
                    self.frames_per_clip,
                    self.clips_per_batch,
                    step * self.clips_per_batch,
                )
            )
        if switch < self.train_steps:
            start = max(step, switch)
            clips = self.long_clips_per_batch
            first = (start - switch) * clips
            stretches.append((start, self.train_steps, self.long_frames_per_clip, clips, first))
        return stretches

    @property
    def pairs_per_batch(self):
        return self.clips_per_batch * (self.frames_per_clip - 1)


@dataclasses.dataclass
class PhaseTwoConfig(ScheduledSamplingOptions, DiscriminatorOptions, GanOptions):
    """Phase II: discriminators, GAN and region losses, scheduled sampling, training rollouts
    (docs/method.md)."""

    train_rollout: bool = option(
        False,
        "Phase 2: train on rollouts, as the generator is tested: each window is generated from "
        "its first frame, each step from G's own previous output, with the mask carried by the "
        "controls fitted from M's masks of the true frames, and gradients through every step. "
        "Off: pairs of true frames with M's mask of the true next frame (the draft), and "
        "scheduled sampling (the --ss_* flags, unused when on). --frames_per_clip sets the "
        "rollout's length. --generator=unet only.",
    )
    train_controls: str = option(
        "fitted",
        "Phase 2 with --train_rollout: what carries the mask along a training rollout. fitted: "
        "the translations between M's masks of the true frames (no labels; the parameterized "
        "control). true: the windows' labelled offsets (a robot's actions, the pushing set's "
        "arm steps; data with controls only), the controls of the true-control evaluation, "
        "which the ConvLSTM baseline is also trained with.",
        choices=TRAIN_CONTROLS,
    )
    train_true_pairs: bool = option(
        False,
        "Phase 2 with --train_rollout: also train on each window's pairs of true frames, with "
        "M's mask of the true next frame as the target (as the next frame is evaluated), beside "
        "the rollout. On real video M's masks of consecutive frames also differ where nothing "
        "moved, which a carried mask never shows the generator. Twice the generator's work.",
    )
    reset_generator_head: bool = option(
        True,
        "Phase 2, a generator with a resettable head (unet): start its last layer at zero, so "
        "Phase 2 starts from the base frame (with --unet_paste: the moved foreground) rather than "
        "from the Phase 1 U-Net, which learned to predict motion it was never told. No effect "
        "with vqvae.",
    )

    def check(self, config):
        train, generator = config.train, generators.get(config.model.generator)
        if self.train_rollout and not generator.trains_on_rollouts:
            able = [n for n in generators.names() if generators.get(n).trains_on_rollouts]
            fail(
                "train_rollout",
                True,
                f"needs --generator={' or '.join(able)} (not {config.model.generator!r}: "
                f"{generator.rollout_note})",
            )
        if self.train_controls != "fitted" and not self.train_rollout:
            fail("train_controls", self.train_controls, "needs --train_rollout")
        if self.train_true_pairs and not self.train_rollout:
            fail("train_true_pairs", True, "needs --train_rollout (pairs are its default)")
        for flag in generator.memory_flags.values():
            if getattr(config.model, flag) and not self.train_rollout:
                # On pairs of true frames G would only ever see its current frame there.
                fail(flag, True, "needs --train_rollout, where G is given a rollout's memory")
        # The graph changes at these steps, so they fall on the boundaries of fit's epochs.
        for name, value in (
            ("disc_start", self.resolved_disc_start()),
            ("ss_start", self.resolved_ss_start(train.train_steps)),
        ):
            if value is not None and value % train.log_every:
                fail(name, value, f"must be a multiple of --log_every={train.log_every}")


@dataclasses.dataclass
class BaselineConfig(ConvLSTMOptions):
    """The ConvLSTM baseline (`--phase=baseline_convlstm`)."""


# The sections of a run, in the order of `--helpfull` and config.json; the sections whose
# settings shape the weights cannot change when a run resumes.
SECTIONS = {
    "model": ModelConfig,
    "loss": LossConfig,
    "train": TrainConfig,
    "phase_two": PhaseTwoConfig,
    "baseline": BaselineConfig,
    "pushing": PushingFlags,
}
COMMON_SECTIONS = ("model", "loss", "train", "pushing")
NETWORK_SECTIONS = ("model", "baseline")


@dataclasses.dataclass
class RunConfig:
    """Everything a run of any phase needs."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    phase_two: PhaseTwoConfig = dataclasses.field(default_factory=PhaseTwoConfig)
    baseline: BaselineConfig = dataclasses.field(default_factory=BaselineConfig)
    pushing: PushingFlags = dataclasses.field(default_factory=PushingFlags)

    def validate(self, sections=()):
        """Validates the model, loss and train sections and those named in `sections` (a phase
        asks for its own, e.g. `("phase_two",)`); returns `self`."""
        for name in (*COMMON_SECTIONS, *sections):
            getattr(self, name).validate(self)
        return self

    def fields(self):
        """`(section, field)` for every field of every section, in flag order."""
        return [
            (getattr(self, name), field)
            for name in SECTIONS
            for field in dataclasses.fields(getattr(self, name))
        ]

    def _section_of(self, name):
        for section, field in self.fields():
            if field.name == name:
                return section
        raise ValueError(f"No setting --{name} in any config section.")

    def get(self, name):
        """The value of the field `name` (a flag name), in whichever section holds it."""
        return getattr(self._section_of(name), name)

    def set(self, name, value):
        """Sets the field `name` (a flag name) in whichever section holds it."""
        setattr(self._section_of(name), name, value)

    def network_changes(self, other, sections=()):
        """`{name: (self's, other's)}` for each setting that shapes weights in which `other`
        differs: every field of `NETWORK_SECTIONS`, and the fields marked `network` of the
        `sections` a phase uses."""
        changes = {}
        for name in SECTIONS:
            mine, theirs = getattr(self, name), getattr(other, name)
            for field in dataclasses.fields(mine):
                shapes = name in NETWORK_SECTIONS or (
                    name in sections and field.metadata["network"]
                )
                values = (getattr(mine, field.name), getattr(theirs, field.name))
                if shapes and values[0] != values[1]:
                    changes[field.name] = values
        return changes

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        model = dict(values.get("model", {}))
        # Runs saved before --unet_keep_pasted existed composited as it does with 0.
        model.setdefault("unet_keep_pasted", 0)
        return cls(
            model=ModelConfig(**model),
            **{
                name: section(**values.get(name, {}))
                for name, section in SECTIONS.items()
                if name != "model"
            },
        )


def field_changes(saved, requested):
    """`{name: (saved, requested)}` for each field of a section in which the two differ."""
    return {
        f.name: (getattr(saved, f.name), getattr(requested, f.name))
        for f in dataclasses.fields(saved)
        if getattr(saved, f.name) != getattr(requested, f.name)
    }
