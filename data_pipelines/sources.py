"""Where converted clips come from: the `--source` registry and what its sources share.

A source (`Source`, registered with `register`) lists its inputs (`list_inputs`) and reads one
input into clips (`read_input`), yielding `spec.Clip`s and, for whatever it has to leave out,
`Skipped` records with the reason. The sources are video files, frame folders, BAIR records and
the built-in synthetic and pushing sets, rendered: one module each in `data_pipelines/inputs/`.
A new source is one module there with a `Source` subclass registered with `register`, and an
import in `data_pipelines/inputs/__init__.py`.
Reading never raises for a bad input: a corrupt video, an unreadable frame or a truncated
record file is skipped and reported, and the rest of the data set converts. Frames are fitted
to a square `size` here (`fit_frame`), once, so the tf.data reader only decodes.

Pure Python (PyAV, Pillow, protobuf): the Beam workers of `data_pipelines.conversion` run it.
"""

import dataclasses
import os
import re

import numpy as np
from PIL import Image

from data_pipelines import spec
from data_pipelines.pushing import PushingOptions
from fgbg_common.registry import Registry

RESIZE_MODES = ("crop", "pad")
# How clips are assigned to the train and test splits (`--split`).
SPLIT_MODES = ("recording", "time")

_SOURCES = Registry("conversion source", "--source")


@dataclasses.dataclass(frozen=True)
class Options:
    """How inputs become clips.

    Attributes:
        size: side of the square output frames.
        resize: `"crop"` (scale the short side to `size`, cut the centre) or `"pad"` (scale the
            long side to `size`, pad the rest with black).
        fps: resample videos to this frame rate (0: keep every frame).
        max_frames: read at most this many frames of each video (0: all).
        clip_length: cut videos and frame folders into clips of this many frames (0: one clip
            per input); a shorter last piece is kept if it has `min_frames`.
        min_frames: clips with fewer frames are skipped (training's `frames_per_clip`).
        split: `"recording"` (each recording, all clips cut from one video or frame folder,
            goes wholly to train or to test, by a hash of its name) or `"time"` (the last
            `test_fraction` of each recording's frames is test, the rest train, and no clip
            straddles the cut: one long video gives both splits).
        test_fraction: the fraction of the recordings (`"recording"`) or of each recording's
            frames (`"time"`) that goes to the test split.
        num_clips: how many clips the rendered sources (`Source.rendered`) make.
        seed: seed of the rendered clips.
        pushing: the pushing set's `pushing.PushingOptions`.
    """

    size: int = 64
    resize: str = "crop"
    fps: float = 0.0
    max_frames: int = 0
    clip_length: int = 0
    min_frames: int = 2
    split: str = "recording"
    test_fraction: float = 0.1
    num_clips: int = 1000
    seed: int = 0
    pushing: PushingOptions = dataclasses.field(default_factory=PushingOptions)


@dataclasses.dataclass(frozen=True)
class Skipped:
    """An input, or a part of one, left out of the data set, and why."""

    path: str
    reason: str


def fit_frame(image, size, resize="crop"):
    """An RGB uint8 image `[H, W, 3]` fitted to `[size, size, 3]`.

    Resampling is Pillow's antialiased bilinear filter, the same filter `preprocess_frames`
    uses when it resizes.
    """
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return np.ascontiguousarray(image, np.uint8)
    scale = size / (min(height, width) if resize == "crop" else max(height, width))
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
    if resize == "crop":
        top, left = (new_h - size) // 2, (new_w - size) // 2
        return np.ascontiguousarray(resized[top : top + size, left : left + size])
    out = np.zeros((size, size, 3), np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out


def to_rgb(image):
    """A Pillow image of any mode as RGB uint8 `[H, W, 3]`.

    Grayscale is repeated over the channels, alpha is dropped, palettes are expanded, and 16- or
    32-bit integer images are scaled from 0..65535 to 0..255.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, np.float64)
        gray = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == "F":
        values = np.asarray(image, np.float64)
        if values.size and values.max() <= 1.0:
            values = values * 255.0
        gray = np.clip(np.round(values), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"), np.uint8)


def natural_key(name):
    """Sorts names with numbers in numeric order: `clip2` before `clip10`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def walk_files(root, wanted):
    """The files under `root` (recursively) whose names `wanted` accepts, in a fixed order."""
    found = []
    for directory, _, names in sorted(os.walk(root)):
        for name in sorted(names, key=natural_key):
            if wanted(name):
                found.append(os.path.join(directory, name))
    return found


def files(directory, extensions):
    """The names of the files in `directory` with one of `extensions`, in natural order."""
    return sorted(
        (f for f in os.listdir(directory) if f.lower().endswith(extensions)), key=natural_key
    )


def _cut(frames, clip_id, path, options):
    """Cuts a frame list into clips `(clip_id#k, frames)` of `options.clip_length`; pieces
    shorter than `options.min_frames` are skipped as `path#k`."""
    length = options.clip_length or max(len(frames), 1)
    for k, start in enumerate(range(0, max(len(frames), 1), length)):
        piece = frames[start : start + length]
        if len(piece) < options.min_frames:
            yield Skipped(
                f"{path}#{k}",
                f"clip of {len(piece)} frames is shorter than --frames_per_clip="
                f"{options.min_frames}",
            )
            continue
        yield f"{clip_id}#{k}", np.stack(piece)


def _time_parts(frames, options):
    """`[(split, frames)]`: the whole recording with no split chosen yet, or, with
    `--split=time`, its first frames for train and its last `test_fraction` for test."""
    if options.split != "time":
        return [(None, frames)]
    cut = len(frames) - round(len(frames) * options.test_fraction)
    return [("train", frames[:cut]), ("test", frames[cut:])]


def _runs(frames):
    """The runs of consecutive frames of a list in which None marks an unreadable frame."""
    runs, current = [], []
    for frame in frames:
        if frame is None:
            runs.append(current)
            current = []
        else:
            current.append(frame)
    return [run for run in runs + [current] if run]


def recording_clips(frames, group, path, options, **fields):
    """The `spec.Clip`s of one recording (with `group`, its split where `--split=time` chose
    it, and `fields`, e.g. `fps` or `label`) and `Skipped`s.

    `frames` lists the recording's frames in order, None where one could not be read (a clip
    never spans it). Each run of readable frames is cut by `_cut`; with `--split=time` the
    recording is first cut in two (`_time_parts`), and a part too short for one clip is
    skipped, naming the recording, so `dataset.json` says which recordings are in one split only.
    """
    parts = [(split, _runs(part)) for split, part in _time_parts(frames, options)]
    numbered = sum(len(runs) for _, runs in parts) > 1
    index = 0
    for split, runs in parts:
        kept = 0
        for run in runs:
            suffix = f"@{index}" if numbered else ""
            index += 1
            for item in _cut(run, group + suffix, path + suffix, options):
                if isinstance(item, Skipped):
                    yield item
                    continue
                kept += 1
                clip_id, stacked = item
                yield spec.Clip(clip_id, path, stacked, group=group, split=split, **fields)
        if split is not None and not kept:
            yield Skipped(
                path,
                f"--split=time: its {split} part ({sum(map(len, runs))} of its {len(frames)} "
                f"frames) holds no clip of --frames_per_clip={options.min_frames} frames: the "
                f"recording has no {split} clips",
            )


def relative(path, root):
    """`path` relative to `root` (as it is where there is no root): the recording's group."""
    return os.path.relpath(path, root) if root else path


class Source:
    """One kind of `--input` that `convert` reads.

    Attributes:
        recorded: its inputs are recordings of a camera: `--split=time` cuts them in time, and
            the conversion checks that their camera is still (`camera_check`).
        rendered: it makes its clips here: its inputs are clip indices (`--num_clips`), and
            `--input` is not read.
        wanted: what `--input` must hold, for the error when it holds none.
        clip_length: a rendered source's frames per clip where `--clip_length` is 0.
    """

    recorded = False
    rendered = False
    wanted = ""
    clip_length = 0

    def rendered_length(self, options):
        """The frames of each clip a rendered source makes with `options`."""
        return options.clip_length or self.clip_length

    def find(self, root):
        """The inputs under the folder `root`, in a fixed order (not called when `rendered`)."""
        raise NotImplementedError

    def read(self, item, root, options):
        """Yields the `spec.Clip`s of one input, and a `Skipped` for whatever is left out;
        never raises for a bad input."""
        raise NotImplementedError

    def check(self, options, fail):
        """Checks this source's settings before the conversion starts, calling
        `fail(flag, value, requirement)` for a bad one (default: nothing to check)."""


def register(name):
    """A class decorator: registers an instance of a `Source` subclass as `--source=name`."""

    def add(cls):
        _SOURCES.register(name, cls())
        return cls

    return add


def names():
    """The registered sources, in the order `--help` lists them."""
    return _SOURCES.names()


def get(name):
    """The `Source` registered as `name`; a ValueError naming `--source` for another name."""
    return _SOURCES.get(name)


def recorded_names():
    """The sources of recordings (`Source.recorded`)."""
    return tuple(name for name in names() if _SOURCES[name].recorded)


def list_inputs(source, root, options=Options()):
    """The inputs of a source, in a fixed order: paths, or clip indices for a rendered one.

    Raises:
        ValueError: naming `--source` when it is not registered, and `root` when it does not
            exist or holds no input of the source.
    """
    entry = get(source)
    if entry.rendered:
        return list(range(options.num_clips))
    if not root or not os.path.isdir(root):
        raise ValueError(f"--input={root!r} is not a folder.")
    found = entry.find(root)
    if not found:
        raise ValueError(f"--input={root!r} holds no {entry.wanted}.")
    return found


def read_input(source, item, root, options=Options()):
    """Yields the `spec.Clip`s of one input, and a `Skipped` for whatever is left out."""
    yield from get(source).read(item, root, options)
