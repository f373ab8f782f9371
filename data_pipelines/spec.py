"""The one declared feature spec of converted clips, and the only code that knows its keys.

A converted clip is a `tf.train.SequenceExample`: its context describes the clip, its feature
lists hold one entry per frame. `clip_to_example` writes one (conversion, pure Python, no TF
graph); `parse_clip` reads one back inside a `tf.data` graph. Which optional feature lists a
data set holds is recorded in its `dataset.json` (`DatasetInfo`), so the reader parses exactly
what was written.
"""

import dataclasses
import io
import json
import os

import numpy as np
import tensorflow as tf
from PIL import Image

FORMAT_VERSION = 1
INFO_FILE = "dataset.json"
ENCODINGS = ("png", "jpeg")
SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class Feature:
    """One declared feature: its key, dtype, shape (per frame for feature lists), meaning."""

    name: str
    dtype: str  # "string", "int64" or "float32"
    shape: tuple
    doc: str


CONTEXT = (
    Feature("clip_id", "string", (), "unique id: source-relative path, and #k for its k-th clip"),
    Feature("source", "string", (), "the input file or folder the clip came from"),
    Feature("label", "string", (), "class name (frame folders: the class folder), else ''"),
    Feature("height", "int64", (), "frame height in pixels"),
    Feature("width", "int64", (), "frame width in pixels"),
    Feature("fps", "float32", (), "frames per second (0 when unknown)"),
    Feature("num_frames", "int64", (), "frames in the clip"),
)
FRAMES = Feature("frames", "string", (), "encoded RGB frame (PNG or JPEG, see `encoding`)")
OPTIONAL_SEQUENCE = (
    Feature("masks", "string", (), "ground-truth foreground mask, PNG of uint8 {0, 1}"),
    Feature("centroids", "float32", (2,), "ground-truth object centroid (x, y) in pixels"),
    Feature("actions", "float32", (4,), "BAIR, pushing: the robot's action at this frame"),
    Feature("endeffector_pos", "float32", (3,), "BAIR, pushing: the end effector's position"),
    Feature(
        "agent_masks",
        "string",
        (),
        "pushing: the controlled object's own mask (the arm, without what it pushes), PNG",
    ),
    Feature("endeffector_xy", "float32", (2,), "pushing: the end effector's (x, y) in pixels"),
)
SEQUENCE = (FRAMES,) + OPTIONAL_SEQUENCE
OPTIONAL_NAMES = tuple(f.name for f in OPTIONAL_SEQUENCE)


@dataclasses.dataclass
class Clip:
    """A clip in memory, as the sources produce it and `clip_to_example` writes it.

    `frames` is uint8 `[T, H, W, 3]`; optional per-frame arrays have T rows: `masks` uint8
    `[T, H, W, 1]` in {0, 1}, `centroids` `[T, 2]`, `actions` `[T, 4]`, `endeffector_pos`
    `[T, 3]`, `agent_masks` like `masks`, `endeffector_xy` `[T, 2]`. `group` is the unit of the
    train/test split, not written: clips cut from one video or one frame folder share it, so the
    split never puts parts of one recording on both sides; `None` means the clip is its own
    group. `split`, also not written, is set by sources that come with an official split
    (BAIR); `None` lets the conversion choose by `group`.
    """

    clip_id: str
    source: str
    frames: np.ndarray
    label: str = ""
    fps: float = 0.0
    masks: np.ndarray = None
    centroids: np.ndarray = None
    actions: np.ndarray = None
    endeffector_pos: np.ndarray = None
    agent_masks: np.ndarray = None
    endeffector_xy: np.ndarray = None
    group: str = None
    split: str = None

    def optional_features(self):
        """Names of the optional feature lists this clip holds."""
        return tuple(name for name in OPTIONAL_NAMES if getattr(self, name) is not None)


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _context_feature(feature, value):
    if feature.dtype == "string":
        return _bytes([str(value).encode("utf-8")])
    if feature.dtype == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))


def encode_image(array, encoding, quality=95):
    """uint8 `[H, W, 3]` (or `[H, W, 1]`) as PNG or JPEG bytes."""
    array = np.asarray(array, np.uint8)
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    buffer = io.BytesIO()
    if encoding == "png":
        image.save(buffer, format="PNG", compress_level=1)
    else:
        image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def clip_to_example(clip, encoding="png", jpeg_quality=95):
    """A `Clip` as a serialized `tf.train.SequenceExample` of this spec.

    Raises:
        ValueError: naming the clip when its arrays do not have the declared shapes.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"`encoding` must be one of {ENCODINGS}. Received: {encoding!r}")
    frames = np.asarray(clip.frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"Clip {clip.clip_id!r}: frames must be uint8 [T, H, W, 3]. Received: "
            f"{frames.dtype} {frames.shape}"
        )
    length, height, width = frames.shape[:3]
    values = {
        "clip_id": clip.clip_id,
        "source": clip.source,
        "label": clip.label,
        "height": height,
        "width": width,
        "fps": clip.fps,
        "num_frames": length,
    }
    example = tf.train.SequenceExample()
    for feature in CONTEXT:
        example.context.feature[feature.name].CopyFrom(
            _context_feature(feature, values[feature.name])
        )
    lists = example.feature_lists.feature_list
    for frame in frames:
        lists["frames"].feature.append(_bytes([encode_image(frame, encoding, jpeg_quality)]))
    for feature in OPTIONAL_SEQUENCE:
        value = getattr(clip, feature.name)
        if value is None:
            continue
        value = np.asarray(value)
        if len(value) != length:
            raise ValueError(
                f"Clip {clip.clip_id!r}: {feature.name} has {len(value)} rows for {length} frames."
            )
        if feature.dtype == "string" and value.shape != (length, height, width, 1):
            raise ValueError(
                f"Clip {clip.clip_id!r}: {feature.name} must have shape "
                f"{(length, height, width, 1)} like its frames. Received: {value.shape}"
            )
        for row in value:
            if feature.dtype == "string":  # masks: lossless, whatever the frame encoding
                lists[feature.name].feature.append(_bytes([encode_image(row, "png")]))
            else:
                flat = np.asarray(row, np.float32).reshape(-1)
                if flat.shape != (int(np.prod(feature.shape)),):
                    raise ValueError(
                        f"Clip {clip.clip_id!r}: {feature.name} rows must have shape "
                        f"{feature.shape}. Received: {np.shape(row)}"
                    )
                lists[feature.name].feature.append(
                    tf.train.Feature(float_list=tf.train.FloatList(value=flat))
                )
    return example.SerializeToString()


def _parse_spec(feature, sequence):
    dtype = {"string": tf.string, "int64": tf.int64, "float32": tf.float32}[feature.dtype]
    if sequence:
        return tf.io.FixedLenSequenceFeature(feature.shape, dtype)
    default = "" if feature.dtype == "string" else 0
    return tf.io.FixedLenFeature(feature.shape, dtype, default_value=default)


def decode_images(encoded, height, width, channels):
    """Encoded images `[T]` (PNG or JPEG) to uint8 `[T, height, width, channels]`."""
    images = tf.map_fn(
        lambda e: tf.ensure_shape(
            tf.io.decode_image(e, channels=channels, expand_animations=False),
            [None, None, channels],
        ),
        encoded,
        fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8),
    )
    return tf.reshape(images, tf.stack([-1, height, width, channels]))


def parse_clip(serialized, optional_features=(), decode=True):
    """Parses one serialized clip inside a `tf.data` graph, decoding its images if asked.

    Args:
        serialized: a scalar string tensor, one `SequenceExample` of this spec.
        optional_features: the optional feature lists to read (`DatasetInfo.features`).
        decode: decode `"frames"` (and `"masks"`); `False` leaves them encoded, `[T]` strings,
            for a reader that decodes only the frames it keeps (`decode_clip`).

    Returns:
        A dict: `"frames"` uint8 `[T, H, W, 3]`, the context features (`"clip_id"`, `"label"`,
        ...), and each requested optional feature: `"masks"` uint8 `[T, H, W, 1]`, the float
        ones `[T, ...]`.
    """
    unknown = set(optional_features) - set(OPTIONAL_NAMES)
    if unknown:
        raise ValueError(f"Unknown optional features {sorted(unknown)}; known: {OPTIONAL_NAMES}.")
    sequence = [FRAMES] + [f for f in OPTIONAL_SEQUENCE if f.name in optional_features]
    context, lists = tf.io.parse_single_sequence_example(
        serialized,
        context_features={f.name: _parse_spec(f, False) for f in CONTEXT},
        sequence_features={f.name: _parse_spec(f, True) for f in sequence},
    )
    clip = {**context, **lists}
    return decode_clip(clip) if decode else clip


def decode_clip(clip):
    """A clip of `parse_clip(..., decode=False)` (or any slice of its frames) with its images
    decoded: `"frames"` uint8 `[T, H, W, 3]`, `"masks"` and `"agent_masks"` uint8
    `[T, H, W, 1]`."""
    clip = dict(clip)
    height, width = clip["height"], clip["width"]
    clip["frames"] = decode_images(clip["frames"], height, width, 3)
    for feature in OPTIONAL_SEQUENCE:
        if feature.dtype == "string" and feature.name in clip:
            clip[feature.name] = decode_images(clip[feature.name], height, width, 1)
    return clip


@dataclasses.dataclass
class DatasetInfo:
    """What `dataset.json` says about a converted data set.

    Attributes:
        features: the optional feature lists every clip holds.
        encoding: `"png"` or `"jpeg"`.
        height, width: the frame size of every clip.
        splits: per split, `{"files": [...], "clips": n, "frames": n, "per_class": {...}}`.
        skipped: `{"path", "reason"}` of every input, or part of one, that was left out.
        source, options: what the conversion was asked to do.
        recordings: per recorded input (a video or frame folder), its camera check
            (`data_pipelines.camera_check.summarize`).
    """

    features: tuple
    encoding: str
    height: int
    width: int
    splits: dict
    skipped: list = dataclasses.field(default_factory=list)
    source: str = ""
    options: dict = dataclasses.field(default_factory=dict)
    recordings: list = dataclasses.field(default_factory=list)
    format_version: int = FORMAT_VERSION

    def to_json(self):
        values = dataclasses.asdict(self)
        values["features"] = list(self.features)
        values["spec"] = {
            "context": [dataclasses.asdict(f) for f in CONTEXT],
            "feature_lists": [dataclasses.asdict(f) for f in SEQUENCE],
        }
        return json.dumps(values, indent=2, sort_keys=True)

    def write(self, directory):
        with tf.io.gfile.GFile(os.path.join(directory, INFO_FILE), "w") as f:
            f.write(self.to_json())

    @classmethod
    def read(cls, directory):
        """The `DatasetInfo` of a converted data set.

        Raises:
            ValueError: naming the directory when it holds no readable `dataset.json`.
        """
        path = os.path.join(directory, INFO_FILE)
        if not tf.io.gfile.exists(path):
            raise ValueError(
                f"{directory!r} has no {INFO_FILE}: it is not a data set written by "
                "`python -m data_pipelines.convert`."
            )
        try:
            with tf.io.gfile.GFile(path) as f:
                values = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path!r} is not valid JSON: {error}") from None
        if values.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path!r} has format_version {values.get('format_version')!r}; this fgbg reads "
                f"{FORMAT_VERSION}. Convert the data again."
            )
        values.pop("spec", None)
        try:
            values["features"] = tuple(values["features"])
            return cls(**values)
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path!r} is not a complete {INFO_FILE}: {error}") from None
