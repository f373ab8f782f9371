"""The registry of data kinds: what `--data` names, as training streams and as test clips.

`--data=KIND` or `--data=KIND:LOCATION` picks the `DataSource` registered as KIND:
`synthetic` (the built-in set, generated on the fly), `tfrecord:DIR` (a folder written by
`python -m data_pipelines.convert`) or `tfds:NAME` (a TFDS-prepared copy in `--tfds_data_dir`).
Every source gives the same windows (through `pipeline.batch_windows` / `pipeline.pairs`) and the
same clip arrays for evaluation, so training and evaluation never ask where the frames came from.
Ground truth (`"masks"`, `"centroids"`, `"offsets"`) is present only when the source has it.

A new kind is one module with a `DataSource` subclass registered with `register`, and an import
in `data_pipelines/__init__.py`; `--data` lists it with its help. Options of its own are
`TrainConfig` fields (each with its help), which its `from_config` reads.
"""

import abc

from fgbg_common.registry import Registry

_KINDS = Registry("data kind", "--data")


class DataSource(abc.ABC):
    """One `--data` kind.

    Attributes:
        kind: the `--data` prefix it is registered under.
        usage: how `--data` names it, e.g. `"tfrecord:DIR"` (no `:` when it takes no location).
        help: what it is, for the help of `--data`.
    """

    kind = None
    usage = None
    help = None

    @classmethod
    @abc.abstractmethod
    def from_config(cls, location, config):
        """The source that `--data=KIND:location` names in a `RunConfig` (`location` is None
        for kinds that take none)."""

    @property
    def has_controls(self):
        """Whether the training windows carry the object's true `"offsets"` (the controls)."""
        return False

    @property
    def has_masks(self):
        """Whether the clips carry ground-truth `"masks"`."""
        return False

    def check(self, frames_per_clip, clip_length=None):  # noqa: B027, an optional hook
        """Raises a ValueError naming `--data` (or the flag to fix) when the data cannot train:
        missing, empty, or without `frames_per_clip` consecutive frames to train on or
        `clip_length` frames (`--clip_length`) to evaluate on."""

    def recording_frames(self, recording):
        """Every frame of one recording (a converted video or frame folder, named by the
        `"sources"` of `evaluation_clips`) in time order, uint8 `[T, H, W, 3]`: its train clips
        where it has some, else its test clips; None where the data has no recordings. A
        background model of the still camera (the MOG2 baseline) learns from them."""
        return None

    def longest_test_clip(self):
        """The most frames a test clip has, or None where clips of any length can be made: a
        rollout evaluation makes at most this many frames minus one."""
        return None

    @abc.abstractmethod
    def training_windows(self, frames_per_clip, seed, start_index, background=False):
        """An infinite `tf.data.Dataset` of windows of `frames_per_clip` consecutive frames:
        dicts with `"frames"` uint8 `[F, H, W, 3]` and, where the source has them, `"masks"`
        `[F, H, W, 1]` and `"offsets"` `[F - 1, 2]`, seeded by `seed`, from the element
        `start_index` of the stream (so that a resumed run goes on); with `background`, also
        `"background"` uint8 `[H, W, 3]`, the window's whole clip's
        `change_map.clip_background`."""

    def splits_by_worker(self, num_workers):
        """Whether each of `num_workers` workers of a multi-worker run can read a part of the
        training data of its own (`worker_windows`). Where not, every worker reads the whole
        `training_windows` stream and keeps its share of each batch."""
        return False

    def worker_windows(self, frames_per_clip, seed, start_index, worker, background=False):
        """The `training_windows` of worker `worker = (index, num_workers)` alone, read from its
        own part of the data and seeded by `(seed, start_index, index)`; only where
        `splits_by_worker(num_workers)`."""
        raise NotImplementedError(f"--data={self.kind} is not split by worker.")

    @abc.abstractmethod
    def evaluation_clips(self, split, num_clips, clip_length, seed):
        """`num_clips` clips of `clip_length` frames for evaluation, in memory: `{"frames":
        uint8 [N, T, H, W, 3]}` and the ground truth the source has (`"masks"`,
        `"centroids"`, `"offsets"` [N, T - 1, 2]), in `synthetic.make_split`'s layout; where
        the clips come from recordings, `"sources"` `[N]` names each one's
        (`recording_frames`). `split` is `"validation"` or `"test"`."""


def register(source):
    """Class decorator: registers a `DataSource` subclass under its `kind`."""
    return _KINDS.register(source.kind, source)


# The registered kinds, in the order they were registered.
kinds = _KINDS.names


def describe():
    """Every registered kind with its help, for the help of `--data`."""
    return "; ".join(f"{_KINDS[kind].usage}: {_KINDS[kind].help}" for kind in kinds())


def _usages():
    usages = [repr(_KINDS[kind].usage) for kind in kinds()]
    return ", ".join(usages[:-1]) + f" or {usages[-1]}" if len(usages) > 1 else usages[0]


def parse_data_flag(data):
    """`--data` as `(kind, location)`, e.g. `("synthetic", None)`, `("tfrecord", DIR)` or
    `("tfds", NAME)`.

    Raises:
        ValueError: naming the flag when it names no registered kind, or a kind without the
            location it needs.
    """
    kind, separator, location = str(data).partition(":")
    source = _KINDS.get(kind, None)
    takes_location = source is not None and ":" in source.usage
    if source is not None and bool(separator and location) == takes_location:
        return kind, location or None
    raise ValueError(f"--data={data!r}: must be {_usages()}.")


def source(config):
    """The `DataSource` that `config.train.data` names, with its options from the config."""
    kind, location = parse_data_flag(config.train.data)
    return _KINDS[kind].from_config(location, config)
