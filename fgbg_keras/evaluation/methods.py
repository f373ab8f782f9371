"""The registry of rollout methods: the model's ways of generating a test clip, its baselines,
and the measurement floor, each with the label the tables and plots give it.

Every method starts from the first frame of a test clip and produces the clip's other T frames
(`evaluation.rollouts` scores them). The built-in ones, in the order every table lists them:

- `true_carry`, `true_reestimate`: the model steered by the object's true offsets, with the mask
  carried forward or re-estimated from each generated frame (ground truth needed);
- `fitted_carry`: the "parameterized control" of docs/method.md, offsets fitted from
  binarize(M(.)) of consecutive true frames: needs no ground truth, and is how real video is
  evaluated;
- `fitted_parts`: the same per connected part of the first mask, each carried by its own
  fitted offsets (`evaluation.parts`): several movers going their own ways;
- `mapped_carry`: the true offsets mapped to the steps of M's masks by one 2x2 matrix, fitted on
  training windows' labels (`fit_offset_map`; data whose training split has controls): the
  labels a user steers with (a robot's actions, the whole arm's centroid) need not move as M's
  mask does, and the ConvLSTM learns that relation from the same labels;
- `paste_only`: the compositor of `mask_ops.paste_foreground` stepped with M's masks, carried by
  the true controls (the fitted ones without ground truth), and no frame generator: what M alone
  gives (the frame generator should beat it);
- `mog2_paste`: the same compositor with the masks of OpenCV's MOG2 background subtractor
  (`background_subtraction`), learned from the clip's recording, carried by the same controls:
  what a user of a still camera would build without fgbg (data from recordings);
- `oracle`: the same compositor given the true masks (the first frame's true sprite pasted at
  its true positions): the ceiling of moving the object by pasting;
- `copy_first`: the first frame, repeated;
- `convlstm`: the ConvLSTM baseline (`--convlstm_dir`), given the true offsets where it was
  trained with them, else zeros;
- `measurement`: the true frames themselves, the floor of the control error (M's own error).

A new method is a `prepare(context)` function registered with `register`, in this module or in a
module that `fgbg_keras/evaluation/__init__.py` imports; the report, the printed table and the
ablation read the registry.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from absl import logging

from data_pipelines import datasets
from data_pipelines.preprocess import preprocess_frames, to_uint8
from fgbg_common.registry import Registry
from fgbg_keras import mask_ops, rollout
from fgbg_keras.evaluation import background_subtraction, parts

# What a method may need besides the model: the clips' true offsets and masks, a ConvLSTM run,
# training data with labelled offsets (`DataSource.has_controls`), clips cut from recordings
# whose frames the data source gives (`DataSource.recording_frames`).
GROUND_TRUTH = "ground_truth"
CONVLSTM = "convlstm"
TRAINING_CONTROLS = "training_controls"
RECORDINGS = "recordings"
# The training windows (of OFFSET_MAP_FRAMES frames) that `fit_offset_map` reads by default.
OFFSET_MAP_WINDOWS = 128
OFFSET_MAP_FRAMES = 8


@dataclasses.dataclass(frozen=True)
class RolloutMethod:
    """A registered rollout method.

    Attributes:
        name: its key in the results.
        label: its name in the report and the plots.
        column: its header in the printed table (the reference method has none).
        prepare: `prepare(context)` (a `Context`) -> `generate(batch)`, which maps a
            `RolloutBatch` to a dict with `"frames"` `[B, T, H, W, 3]` (and `"masks"` where the
            method has its own).
        needs: what it needs besides the model (`GROUND_TRUTH`, `CONVLSTM`,
            `TRAINING_CONTROLS`, `RECORDINGS`).
        reference: it is the true frames: only the control error and lost objects apply, and
            LPIPS and FVD are not computed for it.
    """

    name: str
    label: str
    column: str
    prepare: Callable
    needs: frozenset
    reference: bool


@dataclasses.dataclass
class RolloutBatch:
    """A batch of test clips as the methods see it, in the model's pixels.

    Attributes:
        frames: the clips `[B, T + 1, H, W, 3]` in [-1, 1]; `first` is frame 0, `truth` the T
            frames to generate.
        model_masks: binarize(M(frames)) `[B, T + 1, H, W, 1]`.
        controls: `{"fitted": [B, T, 2, 3]}`, and `"true"` with ground truth.
        offsets: the true offsets `[B, T, 2]` (None without ground truth).
        masks: the true masks `[B, T + 1, H, W, 1]` (None without ground truth).
        centroids: where the object is in each of the T frames `[B, T, 2]`: the truth, or M's
            centroids on the true frames without it (NaN where M finds nothing).
        sources: the recording of each clip `[B]` (None where the data has no recordings).
    """

    frames: tf.Tensor
    model_masks: tf.Tensor
    controls: dict
    centroids: tf.Tensor
    offsets: tf.Tensor = None
    masks: tf.Tensor = None
    sources: np.ndarray = None

    @property
    def first(self):
        return self.frames[:, 0]

    @property
    def truth(self):
        return self.frames[:, 1:]

    @property
    def steering(self):
        """The controls the baselines that move a mask are steered by: the true ones where
        there is ground truth, else the fitted ones."""
        return self.controls.get("true", self.controls["fitted"])


class Context:
    """What the methods of one evaluation share: the restored run, the ConvLSTM baseline if
    any, and one compiled rollout per mask mode.

    Args:
        run: a `runs.RestoredRun`.
        convlstm: a restored `ConvLSTMPredictor` at the run's frame size, or None.
        convlstm_controls: steer it with the true offsets (it was trained with them).
    """

    def __init__(self, run, convlstm=None, convlstm_controls=False):
        self.run = run
        self.convlstm = convlstm
        self.convlstm_controls = convlstm_controls
        self._rollouts = {}
        self._data = datasets.source(run.config)
        self._histories = {}

    def rollout_fn(self, mask_mode):
        """The model's compiled rollout (`rollout.make_rollout_fn`) in `mask_mode`."""
        if mask_mode not in self._rollouts:
            self._rollouts[mask_mode] = rollout.make_rollout_fn(
                self.run.mask_generator, self.run.frame_generator, mask_mode
            )
        return self._rollouts[mask_mode]

    def mog2_masks(self, frames, sources):
        """`background_subtraction.mog2_masks` of clips `[B, T, H, W, 3]` (in [-1, 1]) from
        the recordings `sources` `[B]`, each model learned from its recording's frames
        (`DataSource.recording_frames`) at the clips' size."""
        size = tuple(frames.shape[2:4])
        histories = []
        for source in sources:
            if (source, size) not in self._histories:
                recorded = self._data.recording_frames(source)
                if recorded is not None:
                    recorded = to_uint8(preprocess_frames(recorded, size)).numpy()
                self._histories[source, size] = recorded
            histories.append(self._histories[source, size])
        return background_subtraction.mog2_masks(np.asarray(frames), histories)


_METHODS = Registry("rollout method", "method")
# Every registered method, in table order; the `RolloutMethod` of one.
names = _METHODS.names
get = _METHODS.get


def register(name, label, column="", needs=(), reference=False):
    """Decorator: registers `prepare(context)` as the rollout method `name`."""

    def decorator(prepare):
        method = RolloutMethod(name, label, column, prepare, frozenset(needs), reference)
        _METHODS.register(name, method)
        return prepare

    return decorator


def label(name):
    """The report's label of a method (its name if it is not registered)."""
    return _METHODS[name].label if name in _METHODS else name


def available(have):
    """The methods whose needs are all in `have` (a set of the needs above)."""
    return [method for method in map(get, names()) if method.needs <= set(have)]


# The model's method that the per-step tables, the example rollouts and the ablation show: the
# first of these that was evaluated.
PRIMARY = ("true_carry", "fitted_carry")


def primary(evaluated):
    """The primary method among `evaluated` (names, or a results dict keyed by them)."""
    return next(name for name in PRIMARY if name in evaluated)


def _model_method(name, label, column, needs=()):
    """Registers the model steered by the controls the name says ("true" or "fitted") with the
    mask mode it says ("carry" or "reestimate")."""
    controls, mask_mode = name.split("_")

    def prepare(context):
        rollout_fn = context.rollout_fn(mask_mode)
        return lambda batch: rollout_fn(batch.first, batch.controls[controls])

    register(name, label, column, needs=needs)(prepare)


_model_method("true_carry", "fgbg (true controls, mask carried)", "true/carry", (GROUND_TRUTH,))
_model_method(
    "true_reestimate", "fgbg (true controls, mask re-estimated)", "true/reest.", (GROUND_TRUTH,)
)
_model_method("fitted_carry", "fgbg (parameterized control)", "fitted/carry")


@register("fitted_parts", "fgbg (parameterized control per part of the mask)", "fitted/parts")
def _fitted_parts(context):
    frame_generator = context.run.frame_generator

    def generate(batch):
        targets = parts.part_targets(batch.model_masks)
        steps = rollout.stepped(
            frame_generator, batch.first, batch.model_masks[:, 0], list(np.swapaxes(targets, 0, 1))
        )
        frames = [tf.cast(output["frame"], tf.float32) for *_, output in steps]
        return {"frames": tf.stack(frames, 1), "masks": tf.constant(targets)}

    return generate


def fit_offset_map(run, windows=OFFSET_MAP_WINDOWS, frames_per_clip=None, batch=16):
    """`mask_ops.fit_offset_map` on the first `windows` training windows of the run's data
    (seeded by `--seed`; `frames_per_clip` frames each, by default `OFFSET_MAP_FRAMES` or the
    clips' length if shorter): their labelled offsets against the steps of binarize(M(.))
    between their frames, over the pairs where M finds something in both frames.

    Returns:
        `(matrix [2, 2], pairs used)`.
    """
    config = run.config
    size = (config.model.image_size,) * 2
    frames_per_clip = frames_per_clip or min(OFFSET_MAP_FRAMES, config.train.clip_length)
    stream = datasets.source(config).training_windows(frames_per_clip, config.train.seed, 0)
    offsets, steps = [], []
    for window in stream.batch(batch).take(-(-windows // batch)):
        frames = preprocess_frames(window["frames"], size)
        flat = run.mask_generator(tf.reshape(frames, [-1, *size, 3]), training=False)
        flat = tf.cast(flat, tf.float32)
        masks = tf.reshape(mask_ops.binarize(flat), [*frames.shape[:-1], 1])
        found = tf.reduce_any(masks > 0, axis=[2, 3, 4])
        both = tf.logical_and(found[:, :-1], found[:, 1:])
        scale = mask_ops.resize_scale(window["frames"].shape[2:4], size)
        offsets.append(tf.boolean_mask(window["offsets"] * scale, both))
        steps.append(tf.boolean_mask(mask_ops.clip_translations(masks), both))
    offsets, steps = tf.concat(offsets, 0).numpy(), tf.concat(steps, 0).numpy()
    return mask_ops.fit_offset_map(offsets, steps), len(offsets)


@register(
    "mapped_carry",
    "fgbg (true controls mapped to M's mask steps)",
    "mapped/carry",
    needs=(GROUND_TRUTH, TRAINING_CONTROLS),
)
def _mapped_carry(context):
    try:
        matrix, pairs = fit_offset_map(context.run)
        logging.info(
            "mapped_carry: mask step = offset @ %s, fitted on %d training pairs.",
            matrix.round(3).tolist(),
            pairs,
        )
    except ValueError as error:  # e.g. training labels that never move along one axis
        logging.warning("mapped_carry: %s It steers with the raw offsets.", error)
        matrix = np.eye(2, dtype=np.float32)
    rollout_fn = context.rollout_fn("carry")

    def generate(batch):
        mapped = tf.einsum("btc,cd->btd", tf.cast(batch.offsets, tf.float32), matrix)
        return rollout_fn(batch.first, mask_ops.translation_controls(mapped))

    return generate


def _paste(inputs, training=False):
    """A frame "generator" with no weights: the masked content moved, the hole filled."""
    del training
    return {
        "frame": mask_ops.paste_foreground(inputs["frame"], inputs["mask"], inputs["target_mask"])
    }


@register("paste_only", "paste-only (M alone, no generator)", "paste-only")
def _paste_only(context):
    rollout_fn = rollout.make_rollout_fn(context.run.mask_generator, _paste)
    return lambda batch: rollout_fn(batch.first, batch.steering)


@register(
    "mog2_paste",
    "paste-only with MOG2's masks (OpenCV background subtractor)",
    "MOG2 paste",
    needs=(RECORDINGS,),
)
def _mog2_paste(context):
    def generate(batch):
        first = context.mog2_masks(batch.frames[:, :1], batch.sources)[:, 0]
        outputs = rollout.rollout(
            lambda frames, training: first, _paste, batch.first, batch.steering
        )
        return {"frames": outputs["frames"], "masks": outputs["masks"]}

    return generate


@register(
    "oracle", "oracle (true sprite pasted at the true masks)", "oracle", needs=(GROUND_TRUTH,)
)
def _oracle(context):
    def generate(batch):
        size, steps = batch.frames.shape[2:4], batch.truth.shape[1]

        def flat(x, channels):
            return tf.reshape(x, [-1, *size, channels])

        pasted = mask_ops.paste_foreground(
            flat(tf.repeat(batch.first[:, None], steps, axis=1), 3),
            flat(tf.repeat(batch.masks[:, :1], steps, axis=1), 1),
            flat(batch.masks[:, 1:], 1),
        )
        return {"frames": tf.reshape(pasted, batch.truth.shape)}

    return generate


@register("copy_first", "copy-first-frame", "copy-first")
def _copy_first(context):
    return lambda batch: {"frames": tf.repeat(batch.first[:, None], batch.truth.shape[1], axis=1)}


@register("convlstm", "ConvLSTM (same controls)", "ConvLSTM", needs=(CONVLSTM,))
def _convlstm(context):
    def generate(batch):
        steered = batch.offsets
        if not context.convlstm_controls or steered is None:
            steered = tf.zeros([batch.frames.shape[0], batch.truth.shape[1], 2])
        return {"frames": context.convlstm({"frame": batch.first, "offsets": steered})}

    return generate


@register(
    "measurement",
    "M on the true frames (measurement floor)",
    needs=(GROUND_TRUTH,),
    reference=True,
)
def _measurement(context):
    return lambda batch: {"frames": batch.truth}
