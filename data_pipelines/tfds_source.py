"""A TFDS-prepared copy of a video data set (e.g. `bair_robot_pushing_small`), read, never
downloaded.

`--data=tfds:NAME --tfds_data_dir=DIR` reads `DIR/NAME/<version>/` as `tfds build` (or
`builder.download_and_prepare()`) left it on a machine that could reach the internet. Each
example's video is its first feature of uint8 frames `[T, H, W, 3]` (`image_main` for BAIR,
then `video`, then any); its `train` split trains and its `test` split evaluates.
"""

import tensorflow as tf

from data_pipelines import datasets, records

PREFERRED_KEYS = ("image_main", "video")
SPLITS = ("train", "test")


def _how_to_prepare(name, data_dir):
    return (
        f"Prepare it where the internet is reachable with `tfds build {name} "
        f"--data_dir={data_dir}` (or `tfds.builder({name!r}, data_dir=...)"
        ".download_and_prepare()`), then copy that folder here; fgbg never downloads."
    )


def builder(name, data_dir):
    """The prepared TFDS builder of `name` in `data_dir`.

    Raises:
        ValueError: naming the flag when tensorflow-datasets is missing, `data_dir` is unset,
            or the data set is not prepared there (saying how to prepare it).
    """
    flag = f"--data=tfds:{name}"
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ValueError(f"{flag} needs tensorflow-datasets: pip install -e '.[tfds]'.") from None
    if not data_dir:
        raise ValueError(f"{flag} needs --tfds_data_dir, the folder holding the prepared copy.")
    try:
        found = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises its own DatasetNotFoundError and friends
        raise ValueError(
            f"{flag}: no data set {name!r} in --tfds_data_dir={data_dir!r} "
            f"({type(error).__name__}). {_how_to_prepare(name, data_dir)}"
        ) from None
    if not tf.io.gfile.exists(found.data_dir) or (
        hasattr(found, "is_prepared") and not found.is_prepared()
    ):
        raise ValueError(
            f"{flag}: not prepared in --tfds_data_dir={data_dir!r} (looked in "
            f"{found.data_dir!r}). {_how_to_prepare(name, data_dir)}"
        )
    missing = [s for s in SPLITS if s not in found.info.splits]
    if missing:
        raise ValueError(f"{flag}: the prepared copy has no {missing} split.")
    return found


def video_key(found):
    """The feature holding the video: uint8 `[T, H, W, 3]`."""
    specs = found.info.features.get_tensor_info()

    def is_video(info):
        return info.dtype == tf.uint8 and len(info.shape) == 4 and info.shape[-1] == 3

    keys = [k for k in PREFERRED_KEYS if k in specs and is_video(specs[k])]
    keys += sorted(k for k, info in specs.items() if is_video(info))
    if not keys:
        raise ValueError(
            f"--data=tfds:{found.name}: no feature holds uint8 video frames [T, H, W, 3]; "
            f"features: {sorted(specs)}."
        )
    return keys[0]


def clips(name, data_dir, split, seed=0, shuffle=True, repeat=True):
    """The split's videos as dicts `{"frames": uint8 [T, H, W, 3]}`."""
    import tensorflow_datasets as tfds

    found = builder(name, data_dir)
    key = video_key(found)
    dataset = found.as_dataset(
        split=split,
        shuffle_files=shuffle,
        read_config=tfds.ReadConfig(shuffle_seed=seed),
    )
    dataset = dataset.map(lambda x: {"frames": x[key]}, num_parallel_calls=tf.data.AUTOTUNE)
    if repeat:
        dataset = dataset.repeat()
    if shuffle:
        dataset = dataset.shuffle(256, seed=seed)
    return dataset


def frame_shape(name, data_dir):
    """`[H, W, 3]` of the data set's frames (None where they vary)."""
    found = builder(name, data_dir)
    return list(found.info.features.get_tensor_info()[video_key(found)].shape[1:])


def test_clips(name, data_dir, num_clips, clip_length):
    """The first `num_clips` test videos of at least `clip_length` frames, cut to it, as
    `{"frames": uint8 [N, clip_length, H, W, 3]}`."""
    videos = clips(name, data_dir, "test", shuffle=False, repeat=False)
    return records.first_clips(
        videos, num_clips, clip_length, ["frames"], f"--data=tfds:{name}: the test"
    )


@datasets.register
class TfdsSource(datasets.DataSource):
    """`--data=tfds:NAME`: the prepared copy of `name` in `data_dir` (`--tfds_data_dir`). Its
    videos have no ground truth."""

    kind = "tfds"
    usage = "tfds:NAME"
    help = "a TFDS-prepared copy in --tfds_data_dir"

    def __init__(self, name, data_dir):
        self.name = name
        self.data_dir = data_dir

    @classmethod
    def from_config(cls, location, config):
        return cls(location, config.train.tfds_data_dir)

    def check(self, frames_per_clip, clip_length=None):
        video_key(builder(self.name, self.data_dir))

    def training_windows(self, frames_per_clip, seed, start_index, background=False):
        """`records.random_windows` over the train split, seeded by `(seed, start_index)`: a
        resumed run gets a fresh deterministic stream."""
        stream_seed = records.stream_seed(seed, start_index)
        videos = clips(self.name, self.data_dir, "train", seed=stream_seed)
        shape = {"frames": frame_shape(self.name, self.data_dir)}
        return records.random_windows(
            videos, frames_per_clip, stream_seed, shape=shape, background=background
        )

    def evaluation_clips(self, split, num_clips, clip_length, seed):
        del split, seed  # the test split serves validation and evaluation, in order
        return test_clips(self.name, self.data_dir, num_clips, clip_length)
