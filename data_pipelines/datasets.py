"""What `--data` names: the built-in synthetic set, converted records or a TFDS-prepared copy,
as training streams and as in-memory test clips.

`--data=synthetic` (default) generates the built-in set; `--data=tfrecord:DIR` reads a folder
written by `python -m data_pipelines.convert`; `--data=tfds:NAME` reads a prepared copy from
`--tfds_data_dir` (`tfds_source`). All give the same streams (through
`pipeline.batch_windows` / `pipeline.pairs`) and the same clip arrays for evaluation, so the
training loop and the evaluation do not know where the frames came from. Ground truth
(`"masks"`, `"centroids"`, `"offsets"`) is present only when the source has it.
"""

import numpy as np
import tensorflow as tf

from data_pipelines import pipeline, records, spec, synthetic, tfds_source


def parse_data_flag(data):
    """`--data` as `(kind, location)`: `("synthetic", None)`, `("tfrecord", DIR)` or
    `("tfds", NAME)`.

    Raises:
        ValueError: naming the flag when it is neither.
    """
    if data == "synthetic":
        return "synthetic", None
    kind, _, location = str(data).partition(":")
    if kind in ("tfrecord", "tfds") and location:
        return kind, location
    raise ValueError(f"--data={data!r}: must be 'synthetic', 'tfrecord:DIR' or 'tfds:NAME'.")


def check_data(data, frames_per_clip=2, tfds_data_dir=""):
    """Checks `--data` before a run starts: a tfrecord folder must hold a converted data set
    whose train and test splits have clips, and train clips of `frames_per_clip` frames (else
    the training stream would never yield); a TFDS data set must be prepared in
    `tfds_data_dir`. Returns the records' `DatasetInfo` (None otherwise)."""
    kind, location = parse_data_flag(data)
    if kind == "synthetic":
        return None
    if kind == "tfds":
        tfds_source.video_key(tfds_source.builder(location, tfds_data_dir))
        return None
    if not tf.io.gfile.isdir(location):
        raise ValueError(f"--data={data!r}: {location!r} is not a folder.")
    info = spec.DatasetInfo.read(location)
    for split in spec.SPLITS:
        records.shard_files(location, split, info)
        if not info.splits[split]["clips"]:
            raise ValueError(
                f"--data={data!r}: the {split} split has no clips; convert again with a "
                "--test_fraction that leaves clips in both splits."
            )
    longest = info.splits["train"].get("max_frames", frames_per_clip)
    if longest < frames_per_clip:
        raise ValueError(
            f"--frames_per_clip={frames_per_clip}: the train clips of {location!r} have at most "
            f"{longest} frames."
        )
    return info


def windows(data, frames_per_clip, seed, start_index, synthetic_clips=None, tfds_data_dir=""):
    """An infinite stream of windows of `frames_per_clip` frames (uint8, with masks if any).

    Synthetic: `pipeline.clip_windows` over `synthetic_clips` from element `start_index`, so
    resuming is exact. Records and TFDS: `records.random_windows` seeded by
    `(seed, start_index)`: a resumed run gets a fresh deterministic stream, not the continuation
    of the old one.
    """
    kind, location = parse_data_flag(data)
    if kind == "synthetic":
        return pipeline.clip_windows(synthetic_clips, frames_per_clip, seed, start_index)
    stream_seed = int(np.random.SeedSequence([seed, start_index]).generate_state(1)[0])
    if kind == "tfds":
        clips = tfds_source.clips(location, tfds_data_dir, "train", seed=stream_seed)
        shape = {"frames": tfds_source.frame_shape(location, tfds_data_dir)}
        return records.random_windows(clips, frames_per_clip, stream_seed, shape=shape)
    return records.record_windows(location, "train", frames_per_clip, seed=stream_seed)


def record_clips(directory, split, num_clips, clip_length):
    """The first `num_clips` clips of a split holding at least `clip_length` frames, cut to
    `clip_length`, as arrays in `synthetic.make_split`'s layout (`"offsets"` from the
    centroids when the data set has them).

    Raises:
        ValueError: naming the folder when the split has no clip that long.
    """
    info = spec.DatasetInfo.read(directory)
    keys = ["frames"] + [k for k in ("masks", "centroids") if k in info.features]
    clips = records.read_clips(directory, split, shuffle=False, repeat=False)
    out = records.first_clips(clips, num_clips, clip_length, keys, f"{directory!r}: the {split}")
    if "centroids" in out:
        out["offsets"] = np.diff(out["centroids"], axis=1)
    return out


def evaluation_clips(data, split, num_clips, clip_length, image_size, seed, tfds_data_dir=""):
    """Clips for evaluation: synthetic `split` ("validation" or "test") or, for records and
    TFDS, the test split (validation uses its first clips too)."""
    kind, location = parse_data_flag(data)
    if kind == "synthetic":
        config = synthetic.scaled_config(image_size, clip_length)
        return synthetic.make_split(split, num_clips, config, seed=seed)
    if kind == "tfds":
        return tfds_source.test_clips(location, tfds_data_dir, num_clips, clip_length)
    return record_clips(location, "test", num_clips, clip_length)
