"""How Phase II feeds a batch of windows to the frame generator: as pairs of true frames (with
scheduled sampling), or as rollouts of its own outputs, the way it is tested.

Each way is a class with two steps, both called by `PhaseTwo.train_step`: `prepare`, outside the
gradient tape (what needs no gradient: the pairs, the sampled inputs, the controls), and
`generate`, inside it (the generator's calls whose loss is trained). Both return a `Fed`.
"""

from typing import NamedTuple

import tensorflow as tf
from keras import ops

from fgbg_keras import replicas
from fgbg_keras.mask_ops import (
    TRAIN_CONTROLS,
    carry_target,
    fitted_controls,
    identity_controls,
    translation_controls,
)
from fgbg_keras.models import generators
from fgbg_keras.rollout import stepped
from fgbg_keras.schedules import scheduled_sampling_probability


class Fed(NamedTuple):
    """What the generator was fed and drew, `[N, H, W, .]` each, and statistics to log.

    `inputs` are the frames G was fed (the discriminators' condition), `targets` the true next
    frames, `mask` and `target_mask` G's input and target masks, `outputs` G's output dict.
    """

    inputs: object
    targets: object
    mask: object
    target_mask: object
    outputs: dict
    statistics: dict


def flat_pairs(frames, masks):
    """Clips `[C, F, H, W, 3]` and their masks to inputs and targets `[C * (F - 1), H, W, 3]`,
    and their masks."""
    height, width = frames.shape[2], frames.shape[3]

    def flat(x, channels):
        return ops.reshape(x, (-1, height, width, channels))

    return (
        flat(frames[:, :-1], 3),
        flat(frames[:, 1:], 3),
        flat(masks[:, :-1], 1),
        flat(masks[:, 1:], 1),
    )


class PairFeeding:
    """Pairs (f_t, f_{t+1}) of the windows' true frames, with M's mask of the true next frame as
    the target (the draft). With the model's `scheduled_sampling` switched on, each input frame
    f_t (t > 0 in its clip) is replaced, with probability p, by G's own output for it from
    f_{t-1}, computed by a first pass without gradients; p follows
    `scheduled_sampling_probability` (`ss_start`, `ss_initial`, `ss_increment`, `ss_interval`),
    its draws stateless, seeded by `seed` and the step, so resuming is exact.
    """

    rollouts = False

    def __init__(self, ss_start=0, ss_initial=0.1, ss_increment=0.1, ss_interval=100, seed=0):
        if ss_interval < 1:
            raise ValueError(f"`ss_interval` must be >= 1. Received: ss_interval={ss_interval}")
        self.ss_start = ss_start
        self.ss_initial = ss_initial
        self.ss_increment = ss_increment
        self.ss_interval = ss_interval
        self.seed = seed

    def get_config(self):
        return {
            "ss_start": self.ss_start,
            "ss_initial": self.ss_initial,
            "ss_increment": self.ss_increment,
            "ss_interval": self.ss_interval,
            "seed": self.seed,
        }

    def prepare(self, model, data, frames, masks):
        inputs, targets, mask, target_mask = flat_pairs(frames, masks)
        statistics = {}
        if model.scheduled_sampling:
            inputs, statistics["ss_probability"] = self.sampled_inputs(
                model, frames, inputs, mask, target_mask
            )
        return inputs, targets, mask, target_mask, statistics

    def generate(self, model, prepared, training):
        inputs, targets, mask, target_mask, statistics = prepared
        outputs = model.frame_generator(
            {"frame": inputs, "mask": mask, "target_mask": target_mask}, training=training
        )
        return Fed(inputs, targets, mask, target_mask, outputs, statistics)

    def sampled_inputs(self, model, frames, inputs, mask, target_mask):
        """Inputs where each f_t (t > 0) is G's own output from f_{t-1} with probability p."""
        step = model.optimizer.iterations
        p = scheduled_sampling_probability(
            step, self.ss_start, self.ss_initial, self.ss_increment, self.ss_interval
        )
        first = model.frame_generator(
            {"frame": inputs, "mask": mask, "target_mask": target_mask}, training=False
        )["frame"]
        shape = ops.shape(frames)
        clips, pairs = shape[0], shape[1] - 1
        height, width = frames.shape[2], frames.shape[3]
        own = ops.reshape(ops.stop_gradient(first), (clips, pairs, height, width, 3))
        real = ops.reshape(inputs, (clips, pairs, height, width, 3))
        previous_output = ops.concatenate([real[:, :1], own[:, :-1]], axis=1)
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        # Drawn for the global batch; each replica keeps the rows of its own clips.
        draws = replicas.replica_rows(
            tf.random.stateless_uniform(
                tf.stack([clips * replicas.num_replicas(), pairs]), seed=seed
            ),
            clips,
        )
        use_own = ops.logical_and(draws < p, ops.arange(pairs)[None, :] > 0)
        sampled = ops.where(use_own[:, :, None, None, None], previous_output, real)
        return ops.reshape(sampled, (-1, height, width, 3)), p


class RolloutFeeding:
    """Each window rolled out from its first true frame as `rollout.rollout` does in `"carry"`
    mode: step k draws from G's own previous output, with the target mask m_0 moved by the
    composed controls (not M(f_{k+1}), which a test rollout never has), and the loss of every
    step reaches every earlier step through the generated frames. The controls are those fitted
    from M's masks of the window's true frames (`controls="fitted"`, the parameterized control:
    no labels needed) or the windows' labelled `"offsets"` (`"true"`, as the ConvLSTM baseline
    is trained). With `true_pairs`, G also predicts each true frame's successor with M's mask
    of the true next frame as the target (`PairFeeding` without scheduled sampling, the way
    next-frame prediction is tested), and the loss covers both: on real video M's masks of
    consecutive frames also differ where nothing moved, which a carried mask never shows.
    """

    rollouts = True

    def __init__(self, controls="fitted", true_pairs=False):
        if controls not in TRAIN_CONTROLS:
            raise ValueError(
                f"`controls` must be one of {TRAIN_CONTROLS}. Received: controls={controls!r}"
            )
        self.controls = controls
        self.true_pairs = bool(true_pairs)

    def get_config(self):
        return {"controls": self.controls, "true_pairs": self.true_pairs}

    def prepare(self, model, data, frames, masks):
        if self.controls == "fitted":
            return frames, masks, fitted_controls(masks)
        if "offsets" not in data:
            raise ValueError(
                "`train_controls='true'` needs batches with the windows' \"offsets\" "
                f"(data with labelled controls). Received keys: {sorted(data)}"
            )
        return frames, masks, translation_controls(data["offsets"])

    def generate(self, model, prepared, training):
        frames, masks, controls = prepared
        fed = rolled_out(model.frame_generator, frames, masks, controls, training)
        if self.true_pairs:
            fed = joined(fed, true_pairs(model.frame_generator, frames, masks, training))
        return Fed(*fed, {})


def true_pairs(frame_generator, frames, masks, training):
    """G's predictions of the windows' pairs of true frames `(f_t, f_{t+1})`, with M's masks
    of both (a rollout's first step: the memory is the current frame), in `rolled_out`'s
    order."""
    inputs, targets, mask, target_mask = flat_pairs(frames, masks)
    current = (inputs, mask)
    outputs = frame_generator(
        generators.rollout_inputs(inputs, mask, target_mask, current, current), training=training
    )
    return inputs, targets, mask, target_mask, outputs


def joined(*parts):
    """Tuples `(inputs, targets, mask, target_mask, outputs)` of several generator calls
    joined along the batch, in their order."""
    *tensors, outputs = zip(*parts)
    merged = {key: ops.concatenate([o[key] for o in outputs], 0) for key in outputs[0]}
    return (*(ops.concatenate(list(t), 0) for t in tensors), merged)


def rolled_out(frame_generator, frames, masks, controls, training):
    """Each window `[C, F, H, W, 3]` rolled out from its first frame by `frame_generator`, the
    mask carried by `controls` `[C, F - 1, 2, 3]`.

    Returns:
        The frames G was fed, the true targets, the input and target masks (each
        `[(F - 1) * C, H, W, .]`, step by step), and G's outputs joined in that order.
    """
    length = frames.shape[1]
    if length is None:
        raise ValueError("Training on rollouts needs windows of a known number of frames.")
    initial = masks[:, 0]
    total = identity_controls(ops.shape(frames)[0])
    targets = []
    for k in range(length - 1):
        target, total = carry_target(initial, controls[:, k], total)
        targets.append(target)
    steps = stepped(frame_generator, frames[:, 0], initial, targets, training)
    steps = [
        (frame, frames[:, k + 1], mask, target, output)
        for k, (frame, mask, target, output) in enumerate(steps)
    ]
    return joined(*steps)
