"""Configuration of a training run, validated before any graph is built.

Field names equal the flag names of `train.py`, so a validation error names the flag to fix.
"""

import dataclasses
import math

from fgbg_keras.losses import BG_MASK_MODES, DIFF_MODES, GAN_LOSSES
from fgbg_keras.models.vq_frame_generator import CONDITION_MODES, QUANTIZE_MODES
from fgbg_keras.schedules import SPARSITY_SCHEDULES

PRECISIONS = ("float32", "mixed_bfloat16")
GENERATORS = ("vqvae", "unet")


def _fail(name, value, requirement):
    raise ValueError(f"--{name}={value!r}: {requirement}")


@dataclasses.dataclass
class ModelConfig:
    """Sizes and variants of the networks."""

    image_size: int = 64
    mask_ngf: int = 16
    mask_res_blocks: int = 3
    mask_downsampling: int = 2
    generator: str = "unet"
    generator_filters: tuple = (16, 32, 64)
    generator_res_blocks: int = 1
    num_embeddings: int = 256
    embedding_dim: int = 32
    quantize: str = "separate"  # measured best on synthetic masks; "joint" is the draft's
    condition: str = "channel"
    vq_ema: bool = False
    vq_ema_decay: float = 0.99
    dead_code_threshold: float = 0.0
    unet_filters: int = 32
    unet_max_filters: int = 256
    unet_levels: int = 0  # 0: down to the smallest map the image size allows (8 at 256x256)
    unet_paste: bool = True
    unet_keep_pasted: int = 1

    def __post_init__(self):
        self.generator_filters = tuple(int(f) for f in self.generator_filters)

    # Settings with no weights of their own that only change what Phase II does with moving
    # masks: a Phase II run may set them otherwise than the Phase I run it starts from.
    PHASE_TWO_ONLY = ("unet_paste", "unet_keep_pasted")

    def networks(self):
        """This config without `PHASE_TWO_ONLY`: what the weights of a Phase I run depend on."""
        defaults = {
            f.name: f.default for f in dataclasses.fields(self) if f.name in self.PHASE_TWO_ONLY
        }
        return dataclasses.replace(self, **defaults)

    @property
    def resolved_unet_levels(self):
        """`unet_levels`, or as many halvings as `image_size` allows when it is 0."""
        if self.unet_levels:
            return self.unet_levels
        levels, size = 0, self.image_size
        while size > 1 and size % 2 == 0:
            levels, size = levels + 1, size // 2
        return levels

    @property
    def generator_downsampling(self):
        if self.generator == "unet":
            return 2**self.resolved_unet_levels
        return 2 ** (len(self.generator_filters) - 1)

    @property
    def downsampling_factor(self):
        return max(2**self.mask_downsampling, self.generator_downsampling)

    def validate(self):
        if self.generator not in GENERATORS:
            _fail("generator", self.generator, f"must be one of {GENERATORS}")
        for name in (
            "mask_ngf",
            "num_embeddings",
            "embedding_dim",
            "image_size",
            "unet_filters",
            "unet_max_filters",
        ):
            if getattr(self, name) < 1:
                _fail(name, getattr(self, name), "must be a positive integer")
        for name in (
            "mask_res_blocks",
            "mask_downsampling",
            "generator_res_blocks",
            "unet_levels",
            "unet_keep_pasted",
        ):
            if getattr(self, name) < 0:
                _fail(name, getattr(self, name), "must be >= 0")
        for name in ("unet_filters", "unet_max_filters"):
            if getattr(self, name) % 8:
                _fail(
                    name, getattr(self, name), "must be a multiple of 8 (the group norm's groups)"
                )
        if not self.generator_filters or any(f < 8 or f % 8 for f in self.generator_filters):
            _fail(
                "generator_filters",
                ",".join(map(str, self.generator_filters)),
                "must be a non-empty list of multiples of 8",
            )
        if self.image_size % self.downsampling_factor:
            _fail(
                "image_size",
                self.image_size,
                f"must be divisible by {self.downsampling_factor}, the total downsampling of "
                f"the networks (2**mask_downsampling, and 2**(len(generator_filters) - 1) or "
                f"2**unet_levels)",
            )
        if self.quantize not in QUANTIZE_MODES:
            _fail("quantize", self.quantize, f"must be one of {QUANTIZE_MODES}")
        if self.condition not in CONDITION_MODES:
            _fail("condition", self.condition, f"must be one of {CONDITION_MODES}")
        if not 0.0 < self.vq_ema_decay < 1.0:
            _fail("vq_ema_decay", self.vq_ema_decay, "must be in (0, 1)")
        if self.dead_code_threshold < 0:
            _fail("dead_code_threshold", self.dead_code_threshold, "must be >= 0")


@dataclasses.dataclass
class LossConfig:
    """Weights and variants of the Phase I losses (METHOD.md, Losses)."""

    reconstruction_weight: float = 1.0
    codebook_weight: float = 1.0
    commitment_beta: float = 0.25
    bg_weight: float = 50.0
    bin_weight: float = 4.0
    bg_mask: str = "union"
    two_sided_sparsity: bool = False
    diff: str = "gray"
    diff_threshold: float = 0.04
    spar_schedule: str = "controller"
    spar_initial_weight: float = 3.0
    spar_target_start: float = 0.5
    spar_target_end: float = 0.03
    spar_target_steps: int = 1500
    spar_gain: float = 0.01
    spar_start_ratio: float = 16.0
    spar_halve_every: int = 300
    spar_min_ratio: float = 8.0

    def validate(self):
        for name in (
            "reconstruction_weight",
            "codebook_weight",
            "commitment_beta",
            "bg_weight",
            "bin_weight",
            "diff_threshold",
            "spar_initial_weight",
            "spar_gain",
        ):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                _fail(name, value, "must be a finite number >= 0")
        for name in ("spar_target_start", "spar_target_end", "spar_start_ratio", "spar_min_ratio"):
            if not getattr(self, name) > 0:
                _fail(name, getattr(self, name), "must be > 0")
        if self.spar_target_end >= self.spar_target_start:
            _fail(
                "spar_target_end",
                self.spar_target_end,
                f"must be below --spar_target_start={self.spar_target_start} (the target "
                "ratio L_bg/L_spar falls over training)",
            )
        for name in ("spar_target_steps", "spar_halve_every"):
            if getattr(self, name) < 1:
                _fail(name, getattr(self, name), "must be >= 1")
        if self.bg_mask not in BG_MASK_MODES:
            _fail("bg_mask", self.bg_mask, f"must be one of {BG_MASK_MODES}")
        if self.diff not in DIFF_MODES:
            _fail("diff", self.diff, f"must be one of {DIFF_MODES}")
        if self.spar_schedule not in SPARSITY_SCHEDULES:
            choices = tuple(SPARSITY_SCHEDULES)
            _fail("spar_schedule", self.spar_schedule, f"must be one of {choices}")

    def sparsity_schedule_kwargs(self):
        """The constructor arguments of the chosen sparsity-weight schedule."""
        if self.spar_schedule == "off":
            return {}
        if self.spar_schedule == "halving":
            return {
                "background_weight": self.bg_weight,
                "start_ratio": self.spar_start_ratio,
                "halve_every": self.spar_halve_every,
                "min_ratio": self.spar_min_ratio,
            }
        return {
            "initial_weight": self.spar_initial_weight,
            "target_start": self.spar_target_start,
            "target_end": self.spar_target_end,
            "target_steps": self.spar_target_steps,
            "gain": self.spar_gain,
        }


@dataclasses.dataclass
class TrainConfig:
    """Data, optimisation and bookkeeping of a run."""

    train_steps: int = 2000
    clips_per_batch: int = 2
    frames_per_clip: int = 10
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    decay_start_fraction: float = 0.5
    log_every: int = 50
    checkpoint_every: int = 250
    image_every: int = 250
    keep_checkpoints: int = 3
    seed: int = 0
    precision: str = "float32"
    jit_compile: bool = False
    deterministic: bool = True
    data: str = "synthetic"
    tfds_data_dir: str = ""
    num_train_clips: int = 1000
    num_val_clips: int = 16
    num_test_clips: int = 64
    clip_length: int = 16

    def validate(self):
        for name in (
            "train_steps",
            "clips_per_batch",
            "log_every",
            "checkpoint_every",
            "image_every",
            "keep_checkpoints",
            "num_train_clips",
            "num_val_clips",
            "num_test_clips",
        ):
            if getattr(self, name) < 1:
                _fail(name, getattr(self, name), "must be >= 1")
        if self.frames_per_clip < 2:
            _fail("frames_per_clip", self.frames_per_clip, "must be >= 2 (one pair of frames)")
        if self.frames_per_clip > self.clip_length:
            _fail(
                "frames_per_clip",
                self.frames_per_clip,
                f"must be <= --clip_length={self.clip_length}",
            )
        if self.train_steps % self.log_every:
            multiple = f"must be a multiple of --log_every={self.log_every}"
            _fail("train_steps", self.train_steps, multiple)
        if self.checkpoint_every % self.log_every:
            _fail(
                "checkpoint_every",
                self.checkpoint_every,
                f"must be a multiple of --log_every={self.log_every}",
            )
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            _fail("learning_rate", self.learning_rate, "must be a finite number > 0")
        for name in ("beta_1", "beta_2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                _fail(name, getattr(self, name), "must be in [0, 1)")
        if not 0.0 <= self.decay_start_fraction <= 1.0:
            _fail("decay_start_fraction", self.decay_start_fraction, "must be in [0, 1]")
        if self.precision not in PRECISIONS:
            _fail("precision", self.precision, f"must be one of {PRECISIONS}")
        from data_pipelines.datasets import parse_data_flag  # raises naming --data

        parse_data_flag(self.data)

    @property
    def pairs_per_batch(self):
        return self.clips_per_batch * (self.frames_per_clip - 1)


@dataclasses.dataclass
class PhaseTwoConfig:
    """Phase II: discriminators, GAN and region losses, scheduled sampling (METHOD.md)."""

    disc_start: int = 500
    gan_loss: str = "hinge"
    gan_weight: float = 1.0
    adaptive_gan_weight: bool = True
    disc_filters: int = 64
    disc_conditional: bool = True
    local_disc: bool = True
    local_crop_size: int = 32
    disc_learning_rate: float = 0.0  # 0: the generator's --learning_rate
    fg_region_weight: float = 1.0
    bg_region_weight: float = 1.0
    ss_start: int = -1  # -1: half of --train_steps
    ss_initial: float = 0.1
    ss_increment: float = 0.1
    ss_interval: int = 100
    reset_generator_head: bool = True

    def resolved_ss_start(self, train_steps):
        return train_steps // 2 if self.ss_start < 0 else self.ss_start

    def validate(self, train):
        if self.gan_loss not in GAN_LOSSES:
            _fail("gan_loss", self.gan_loss, f"must be one of {GAN_LOSSES}")
        for name in ("gan_weight", "fg_region_weight", "bg_region_weight", "disc_learning_rate"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                _fail(name, value, "must be a finite number >= 0")
        for name in ("ss_initial", "ss_increment"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                _fail(name, getattr(self, name), "must be in [0, 1]")
        for name in ("disc_filters", "ss_interval"):
            if getattr(self, name) < 1:
                _fail(name, getattr(self, name), "must be >= 1")
        if self.local_crop_size < 32:
            _fail("local_crop_size", self.local_crop_size, "must be >= 32 (the PatchGAN's input)")
        if self.disc_start < 0:
            _fail("disc_start", self.disc_start, "must be >= 0")
        # The graph changes at these steps, so they fall on the boundaries of fit's epochs.
        for name, value in (
            ("disc_start", self.disc_start),
            ("ss_start", self.resolved_ss_start(train.train_steps)),
        ):
            if value % train.log_every:
                _fail(name, value, f"must be a multiple of --log_every={train.log_every}")


@dataclasses.dataclass
class BaselineConfig:
    """The ConvLSTM baseline (`--phase=baseline_convlstm`)."""

    convlstm_filters: int = 32
    convlstm_lstm_filters: int = 64

    def validate(self):
        for name in ("convlstm_filters", "convlstm_lstm_filters"):
            if getattr(self, name) < 1:
                _fail(name, getattr(self, name), "must be >= 1")


@dataclasses.dataclass
class RunConfig:
    """Everything a run of either phase needs."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    phase_two: PhaseTwoConfig = dataclasses.field(default_factory=PhaseTwoConfig)
    baseline: BaselineConfig = dataclasses.field(default_factory=BaselineConfig)

    def validate(self, phase=1):
        """Validates the sections `phase` (1, 2 or "baseline_convlstm") uses; returns `self`."""
        self.model.validate()
        self.loss.validate()
        self.train.validate()
        if phase == 2:
            self.phase_two.validate(self.train)
        if phase == "baseline_convlstm":
            self.baseline.validate()
            if self.model.image_size % 4:
                _fail("image_size", self.model.image_size, "must be divisible by 4 (ConvLSTM)")
        return self

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        model = dict(values.get("model", {}))
        # Runs saved before --unet_keep_pasted existed composited as it does with 0.
        model.setdefault("unet_keep_pasted", 0)
        return cls(
            model=ModelConfig(**model),
            loss=LossConfig(**values.get("loss", {})),
            train=TrainConfig(**values.get("train", {})),
            phase_two=PhaseTwoConfig(**values.get("phase_two", {})),
            baseline=BaselineConfig(**values.get("baseline", {})),
        )
