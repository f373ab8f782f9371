"""Configuration of a training run, validated before any graph is built.

Every field of a section is a flag of train.py of the same name (`fgbg_keras.flags` defines them),
declared with `option()`: its default, its help text and its allowed values stand beside it, so a
field cannot exist without its help and a validation error names the flag to fix.
"""

import dataclasses
import math

from data_pipelines import augment, datasets
from data_pipelines.change_map import BG_REFERENCES, DIFF_MODES
from data_pipelines.pushing import PushingOptions
from data_pipelines.stabilize import ALIGN_MODES
from fgbg_keras import distribute
from fgbg_keras.layers import blocks
from fgbg_keras.losses import BG_MASK_MODES, GAN_LOSSES, PIXEL_LOSSES
from fgbg_keras.mask_ops import PASTE_REGIONS, TRAIN_CONTROLS
from fgbg_keras.models import generators
from fgbg_keras.models.unet_diff_generator import MEMORY_FLAGS
from fgbg_keras.models.vq_frame_generator import CONDITION_MODES, QUANTIZE_MODES
from fgbg_keras.schedules import SPARSITY_SCHEDULES

PRECISIONS = ("float32", "mixed_bfloat16")
# --precision=auto becomes one of PRECISIONS when the flags are read (`hardware.auto_precision`).
AUTO_PRECISION = "auto"


def option(default, help, choices=None, moving_masks_only=False, network=False):
    """A config field: its default, the help text of its flag and, if any, its allowed values.

    `moving_masks_only` marks a setting that only changes what the networks do with moving
    masks (Phase II and generation), with no weights of its own or with weights that start at
    zero (`runs.restore_fgbg_networks`): a Phase II run may set it otherwise than the Phase I run
    it starts from. `network` marks a setting outside the network sections
    (`NETWORK_SECTIONS`) that shapes weights all the same: a run cannot resume with another value.
    """
    metadata = {
        "help": help,
        "choices": tuple(choices) if choices is not None else None,
        "moving_masks_only": moving_masks_only,
        "network": network,
    }
    return dataclasses.field(default=default, metadata=metadata)


def _fail(name, value, requirement):
    raise ValueError(f"--{name}={value!r}: {requirement}")


class Section:
    """Base of the config sections: each field is declared with `option()`, or the class is
    refused when it is defined; `validate` checks every field's choices, then `check`."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in cls.__dict__.get("__annotations__", {}):
            value = cls.__dict__.get(name)
            if not (isinstance(value, dataclasses.Field) and value.metadata.get("help")):
                raise TypeError(
                    f"{cls.__name__}.{name} has no help text: declare it with option(default, "
                    "help), which is what its flag's --help shows."
                )

    def validate(self, config):
        """Raises a ValueError naming the flag of the first bad field; `config` is the whole
        `RunConfig`, for checks across sections."""
        for field in dataclasses.fields(self):
            choices = field.metadata["choices"]
            if choices is not None and getattr(self, field.name) not in choices:
                _fail(field.name, getattr(self, field.name), f"must be one of {choices}")
        self.check(config)

    def check(self, config):
        """The section's own checks, after its choices."""

    def _at_least(self, minimum, *names):
        for name in names:
            if getattr(self, name) < minimum:
                _fail(name, getattr(self, name), f"must be >= {minimum}")

    def _finite_non_negative(self, *names):
        for name in names:
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                _fail(name, value, "must be a finite number >= 0")


@dataclasses.dataclass
class ModelConfig(Section):
    """Sizes and variants of the networks."""

    image_size: int = option(
        64,
        "Frame height and width in pixels; must be divisible by the networks' total downsampling.",
    )
    mask_ngf: int = option(
        16, "Width of the mask network's stem (paper: 64; the default is smaller, for a CPU)."
    )
    mask_res_blocks: int = option(
        3, "Residual blocks of the mask network (paper: 9; the default is fewer, for a CPU)."
    )
    mask_downsampling: int = option(2, "Stride-2 stages of the mask network.")
    generator: str = option(
        "unet",
        "Frame generator: "
        + "; ".join(f"{name}: {generators.get(name).help}" for name in generators.names())
        + ".",
        choices=generators.names(),
    )
    generator_filters: tuple = option(
        (16, 32, 64),
        "Widths of the VQ-VAE encoder levels, comma-separated; one stride-2 stage between "
        "consecutive levels.",
    )
    generator_res_blocks: int = option(
        1, "Residual blocks per level of the VQ-VAE encoder and decoder."
    )
    generator_padding: str = option(
        "reflect",
        "Padding of the VQ-VAE's 3x3 convolutions: reflect, or zero (taming-transformers' and the "
        "reference's; faster on the CPU, no padding op of its own).",
        choices=blocks.PADDINGS,
    )
    num_embeddings: int = option(256, "Codebook size K.")
    embedding_dim: int = option(32, "Size n_z of each code vector.")
    quantize: str = option(
        "separate",
        "joint: f_hat = D(q(z_fg + z_bg)) (the draft); separate: D(q(z_fg) + q(z_bg)) (the "
        "reference; the default, measured best for masks on the synthetic set).",
        choices=QUANTIZE_MODES,
    )
    condition: str = option(
        "channel",
        "vqvae: split: streams cut by the target mask (the reference); channel: the target mask "
        "is a 4th encoder channel (the default, measured better in rollouts).",
        choices=CONDITION_MODES,
    )
    vq_ema: bool = option(
        False, "Update the codebook by exponential moving averages instead of gradients."
    )
    vq_ema_decay: float = option(
        0.99, "Decay of the codebook EMA and of the code-usage statistics."
    )
    dead_code_threshold: float = option(
        0.0, "Restart codes whose EMA usage falls below this (0 disables)."
    )
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

    def __post_init__(self):
        self.generator_filters = tuple(int(f) for f in self.generator_filters)

    def networks(self):
        """This config with its `moving_masks_only` settings at their defaults: what the
        weights of a Phase I run depend on."""
        defaults = {
            f.name: f.default for f in dataclasses.fields(self) if f.metadata["moving_masks_only"]
        }
        return dataclasses.replace(self, **defaults)

    def check(self, config):
        self._at_least(
            1,
            "mask_ngf",
            "num_embeddings",
            "embedding_dim",
            "image_size",
            "unet_filters",
            "unet_max_filters",
        )
        self._at_least(
            0,
            "mask_res_blocks",
            "mask_downsampling",
            "generator_res_blocks",
            "unet_levels",
            "unet_keep_pasted",
            "unet_region_margin",
        )
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
        if not 0.0 < self.vq_ema_decay < 1.0:
            _fail("vq_ema_decay", self.vq_ema_decay, "must be in (0, 1)")
        if self.dead_code_threshold < 0:
            _fail("dead_code_threshold", self.dead_code_threshold, "must be >= 0")


@dataclasses.dataclass
class LossConfig(Section):
    """Weights and variants of the Phase I losses (docs/method.md, the losses)."""

    reconstruction_weight: float = option(
        1.0, "Weight of L1(f_hat, f_{t+1}) (in Phase 2, of the distance --pixel_loss says)."
    )
    codebook_weight: float = option(1.0, "Weight of the codebook loss ||sg(z) - z_q||^2.")
    commitment_beta: float = option(0.25, "Weight beta of the commitment loss ||z - sg(z_q)||^2.")
    bg_weight: float = option(50.0, "l1, weight of the background loss L_bg.")
    bin_weight: float = option(4.0, "l3, weight of the binarization loss L_bin.")
    bg_mask: str = option(
        "union",
        "Mask of L_bg: next = M(f_{t+1}) (the draft), current = M(f_t) (the reference), union = "
        "max of the two.",
        choices=BG_MASK_MODES,
    )
    two_sided_sparsity: bool = option(
        False, "Penalise |mean(m) - mean(d)| instead of max(mean(m) - mean(d), 0)."
    )
    diff: str = option(
        "gray",
        "Change map d: gray = |gray(f_{t+1}) - gray(f_t)| > threshold (BT.601); maxchannel = "
        "largest channel difference > threshold.",
        choices=DIFF_MODES,
    )
    diff_threshold: float = option(0.04, "Threshold of the change map d on [-1, 1] frames.")
    bg_reference: str = option(
        "next_frame",
        "What L_bg and the change map d compare f_t with: next_frame = f_{t+1} (the draft); "
        "clip_median = the per-pixel median of f_t's whole clip, its static background, so "
        "that d and L_bg mark the whole moving object rather than what changed in one step "
        "(data_pipelines/change_map.py; pair it with --bg_mask=current).",
        choices=BG_REFERENCES,
    )
    align_frames: str = option(
        "none",
        "Camera-motion compensation before d and the losses that assume a still background: "
        "translation aligns every training window to its first frame (global Lucas-Kanade, "
        "data_pipelines/stabilize.py), and the evaluation's d alike; none (the draft).",
        choices=ALIGN_MODES,
    )
    spar_schedule: str = option(
        "controller",
        "Schedule of l2, the sparsity weight: controller (the draft: l2 steers L_bg/L_spar along "
        "a falling target line), halving (the reference: l2 = l1 / r, r halves) or off (l2 = 0: "
        "no sparsity loss, an ablation).",
        choices=tuple(SPARSITY_SCHEDULES),
    )
    spar_initial_weight: float = option(3.0, "controller: the initial l2.")
    spar_target_start: float = option(0.5, "controller: target L_bg/L_spar ratio at step 0.")
    spar_target_end: float = option(0.03, "controller: target ratio from --spar_target_steps on.")
    spar_target_steps: int = option(1500, "controller: steps over which the target falls.")
    spar_gain: float = option(
        0.01, "controller: log-step of the multiplicative update per training step."
    )
    spar_start_ratio: float = option(16.0, "halving: the initial r of l2 = l1 / r.")
    spar_halve_every: int = option(300, "halving: steps between halvings of r.")
    spar_min_ratio: float = option(8.0, "halving: the floor of r.")

    def check(self, config):
        self._finite_non_negative(
            "reconstruction_weight",
            "codebook_weight",
            "commitment_beta",
            "bg_weight",
            "bin_weight",
            "diff_threshold",
            "spar_initial_weight",
            "spar_gain",
        )
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
        self._at_least(1, "spar_target_steps", "spar_halve_every")

    @property
    def clip_background(self):
        """Whether d and L_bg compare f_t with its clip's background (`--bg_reference`)."""
        return self.bg_reference == "clip_median"

    @property
    def align(self):
        """Whether windows are aligned to their first frame (`--align_frames`)."""
        return self.align_frames == "translation"

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
class TrainConfig(Section):
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
    augment_flip: bool = option(
        False, "Mirror each training window left-right, with probability 1/2."
    )
    augment_reverse: bool = option(
        False,
        "Play each training window backwards, with probability 1/2: the object moves the other "
        "way.",
    )
    augment_shift: int = option(
        0,
        "Move each training window as a whole by up to this many pixels along each axis "
        "(reflected at the borders): the object at places it did not visit. 0: off.",
    )
    augment_still: float = option(
        0.0,
        "Hold each training window still with this probability: every frame (and mask) is its "
        "first, so where nothing moves the target is the input frame and a model that draws "
        "there pays for it (real footage has still stretches). 0: off.",
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
    strategy: str = option("default", distribute.HELP, choices=distribute.names())
    logical_cpus: int = option(
        1,
        "With --strategy=mirrored on a machine with no GPU: split the CPU into this many logical "
        "devices and train one replica on each (it proves the multi-device path; it adds no "
        "cores).",
    )
    deterministic: bool = option(
        True,
        "Enable TensorFlow's op determinism, and on a machine with no GPU turn Grappler's graph "
        "rewrites off (about 3% slower), so two runs with one seed and settings are "
        "bit-identical, in one process or two.",
    )
    data: str = option(
        "synthetic",
        datasets.describe()
        + ". Converted data: its train split trains, the first --num_val_clips of its test split "
        "validate, the first --num_test_clips evaluate; mask IoU and control error against "
        "ground truth only where the data has it.",
    )
    tfds_data_dir: str = option(
        "",
        "With --data=tfds:NAME (e.g. bair_robot_pushing_small): the folder holding the copy "
        "`tfds build NAME --data_dir=...` prepared; never downloaded. Needs pip install -e "
        "'.[tfds]'.",
    )
    data_cache_dir: str = option(
        "",
        "With --data=pushing: a folder where rendered splits are kept (about 0.6 MB a clip at "
        "64x64), named by every setting and the renderer's code, so that a later run with the "
        "same settings (Phase II after Phase I, a resumed run) loads them instead of rendering "
        "again; empty: render every time.",
    )
    num_train_clips: int = option(1000, "Synthetic clips in the training split.")
    num_val_clips: int = option(
        16,
        "Clips that validate during training (synthetic: its validation split; converted data: "
        "the first clips of the test split).",
    )
    num_test_clips: int = option(64, "Clips of the test split that the evaluation uses.")
    clip_length: int = option(
        16,
        "Frames per synthetic clip; with converted data, the evaluation uses test clips of at "
        "least this many frames, cut to it.",
    )

    def check(self, config):
        self._at_least(
            1,
            "train_steps",
            "clips_per_batch",
            "log_every",
            "checkpoint_every",
            "image_every",
            "keep_checkpoints",
            "num_train_clips",
            "num_val_clips",
            "num_test_clips",
            "logical_cpus",
        )
        if self.precision == AUTO_PRECISION:
            _fail(
                "precision",
                self.precision,
                "is decided when the flags are read (fgbg_keras.hardware.resolve_precision); a "
                f"RunConfig holds one of {PRECISIONS}",
            )
        if self.logical_cpus > 1 and self.strategy != "mirrored":
            _fail("logical_cpus", self.logical_cpus, "needs --strategy=mirrored")
        if self.frames_per_clip < 2:
            _fail("frames_per_clip", self.frames_per_clip, "must be >= 2 (one pair of frames)")
        if self.frames_per_clip > self.clip_length:
            _fail(
                "frames_per_clip",
                self.frames_per_clip,
                f"must be <= --clip_length={self.clip_length}",
            )
        if self.long_windows_from:
            self._check_long_windows()
        if not 0 <= self.augment_shift < config.model.image_size // 2:
            _fail(
                "augment_shift",
                self.augment_shift,
                f"must be in [0, {config.model.image_size // 2}) at --image_size="
                f"{config.model.image_size}",
            )
        if not 0.0 <= self.augment_still <= 1.0:
            _fail("augment_still", self.augment_still, "must be in [0, 1]")
        for name in ("train_steps", "checkpoint_every", "long_windows_from"):
            if getattr(self, name) % self.log_every:
                multiple = f"must be a multiple of --log_every={self.log_every}"
                _fail(name, getattr(self, name), multiple)
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            _fail("learning_rate", self.learning_rate, "must be a finite number > 0")
        for name in ("beta_1", "beta_2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                _fail(name, getattr(self, name), "must be in [0, 1)")
        if not 0.0 <= self.decay_start_fraction <= 1.0:
            _fail("decay_start_fraction", self.decay_start_fraction, "must be in [0, 1]")
        datasets.parse_data_flag(self.data)

    def augmentation(self):
        """The `augment.Augmentation` of the training windows that the `augment_*` fields ask
        for."""
        return augment.Augmentation(
            self.augment_flip, self.augment_reverse, self.augment_shift, self.augment_still
        )

    def _check_long_windows(self):
        if not 0 < self.long_windows_from < self.train_steps:
            _fail(
                "long_windows_from",
                self.long_windows_from,
                f"must be 0 (off) or between 0 and --train_steps={self.train_steps}",
            )
        if not 2 <= self.long_frames_per_clip <= self.clip_length:
            _fail(
                "long_frames_per_clip",
                self.long_frames_per_clip,
                f"must be >= 2 and <= --clip_length={self.clip_length}",
            )
        if self.long_clips_per_batch < 1:
            _fail("long_clips_per_batch", self.long_clips_per_batch, "must be >= 1")

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
class PhaseTwoConfig(Section):
    """Phase II: discriminators, GAN and region losses, scheduled sampling (docs/method.md)."""

    disc_start: int = option(
        500,
        "Phase 2: step at which the discriminators and the GAN loss join; a multiple of "
        "--log_every.",
    )
    gan_loss: str = option(
        "hinge",
        "Phase 2: hinge (the reference) or nonsaturating (the draft's log loss, eq. 9).",
        choices=GAN_LOSSES,
    )
    gan_weight: float = option(
        1.0,
        "Phase 2: weight of the generator's adversarial loss; 0: none, and the discriminators "
        "never train (--disc_start has no effect).",
    )
    adaptive_gan_weight: bool = option(
        True,
        "Phase 2: multiply --gan_weight by the VQGAN adaptive weight, the ratio of the gradient "
        "norms of the reconstruction and GAN terms at the generator's last layer.",
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
    pixel_loss: str = option(
        "l1",
        "Phase 2: the distance of the generator's pixel terms (the whole frame, inside and "
        "outside the target mask): l1 (the draft) or l2, the squared error that PSNR measures, "
        "whose best guess where the future is uncertain is the mean rather than the median; "
        "log_l2: the whole-frame term is the mean of the log of each frame's squared error, "
        "what an average of per-frame PSNR measures, so that every rollout step weighs alike "
        "(the region terms stay squared errors).",
        choices=PIXEL_LOSSES,
    )
    fg_region_weight: float = option(
        1.0, "Phase 2: weight of the pixel term (--pixel_loss) inside the target mask."
    )
    bg_region_weight: float = option(
        1.0, "Phase 2: weight of the pixel term (--pixel_loss) outside the target mask."
    )
    ss_start: int = option(
        -1, "Phase 2: first step of scheduled sampling (-1: half of --train_steps)."
    )
    ss_initial: float = option(
        0.1, "Phase 2: probability of feeding the model its own output at --ss_start."
    )
    ss_increment: float = option(
        0.1,
        "Phase 2: rise of that probability every --ss_interval steps (capped at 1).",
    )
    ss_interval: int = option(
        100, "Phase 2: steps between rises of the scheduled-sampling probability."
    )
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
    reset_generator_head: bool = option(
        True,
        "Phase 2, a generator with a resettable head (unet): start its last layer at zero, so "
        "Phase 2 starts from the base frame (with --unet_paste: the moved foreground) rather than "
        "from the Phase 1 U-Net, which learned to predict motion it was never told. No effect "
        "with vqvae.",
    )

    def resolved_ss_start(self, train_steps):
        return train_steps // 2 if self.ss_start < 0 else self.ss_start

    def resolved_disc_start(self):
        """The step at which the discriminators join; None: never (`--gan_weight=0`, whose
        zero weight would leave G's gradient as it is: they would train for nothing)."""
        return None if self.gan_weight == 0 else self.disc_start

    def check(self, config):
        train = config.train
        self._finite_non_negative(
            "gan_weight", "fg_region_weight", "bg_region_weight", "disc_learning_rate"
        )
        for name in ("ss_initial", "ss_increment"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                _fail(name, getattr(self, name), "must be in [0, 1]")
        self._at_least(1, "disc_filters", "ss_interval")
        if self.local_crop_size < 32:
            _fail("local_crop_size", self.local_crop_size, "must be >= 32 (the PatchGAN's input)")
        if self.disc_start < 0:
            _fail("disc_start", self.disc_start, "must be >= 0")
        if self.train_rollout and config.model.generator != "unet":
            # The VQ-VAE's codebook would take one EMA update per step of each rollout.
            _fail(
                "train_rollout",
                True,
                f"needs --generator=unet (not {config.model.generator!r}): the VQ-VAE's codebook "
                "would update once per rollout step",
            )
        if self.train_controls != "fitted" and not self.train_rollout:
            _fail("train_controls", self.train_controls, "needs --train_rollout")
        for name in MEMORY_FLAGS.values():
            if getattr(config.model, name) and not self.train_rollout:
                # On pairs of true frames G would only ever see its current frame there.
                _fail(name, True, "needs --train_rollout, where G is given a rollout's memory")
        # The graph changes at these steps, so they fall on the boundaries of fit's epochs.
        for name, value in (
            ("disc_start", self.resolved_disc_start()),
            ("ss_start", self.resolved_ss_start(train.train_steps)),
        ):
            if value is not None and value % train.log_every:
                _fail(name, value, f"must be a multiple of --log_every={train.log_every}")


@dataclasses.dataclass
class BaselineConfig(Section):
    """The ConvLSTM baseline (`--phase=baseline_convlstm`)."""

    convlstm_filters: int = option(32, "baseline_convlstm: width of the first encoder convolution.")
    convlstm_lstm_filters: int = option(64, "baseline_convlstm: channels of the ConvLSTM state.")

    def check(self, config):
        self._at_least(1, "convlstm_filters", "convlstm_lstm_filters")


def _pushing_options(self):
    """The `PushingOptions` these flags set."""
    return PushingOptions.from_flags(dataclasses.asdict(self))


def _check_pushing(self, config):
    self.options().check()


# The options of --data=pushing: the flags `--pushing_<name>` of `PushingOptions`' fields, whose
# help they carry, so that train.py and `convert --source=pushing` share them.
PushingConfig = dataclasses.make_dataclass(
    "PushingConfig",
    [
        (flag, field.type, option(field.default, field.metadata["help"]))
        for field, flag in zip(
            dataclasses.fields(PushingOptions), PushingOptions.flag_names().values()
        )
    ],
    bases=(Section,),
    namespace={
        "__doc__": "The built-in pushing set's scene and nuisances (`--data=pushing`).",
        "options": _pushing_options,
        "check": _check_pushing,
    },
)


# The sections of a run, in the order of `--helpfull` and config.json; the sections whose
# settings shape the weights cannot change when a run resumes.
SECTIONS = {
    "model": ModelConfig,
    "loss": LossConfig,
    "train": TrainConfig,
    "phase_two": PhaseTwoConfig,
    "baseline": BaselineConfig,
    "pushing": PushingConfig,
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
    pushing: PushingConfig = dataclasses.field(default_factory=PushingConfig)

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
