"""`tf.data` over converted TFRecords: shards read in parallel, windows of consecutive frames.

The windows have the keys of `pipeline.clip_windows` (`"frames"`, and `"masks"` when the data
set has ground truth), so `pipeline.batch_windows` and `pipeline.pairs` turn them into Phase II
clip batches and Phase I (f_t, f_{t+1}, d) triples exactly as for the built-in set.
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from data_pipelines import spec
from data_pipelines.change_map import clip_background


def shard_files(directory, split, info=None):
    """The shard paths of a split of a converted data set.

    Raises:
        ValueError: naming the directory when it is not a converted data set or the split has
            no shard on disk.
    """
    info = info or spec.DatasetInfo.read(directory)
    if split not in info.splits:
        raise ValueError(f"Unknown split {split!r}; {directory!r} has {sorted(info.splits)}.")
    files = [os.path.join(directory, name) for name in info.splits[split]["files"]]
    if not files:
        raise ValueError(f"{directory!r}: the {split} split has no shards.")
    missing = [f for f in files if not tf.io.gfile.exists(f)]
    if missing:
        raise ValueError(
            f"{directory!r}: the {split} split lists {len(files)} shards and {len(missing)} of "
            f"them are missing (e.g. {missing[:1]}). Convert the data again."
        )
    return files


def read_clips(
    directory,
    split,
    seed=0,
    shuffle=True,
    repeat=True,
    cycle_length=4,
    decode=True,
    shard=None,
):
    """Parsed clips (dicts of `spec.parse_clip`, images encoded unless `decode`) of one split.

    Shards are interleaved `cycle_length` at a time and parsed in parallel; with `shuffle` the
    shard order is shuffled every epoch and clips pass a shuffle buffer, both seeded, so a
    seeded stream is the same on every run. A shard that turns out corrupt at read time ends
    early: tf.data logs the error as a warning and the stream goes on with the other shards.
    `shard=(index, count)` reads only the files `index`, `index + count`, ... of the split
    (one worker's part of a multi-worker run; there must be `count` files or more).
    """
    info = spec.DatasetInfo.read(directory)
    paths = shard_files(directory, split, info)
    if shard is not None:
        index, count = shard
        if len(paths) < count:
            raise ValueError(
                f"{directory!r}: the {split} split has {len(paths)} shards, fewer than the "
                f"{count} parts asked for."
            )
        paths = paths[index::count]
    files = tf.data.Dataset.from_tensor_slices(paths)
    if shuffle:
        files = files.shuffle(len(paths), seed=seed)
    if repeat:
        files = files.repeat()
    records = files.interleave(
        lambda f: tf.data.TFRecordDataset(f).ignore_errors(log_warning=True),
        cycle_length=cycle_length,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if shuffle:
        records = records.shuffle(256, seed=seed)
    return records.map(
        lambda s: spec.parse_clip(s, info.features, decode=decode),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).ignore_errors(log_warning=True)


def first_clips(clips, num_clips, clip_length, keys, where):
    """The first `num_clips` windows of `clip_length` frames of the clips, each clip cut into
    as many as it holds one after the other (a clip of 40 frames gives two of 17, at frames 0
    and 17): `{key: array [N, clip_length, ...]}` for `keys`, stacked in memory (evaluation
    clips), and `"backgrounds"` `[N, H, W, 3]`, the `change_map.clip_background` of the whole
    clip each window was cut from. A per-clip value (a clip's source) is repeated for each of
    its windows.

    Raises:
        ValueError: starting with `where` ("<data set>: the <split>") when no clip is that long.
    """
    out = {key: [] for key in keys}
    out["backgrounds"] = []
    for clip in clips:
        length = int(tf.shape(clip["frames"])[0])
        background = clip_background(clip["frames"]).numpy() if length >= clip_length else None
        for start in range(0, length - clip_length + 1, clip_length):
            if len(out["frames"]) == num_clips:
                break
            out["backgrounds"].append(background)
            for key in keys:
                value = clip[key]
                cut = value[start : start + clip_length] if value.shape.rank else value
                out[key].append(cut.numpy())
        if len(out["frames"]) == num_clips:
            break
    if not out["frames"]:
        raise ValueError(f"{where} split has no clip of {clip_length} frames or more.")
    return {key: np.stack(values) for key, values in out.items()}


def stream_seed(seed, start_index, *more):
    """The seed of the window stream of a run seeded by `seed` that starts at element
    `start_index`: a resumed run gets a fresh deterministic stream, not the continuation of the
    one it stopped. `more` (a worker's index) makes other streams of the same run."""
    return int(np.random.SeedSequence([seed, start_index, *more]).generate_state(1)[0])


def random_windows(clips, frames_per_clip, seed, decode=None, shape=None, background=False):
    """One window of `frames_per_clip` consecutive frames per clip, at a random offset.

    The offset of the k-th clip of the stream is drawn with `tf.random.stateless_uniform` seeded
    by `(seed, k)`. Clips shorter than `frames_per_clip` are left out.

    Args:
        clips: a `tf.data.Dataset` of dicts with `"frames"` `[T, ...]` (and other per-frame
            entries to cut alike, e.g. `"masks"`; other entries are passed to `decode` only).
        frames_per_clip: window length `F`, >= 2.
        seed: int seed of the offsets.
        decode: maps the cut clip to decoded frames (records: `spec.decode_clip`); None when the
            frames are decoded already.
        shape: `{key: [H, W, C]}` of the decoded windows, to give them static shapes.
        background: also give each window its whole clip's background `[H, W, 3]`: the
            clip's `"background"` where it has one, else `change_map.clip_background` of it
            (every frame of the clip is decoded for it).

    Returns:
        A `tf.data.Dataset` of dicts `{key: [F, ...]}` for the per-frame keys of `shape`, and
        `"background"` if asked.
    """
    if frames_per_clip < 2:
        raise ValueError(f"--frames_per_clip={frames_per_clip}: must be >= 2.")
    clips = clips.filter(lambda c: tf.shape(c["frames"])[0] >= frames_per_clip)

    def window(k, clip):
        length = tf.shape(clip["frames"], out_type=tf.int64)[0]
        start = tf.random.stateless_uniform(
            [],
            seed=tf.stack([tf.constant(seed, tf.int64), k]),
            maxval=length - frames_per_clip + 1,
            dtype=tf.int64,
        )
        # Per-frame features the window does not keep (a pushing set's agent masks) are dropped
        # here, not decoded for every window.
        kept = {k: v for k, v in clip.items() if k in shape or k not in spec.OPTIONAL_NAMES}
        if background and decode is not None:
            # The median needs every frame: the whole clip is decoded once, the window cut
            # from it.
            kept, decode_cut = decode(kept), None
        else:
            decode_cut = decode
        cut = dict(kept)
        for key in shape:
            cut[key] = kept[key][start : start + frames_per_clip]
        if decode_cut is not None:
            cut = decode_cut(cut)
        window = {key: tf.ensure_shape(cut[key], [frames_per_clip, *shape[key]]) for key in shape}
        if background:
            median = clip["background"] if "background" in clip else clip_background(kept["frames"])
            window["background"] = tf.ensure_shape(median, shape["frames"])
        return window

    return clips.enumerate().map(window, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


# A split whose decoded frames take at most this many bytes is decoded once and kept in memory
# when every window needs its whole clip (`background`), rather than decoded for every window.
CACHE_BYTES = 2 * 2**30


def _cached_clips(directory, split, seed, shuffle, repeat, shard):
    """The clips of a split decoded, each with its `"background"`, computed once and kept in
    memory, then shuffled (whole clips, seeded) and repeated as `read_clips` would."""
    info = spec.DatasetInfo.read(directory)
    clips = read_clips(directory, split, shuffle=False, repeat=False, shard=shard)
    clips = clips.map(lambda c: {**c, "background": clip_background(c["frames"])}).cache()
    if shuffle:
        clips = clips.shuffle(max(1, info.splits[split]["clips"]), seed=seed)
    return clips.repeat() if repeat else clips


def record_windows(
    directory,
    split,
    frames_per_clip,
    seed=0,
    shuffle=True,
    repeat=True,
    background=False,
    shard=None,
):
    """`random_windows` over a converted split (or its files `shard`, as `read_clips`); only
    the window's frames are decoded. With `background`, every window needs its whole clip:
    a split of up to `CACHE_BYTES` decoded is decoded once, with each clip's background, and
    kept in memory (so clips may be as long as a whole recording); a larger one decodes each
    window's clip again.

    Returns:
        A `tf.data.Dataset` of dicts: `"frames"` uint8 `[F, H, W, 3]`, plus `"masks"` uint8
        `[F, H, W, 1]` if the data set has them, and `"background"` `[H, W, 3]` if asked.
    """
    info = spec.DatasetInfo.read(directory)
    shape = {"frames": [info.height, info.width, 3]}
    if "masks" in info.features:
        shape["masks"] = [info.height, info.width, 1]
    logging.info("Reading %s clips of %s (%s).", split, directory, ", ".join(shape))
    decoded_bytes = info.splits[split]["frames"] * info.height * info.width * 4
    if background and decoded_bytes <= CACHE_BYTES:
        clips = _cached_clips(directory, split, seed, shuffle, repeat, shard)
        return random_windows(clips, frames_per_clip, seed, None, shape, background)
    clips = read_clips(directory, split, seed, shuffle, repeat, decode=False, shard=shard)
    return random_windows(clips, frames_per_clip, seed, spec.decode_clip, shape, background)
