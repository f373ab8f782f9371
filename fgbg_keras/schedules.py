"""Schedules for training: the learning rate and the weight of the sparsity loss.

The sparsity schedules hold their state in non-trainable `tf.Variable`s on a `tf.Module`, so a
`tf.train.Checkpoint` that tracks a schedule saves and restores it with the networks, and
`update` runs inside a compiled `train_step`.

Reference: arXiv 2111.12747 (the draft's sparsity-weight controller) and docs/method.md.
"""

import dataclasses

import keras
import tensorflow as tf
from keras import ops

from fgbg_common.checks import check_int
from fgbg_common.options import Options, fail, option

# Floor on L_spar when the ratio L_bg / L_spar is measured: the one-sided loss is often exactly 0.
RATIO_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="fgbg_keras")
class LinearDecaySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A constant learning rate that then decays linearly to zero.

    The rate is `initial_learning_rate` for the first `decay_start_fraction * total_steps` steps,
    falls linearly to 0 at `total_steps`, and stays 0 after.

    Args:
        initial_learning_rate: positive float, the rate before the decay.
        total_steps: positive int, the step at which the rate reaches 0.
        decay_start_fraction: float in [0, 1], the fraction of `total_steps` run at the full rate.
            The default, 0.5, is the pix2pix/CycleGAN recipe.

    Call arguments:
        step: int or float scalar tensor, the optimizer step.

    Returns:
        A float32 scalar, the learning rate at `step`.
    """

    def __init__(self, initial_learning_rate, total_steps, decay_start_fraction=0.5):
        if not initial_learning_rate > 0:
            raise ValueError(
                "`initial_learning_rate` must be positive. "
                f"Received: initial_learning_rate={initial_learning_rate}"
            )
        check_int("total_steps", total_steps)
        if not 0.0 <= decay_start_fraction <= 1.0:
            raise ValueError(
                "`decay_start_fraction` must be in [0, 1]. "
                f"Received: decay_start_fraction={decay_start_fraction}"
            )
        self.initial_learning_rate = initial_learning_rate
        self.total_steps = total_steps
        self.decay_start_fraction = decay_start_fraction

    def __call__(self, step):
        step = ops.cast(step, "float32")
        decay_start = self.decay_start_fraction * self.total_steps
        # With decay_start_fraction=1 the span is empty: the rate drops to 0 at total_steps.
        decay_span = max(self.total_steps - decay_start, 1.0)
        fraction_left = ops.clip((self.total_steps - step) / decay_span, 0.0, 1.0)
        return self.initial_learning_rate * fraction_left

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "decay_start_fraction": self.decay_start_fraction,
        }


def _non_trainable(value, name):
    # MEAN aggregation lets replicas assign the variable inside a distribution strategy.
    return tf.Variable(
        value,
        dtype=tf.float32,
        trainable=False,
        name=name,
        aggregation=tf.VariableAggregation.MEAN,
    )


class SparsitySchedule(tf.Module):
    """Base class of the schedules for l2, the weight of the sparsity loss L_spar.

    Subclasses implement `_next_weight`. The base class keeps the weight and an exponential moving
    average of the ratio L_bg / L_spar, which both variants log and the controller steers.

    Args:
        initial_weight: positive float, l2 before the first update.
        smoothing: float in [0, 1), the EMA decay of the measured ratio.
        name: optional name of the module.

    `OPTIONS` maps each constructor argument that a run's settings give to the setting
    (`SparsityOptions`' field, or `--bg_weight`) it comes from.
    """

    OPTIONS = {}

    def __init__(self, initial_weight, smoothing=0.9, name=None):
        super().__init__(name=name)
        if not initial_weight > 0:
            raise ValueError(
                f"`initial_weight` must be positive. Received: initial_weight={initial_weight}"
            )
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"`smoothing` must be in [0, 1). Received: smoothing={smoothing}")
        self.smoothing = smoothing
        with self.name_scope:
            self.weight = _non_trainable(float(initial_weight), "weight")
            self.ratio = _non_trainable(0.0, "ratio")
            # 0 until the first finite measurement, so the EMA does not start from 0.
            self.ratio_seen = _non_trainable(0.0, "ratio_seen")

    def update(self, step, background_loss, sparsity_loss):
        """Updates the smoothed ratio and the weight after one training step.

        Runs eagerly or inside `tf.function`. Non-finite losses leave the ratio unchanged.

        Args:
            step: int scalar (tensor or Python), the training step.
            background_loss: float scalar, the raw (unweighted) L_bg of this step.
            sparsity_loss: float scalar, the raw (unweighted) L_spar of this step.

        Returns:
            A float32 scalar tensor, the new weight l2.
        """
        step = tf.cast(step, tf.float32)
        background_loss = tf.cast(background_loss, tf.float32)
        sparsity_loss = tf.cast(sparsity_loss, tf.float32)
        finite = tf.logical_and(
            tf.math.is_finite(background_loss), tf.math.is_finite(sparsity_loss)
        )
        measured = background_loss / tf.maximum(sparsity_loss, RATIO_EPSILON)
        smoothed = self.smoothing * self.ratio + (1.0 - self.smoothing) * measured
        smoothed = tf.where(self.ratio_seen > 0.5, smoothed, measured)
        self.ratio.assign(tf.where(finite, smoothed, self.ratio))
        self.ratio_seen.assign(tf.where(finite, 1.0, self.ratio_seen))
        new_weight = self._next_weight(step, finite)
        self.weight.assign(new_weight)
        return tf.identity(new_weight)

    def _next_weight(self, step, finite):
        raise NotImplementedError

    def get_config(self):
        return {"smoothing": self.smoothing, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class HalvingSparsitySchedule(SparsitySchedule):
    """The reference's sparsity weight: l2 = background_weight / r, with r halving over steps.

    r = max(start_ratio / 2 ** floor(step / halve_every), min_ratio), so l2 rises in steps until r
    reaches its floor. The weight depends on the step alone; the smoothed ratio L_bg / L_spar is
    kept for logging only.

    Args:
        background_weight: positive float, l1, the weight of L_bg.
        start_ratio: positive float, r at step 0.
        halve_every: positive int, the steps between two halvings of r.
        min_ratio: positive float, no larger than `start_ratio`, the floor of r.
        smoothing: float in [0, 1), the EMA decay of the logged ratio.
        name: optional name of the module.
    """

    OPTIONS = {
        "background_weight": "bg_weight",
        "start_ratio": "spar_start_ratio",
        "halve_every": "spar_halve_every",
        "min_ratio": "spar_min_ratio",
    }

    def __init__(
        self,
        background_weight,
        start_ratio,
        halve_every,
        min_ratio,
        smoothing=0.9,
        name=None,
    ):
        if not background_weight > 0:
            raise ValueError(
                "`background_weight` must be positive. "
                f"Received: background_weight={background_weight}"
            )
        if not start_ratio > 0:
            raise ValueError(f"`start_ratio` must be positive. Received: start_ratio={start_ratio}")
        check_int("halve_every", halve_every)
        if not 0 < min_ratio <= start_ratio:
            raise ValueError(
                "`min_ratio` must be positive and at most `start_ratio`. "
                f"Received: min_ratio={min_ratio}, start_ratio={start_ratio}"
            )
        super().__init__(background_weight / start_ratio, smoothing=smoothing, name=name)
        self.background_weight = background_weight
        self.start_ratio = start_ratio
        self.halve_every = halve_every
        self.min_ratio = min_ratio

    def _next_weight(self, step, finite):
        halvings = tf.floor(step / self.halve_every)
        ratio = tf.maximum(self.start_ratio / tf.pow(2.0, halvings), self.min_ratio)
        return self.background_weight / ratio

    def get_config(self):
        return {
            "background_weight": self.background_weight,
            "start_ratio": self.start_ratio,
            "halve_every": self.halve_every,
            "min_ratio": self.min_ratio,
            **super().get_config(),
        }


class ControllerSparsitySchedule(SparsitySchedule):
    """The draft's sparsity weight: a multiplicative controller on the ratio L_bg / L_spar.

    The target ratio falls along a line,
    `target(step) = target_start + (target_end - target_start) * min(step / target_steps, 1)`,
    and each update moves the weight by
    `weight *= exp(gain * clip(log(target / ratio), -1, 1))`, clipped to
    `[min_weight, max_weight]`, where `ratio` is an EMA of `L_bg / max(L_spar, eps)`.

    Sign: a larger sparsity weight shrinks the mask; a smaller mask leaves more of the moving
    object in the background, which raises L_bg, and covers less than the changed area, which
    lowers L_spar. So the ratio rises with the weight: when the ratio is below the target the
    weight goes up, when above it goes down. A falling target thus lets the mask grow over
    training. Non-finite losses leave the weight and the ratio unchanged.

    Args:
        initial_weight: float in `[min_weight, max_weight]`, l2 before the first update.
        target_start: positive float, the target ratio at step 0.
        target_end: positive float below `target_start`, the target from `target_steps` on.
        target_steps: positive int, the length of the falling part of the target line.
        gain: positive float, the largest change of log(weight) in one update.
        smoothing: float in [0, 1), the EMA decay of the measured ratio.
        min_weight: positive float, the lower bound of the weight.
        max_weight: float, at least `min_weight`, the upper bound of the weight.
        name: optional name of the module.

    Reference:
        arXiv 2111.12747 (draft), the L_mask balance of section 3.3.
    """

    OPTIONS = {
        "initial_weight": "spar_initial_weight",
        "target_start": "spar_target_start",
        "target_end": "spar_target_end",
        "target_steps": "spar_target_steps",
        "gain": "spar_gain",
    }

    def __init__(
        self,
        initial_weight,
        target_start,
        target_end,
        target_steps,
        gain=0.01,
        smoothing=0.9,
        min_weight=1e-3,
        max_weight=1e3,
        name=None,
    ):
        if not 0 < min_weight <= max_weight:
            raise ValueError(
                "`min_weight` must be positive and at most `max_weight`. "
                f"Received: min_weight={min_weight}, max_weight={max_weight}"
            )
        if not min_weight <= initial_weight <= max_weight:
            raise ValueError(
                "`initial_weight` must be in [min_weight, max_weight]. "
                f"Received: initial_weight={initial_weight}, min_weight={min_weight}, "
                f"max_weight={max_weight}"
            )
        if not 0 < target_end < target_start:
            raise ValueError(
                "The target line must fall and stay positive: 0 < target_end < target_start. "
                f"Received: target_start={target_start}, target_end={target_end}"
            )
        check_int("target_steps", target_steps)
        if not gain > 0:
            raise ValueError(f"`gain` must be positive. Received: gain={gain}")
        super().__init__(initial_weight, smoothing=smoothing, name=name)
        self.initial_weight = initial_weight
        self.target_start = target_start
        self.target_end = target_end
        self.target_steps = target_steps
        self.gain = gain
        self.min_weight = min_weight
        self.max_weight = max_weight

    def target(self, step):
        """Returns the target ratio L_bg / L_spar at `step`, a float32 scalar tensor."""
        progress = tf.minimum(tf.cast(step, tf.float32) / self.target_steps, 1.0)
        return self.target_start + (self.target_end - self.target_start) * progress

    def _next_weight(self, step, finite):
        error = tf.math.log(self.target(step) / tf.maximum(self.ratio, RATIO_EPSILON))
        factor = tf.exp(self.gain * tf.clip_by_value(error, -1.0, 1.0))
        moved = tf.clip_by_value(self.weight * factor, self.min_weight, self.max_weight)
        return tf.where(finite, moved, self.weight)

    def get_config(self):
        return {
            "initial_weight": self.initial_weight,
            "target_start": self.target_start,
            "target_end": self.target_end,
            "target_steps": self.target_steps,
            "gain": self.gain,
            "min_weight": self.min_weight,
            "max_weight": self.max_weight,
            **super().get_config(),
        }


class OffSparsitySchedule(SparsitySchedule):
    """l2 = 0 at every step: L_spar removed, for the ablation (docs/method.md). The ratio
    L_bg / L_spar is still measured and logged.

    Args:
        smoothing: float in [0, 1), the EMA decay of the logged ratio.
        name: optional name of the module.
    """

    def __init__(self, smoothing=0.9, name=None):
        super().__init__(1.0, smoothing=smoothing, name=name)
        self.weight.assign(0.0)

    def _next_weight(self, step, finite):
        return tf.zeros_like(self.weight)


SPARSITY_SCHEDULES = {
    "controller": ControllerSparsitySchedule,
    "halving": HalvingSparsitySchedule,
    "off": OffSparsitySchedule,
}


def make_sparsity_schedule(name, **kwargs):
    """Builds the sparsity-weight schedule registered under `name` (the `--spar_schedule` flag).

    Args:
        name: a key of `SPARSITY_SCHEDULES`: `"controller"` (the draft), `"halving"` (the
            reference) or `"off"` (l2 = 0, the ablation).
        **kwargs: the constructor arguments of that schedule.

    Returns:
        A `SparsitySchedule`.
    """
    if name not in SPARSITY_SCHEDULES:
        raise ValueError(
            f"`name` must be one of {tuple(SPARSITY_SCHEDULES)}. Received: name={name!r}"
        )
    return SPARSITY_SCHEDULES[name](**kwargs)


def scheduled_sampling_probability(step, start, initial, increment, interval):
    """The probability p of feeding the model its own previous output at `step`.

    p is 0 before `start`, `initial` from `start` on, and rises by `increment` every `interval`
    steps after that, capped at 1 (docs/method.md, training; the draft counts in epochs, we in
    steps).

    Args:
        step: the optimizer step, an int or a scalar tensor.
        start: first step with p > 0.
        initial: p at `start`.
        increment: rise of p per `interval` steps.
        interval: steps between rises.

    Returns:
        A float32 scalar in [0, 1].
    """
    step = ops.cast(step, "float32")
    rises = ops.floor((step - start) / interval)
    p = ops.minimum(initial + increment * rises, 1.0)
    return ops.where(step >= start, p, 0.0)


@dataclasses.dataclass
class SparsityOptions(Options):
    """The schedule of l2, the sparsity weight (`--spar_*`)."""

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

    def sparsity_schedule_kwargs(self):
        """The constructor arguments of the chosen schedule, from the settings its class names
        (`SparsitySchedule.OPTIONS`)."""
        options = SPARSITY_SCHEDULES[self.spar_schedule].OPTIONS
        return {argument: getattr(self, name) for argument, name in options.items()}

    def check(self, config):
        self.finite_non_negative("spar_initial_weight", "spar_gain")
        for name in ("spar_target_start", "spar_target_end", "spar_start_ratio", "spar_min_ratio"):
            if not getattr(self, name) > 0:
                fail(name, getattr(self, name), "must be > 0")
        if self.spar_target_end >= self.spar_target_start:
            fail(
                "spar_target_end",
                self.spar_target_end,
                f"must be below --spar_target_start={self.spar_target_start} (the target "
                "ratio L_bg/L_spar falls over training)",
            )
        self.at_least(1, "spar_target_steps", "spar_halve_every")


@dataclasses.dataclass
class ScheduledSamplingOptions(Options):
    """Phase II's scheduled sampling (`--ss_*`), on pairs."""

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

    def resolved_ss_start(self, train_steps):
        return train_steps // 2 if self.ss_start < 0 else self.ss_start

    def check(self, config):
        for name in ("ss_initial", "ss_increment"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                fail(name, getattr(self, name), "must be in [0, 1]")
        self.at_least(1, "ss_interval")
