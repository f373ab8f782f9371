"""Where converted clips come from: video files, frame folders, BAIR records, and the built-in
synthetic and pushing sets, rendered.

Each source lists its inputs (`list_inputs`) and reads one input into clips (`read_input`),
yielding `spec.Clip`s and, for whatever it has to leave out, `Skipped` records with the reason.
Reading never raises for a bad input: a corrupt video, an unreadable frame or a truncated
record file is skipped and reported, and the rest of the data set converts. Frames are fitted
to a square `size` here (`fit_frame`), once, so the tf.data reader only decodes.

Pure Python (PyAV, Pillow, protobuf): the Beam workers of `data_pipelines.conversion` run it.
"""

import dataclasses
import os
import re

import numpy as np
from PIL import Image, UnidentifiedImageError

from data_pipelines import spec
from data_pipelines.pushing import PushingOptions

SOURCES = ("videos", "frames", "bair", "synthetic", "pushing")
# The sources rendered here rather than read: their inputs are clip indices.
RENDERED = ("synthetic", "pushing")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
RESIZE_MODES = ("crop", "pad")
# How clips are assigned to the train and test splits (`--split`).
SPLIT_MODES = ("recording", "time")
# The sources of recordings: `--split=time` cuts them in time, and the conversion checks that
# their camera is still (`camera_check`).
RECORDED = ("videos", "frames")
BAIR_FRAMES = 30
BAIR_SIZE = 64


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
        num_clips: how many clips the rendered sources (`RENDERED`) make.
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


def _files(directory, extensions):
    return sorted(
        (f for f in os.listdir(directory) if f.lower().endswith(extensions)), key=natural_key
    )


def list_inputs(source, root, options=Options()):
    """The inputs of a source, in a fixed order: paths (or synthetic clip indices).

    - `videos`: every file under `root` (recursively) with a video extension.
    - `frames`: every folder `root/<class>/<clip>/` holding images (the class is kept as the
      label), or `root/<clip>/` directly (no label).
    - `bair`: every file under `root` whose name contains `.tfrecord`.
    - `synthetic`, `pushing`: `range(options.num_clips)`; `root` is not read.

    Raises:
        ValueError: naming `root` when it does not exist or holds no input of the source.
    """
    if source not in SOURCES:
        raise ValueError(f"--source={source!r}: must be one of {SOURCES}.")
    if source in RENDERED:
        return list(range(options.num_clips))
    if not root or not os.path.isdir(root):
        raise ValueError(f"--input={root!r} is not a folder.")
    found = []
    if source == "frames":
        for first in sorted(os.listdir(root), key=natural_key):
            path = os.path.join(root, first)
            if not os.path.isdir(path):
                continue
            if _files(path, IMAGE_EXTENSIONS):
                found.append(path)
            for second in sorted(os.listdir(path), key=natural_key):
                clip = os.path.join(path, second)
                if os.path.isdir(clip) and _files(clip, IMAGE_EXTENSIONS):
                    found.append(clip)
    else:
        for directory, _, names in sorted(os.walk(root)):
            for name in sorted(names, key=natural_key):
                video = source == "videos" and name.lower().endswith(VIDEO_EXTENSIONS)
                if video or (source == "bair" and ".tfrecord" in name):
                    found.append(os.path.join(directory, name))
    if not found:
        wanted = {
            "videos": f"video files ({', '.join(VIDEO_EXTENSIONS)})",
            "frames": "frame folders ROOT/<class>/<clip>/<frame>.png|jpg",
            "bair": "files named *.tfrecord*",
        }[source]
        raise ValueError(f"--input={root!r} holds no {wanted}.")
    return found


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


def _relative(path, root):
    return os.path.relpath(path, root) if root else path


def read_video(path, root, options):
    """Clips of one video file (PyAV), fitted to the size; a corrupt file is skipped."""
    import av  # imported here: the other sources do not need FFmpeg

    frames, fps, problem = [], 0.0, None
    try:
        with av.open(path) as container:
            if not container.streams.video:
                yield Skipped(path, "no video stream")
                return
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            step = 1.0 / options.fps if options.fps else 0.0
            next_time = 0.0
            for index, frame in enumerate(container.decode(stream)):
                if step:
                    time = frame.time if frame.time is not None else index / (fps or 1.0)
                    if time + 1e-6 < next_time:
                        continue
                    next_time += step
                    while next_time <= time:
                        next_time += step
                frames.append(
                    fit_frame(frame.to_ndarray(format="rgb24"), options.size, options.resize)
                )
                if options.max_frames and len(frames) >= options.max_frames:
                    break
    except (av.error.FFmpegError, OSError, ValueError) as error:
        problem = f"{type(error).__name__}: {error}"
    if not frames:
        yield Skipped(path, f"unreadable video: {problem or 'no frame could be decoded'}")
        return
    if problem:
        yield Skipped(path, f"decoding stopped after {len(frames)} frames ({problem}); kept them")
    if options.fps:
        fps = min(fps, options.fps) if fps else options.fps  # resampling never adds frames
    yield from recording_clips(frames, _relative(path, root), path, options, fps=fps)


def read_frame_folder(path, root, options):
    """Clips of one frame folder; an unreadable frame splits the clip and is skipped."""
    group = _relative(path, root)
    label = os.path.basename(os.path.dirname(path)) if os.path.dirname(group) else ""
    frames = []
    for name in _files(path, IMAGE_EXTENSIONS):
        frame_path = os.path.join(path, name)
        try:
            with Image.open(frame_path) as image:
                frames.append(fit_frame(to_rgb(image), options.size, options.resize))
        except (UnidentifiedImageError, OSError, ValueError) as error:
            yield Skipped(frame_path, f"unreadable image: {type(error).__name__}: {error}")
            frames.append(None)
    yield from recording_clips(frames, group, path, options, label=label)


def _bair_clip(example, path, index, options):
    context = example.context.feature
    frames, actions, positions = [], [], []
    for i in range(BAIR_FRAMES):
        key = f"{i}/image_main/encoded"
        if key not in context:
            break
        raw = context[key].bytes_list.value[0]
        if len(raw) != BAIR_SIZE * BAIR_SIZE * 3:
            return Skipped(f"{path}#{index}", f"{key} holds {len(raw)} bytes, not 64x64x3")
        frame = np.frombuffer(raw, np.uint8).reshape(BAIR_SIZE, BAIR_SIZE, 3)
        frames.append(fit_frame(frame, options.size, options.resize))
        actions.append(list(context[f"{i}/action"].float_list.value))
        positions.append(list(context[f"{i}/endeffector_pos"].float_list.value))
    if len(frames) < options.min_frames:
        return Skipped(f"{path}#{index}", f"{len(frames)} frames, fewer than --frames_per_clip")
    try:
        actions = np.asarray(actions, np.float32).reshape(len(frames), 4)
        positions = np.asarray(positions, np.float32).reshape(len(frames), 3)
    except ValueError:
        return Skipped(f"{path}#{index}", "actions or end-effector positions of the wrong size")
    return frames, actions, positions


def read_bair(path, root, options):
    """The videos of one original BAIR softmotion TFRecord file (30 frames each).

    Each record is a `tf.train.Example` whose features hold, for frame i,
    `{i}/image_main/encoded` (raw 64x64x3 uint8 bytes), `{i}/action` (4 floats) and
    `{i}/endeffector_pos` (3 floats); it is parsed as a `SequenceExample`, whose context has the
    same wire format, so records written either way read the same. The official split is kept:
    files under a `test` folder go to the test split, the others to train. A record file cut
    short keeps the videos before the cut.
    """
    import tensorflow as tf

    group = _relative(path, root)
    split = "test" if "test" in os.path.normpath(group).split(os.sep)[:-1] else "train"
    index, consumed = 0, 0
    try:
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            consumed += len(record) + 16  # length, its CRC, the data, its CRC
            try:
                example = tf.train.SequenceExample.FromString(record)
            except Exception as error:  # protobuf's DecodeError, whose module varies
                yield Skipped(f"{path}#{index}", f"not a SequenceExample: {error}")
                index += 1
                continue
            result = _bair_clip(example, path, index, options)
            if isinstance(result, Skipped):
                yield result
            else:
                frames, actions, positions = result
                yield spec.Clip(
                    f"{group}#{index}",
                    path,
                    np.stack(frames),
                    actions=actions,
                    endeffector_pos=positions,
                    split=split,
                )
            index += 1
    except tf.errors.OpError as error:
        yield Skipped(path, f"record file unreadable after {index} videos: {error.message}")
        return
    # tf.data ends quietly at a record cut off by the end of the file; say so.
    size = tf.io.gfile.stat(path).length
    if consumed != size:
        yield Skipped(
            path,
            f"record file unreadable after {index} videos: it ends inside a record "
            f"({size - consumed} bytes left over); the videos before were kept",
        )


SYNTHETIC_CLIP_LENGTH = 16


def synthetic_config(options):
    """The `SyntheticConfig` the synthetic source makes clips with (16 frames by default)."""
    from data_pipelines import synthetic

    return synthetic.scaled_config(options.size, options.clip_length or SYNTHETIC_CLIP_LENGTH)


def read_synthetic(index, root, options):
    """Synthetic clip `index`, with its ground-truth masks and centroids."""
    from data_pipelines import synthetic

    config = synthetic_config(options)
    values = synthetic.generate_clip(np.random.SeedSequence([options.seed, 3, index]), config)
    yield spec.Clip(
        f"synthetic/{index:06d}",
        "synthetic",
        values["frames"],
        masks=values["masks"],
        centroids=values["centroids"],
    )


def read_pushing(index, root, options):
    """Pushing clip `index` (30 frames unless `options.clip_length`), with all its ground truth.
    A model that fails to load or a render that fails raises; `conversion` skips the clip and
    names it."""
    from data_pipelines import pushing

    length = options.clip_length or pushing.CLIP_LENGTH
    values = pushing.generate_clip(
        np.random.SeedSequence([options.seed, 4, index]), options.size, length, options.pushing
    )
    yield spec.Clip(
        f"pushing/{index:06d}",
        "pushing",
        values["frames"],
        fps=10.0,
        masks=values["masks"],
        centroids=values["centroids"],
        actions=values["actions"],
        endeffector_pos=values["endeffector_pos"],
        agent_masks=values["agent_masks"],
        endeffector_xy=values["endeffector_xy"],
    )


READERS = {
    "videos": read_video,
    "frames": read_frame_folder,
    "bair": read_bair,
    "synthetic": read_synthetic,
    "pushing": read_pushing,
}


def read_input(source, item, root, options=Options()):
    """Yields the `spec.Clip`s of one input, and a `Skipped` for whatever is left out."""
    yield from READERS[source](item, root, options)
