"""`tf.data` pipelines over in-memory clips: training windows, Phase I triples, evaluation pairs.

Streams over in-memory clips (`clip_windows`) are pure functions of the element index: element
`k` is computed from `(seed, k)` alone, never from iterator state, so a run resumed at step `s`
sees exactly the batches an uninterrupted run sees from step `s` on. `batch_windows` and `pairs`
also serve the streams of converted records (`records.record_windows`), which restart with a
fresh seed instead.
"""

import tensorflow as tf

from data_pipelines import augment, stabilize
from data_pipelines.change_map import clip_background, frame_difference_mask
from data_pipelines.preprocess import normalize_size, preprocess_frames
from fgbg_common.checks import check_int

CLIP_KEYS = ("frames", "masks", "agent_masks", "mog2_masks", "centroids", "offsets")
_FLOATS = ("centroids", "offsets")
# What evaluation clips may say of each clip that no window or pair carries: its recording, and
# the background of the whole clip it was cut from (`records.first_clips`).
CLIP_INFO = ("sources", "backgrounds")


def _check_clips(clips):
    unknown = set(clips) - set(CLIP_KEYS) - set(CLIP_INFO)
    if "frames" not in clips or unknown:
        raise ValueError(
            f"`clips` must hold `frames` and optionally the ground truth {CLIP_KEYS[1:]}. "
            f"Received: clips keys={sorted(clips)}"
        )
    frames = clips["frames"]
    if len(frames.shape) != 5 or frames.shape[-1] != 3:
        raise ValueError(
            f"`clips['frames']` must have shape [N, T, H, W, 3]. Received: shape={frames.shape}"
        )
    return int(frames.shape[0]), int(frames.shape[1])


def _check_frames_per_clip(frames_per_clip, clip_length):
    check_int("frames_per_clip", frames_per_clip, minimum=2)
    if frames_per_clip > clip_length:
        raise ValueError(
            f"`frames_per_clip` must be an int in [2, clip_length={clip_length}]. "
            f"Received: frames_per_clip={frames_per_clip!r}"
        )


def preprocess_masks(masks, size):
    """uint8 {0, 1} masks [..., H, W, 1] to float32 {0, 1}, resized by area majority if asked."""
    masks = tf.cast(masks, tf.float32)
    if size is None or tuple(masks.shape[-3:-1]) == size:
        return masks
    flat = tf.reshape(masks, [-1, *masks.shape[-3:]])
    resized = tf.image.resize(flat, size, method="bilinear", antialias=True)
    resized = tf.cast(resized >= 0.5, tf.float32)
    return tf.reshape(resized, [*masks.shape[:-3], *size, 1])


def clip_windows(clips, frames_per_clip, seed, start_index=0, shuffle=True, background=False):
    """An infinite stream of windows of consecutive frames, a pure function of the element index.

    Element `k` takes clip `index_shuffle(k % N, seed=[seed, k // N])` (a fresh permutation of
    the `N` clips in every epoch `k // N`; clip `k % N` when `shuffle=False`) and a window start
    drawn with `tf.random.stateless_uniform` seeded by `[seed, k]`.

    Args:
        clips: dict of arrays as returned by `synthetic.make_split`: `frames` uint8
            [N, T, H, W, 3] and, where there is ground truth, `masks` uint8 [N, T, H, W, 1],
            `centroids` [N, T, 2], `offsets` [N, T - 1, 2].
        frames_per_clip: window length `F`, in [2, T].
        seed: int seed of the stream.
        start_index: index `k` of the first element, to resume a stream.
        shuffle: whether to permute the clips in each epoch.
        background: also give each window its whole clip's background
            (`change_map.clip_background`), for `--bg_reference=clip_median`.

    Returns:
        An infinite `tf.data.Dataset` of dicts: `frames` uint8 [F, H, W, 3], and those of
        `masks` uint8 [F, H, W, 1], `centroids` float32 [F, 2], `offsets` float32 [F - 1, 2]
        that `clips` holds; `background` uint8 [H, W, 3] if asked.
    """
    num_clips, clip_length = _check_clips(clips)
    _check_frames_per_clip(frames_per_clip, clip_length)
    check_int("start_index", start_index, minimum=0)
    arrays = {
        key: tf.convert_to_tensor(clips[key], tf.float32 if key in _FLOATS else tf.uint8)
        for key in clips
        if key in CLIP_KEYS
    }
    if background:
        arrays["background"] = clip_background(arrays["frames"], axis=1)
    seed = int(seed)
    num_starts = clip_length - frames_per_clip + 1

    def window(k):
        epoch = k // num_clips
        position = k % num_clips
        base = tf.constant(seed, tf.int64)
        if shuffle:
            clip = tf.random.experimental.index_shuffle(
                position, seed=tf.stack([base, epoch]), max_index=num_clips - 1
            )
        else:
            clip = position
        start = tf.random.stateless_uniform(
            [], seed=tf.stack([base, k]), maxval=num_starts, dtype=tf.int64
        )
        stop = start + frames_per_clip
        return {
            key: (
                tf.gather(array, clip)
                if key == "background"
                else tf.gather(array, clip)[start : stop - 1 if key == "offsets" else stop]
            )
            for key, array in arrays.items()
        }

    def set_shapes(element):
        for key, value in element.items():
            if key == "background":
                value.set_shape(clips["frames"].shape[2:])
                continue
            length = frames_per_clip - 1 if key == "offsets" else frames_per_clip
            value.set_shape([length, *clips[key].shape[2:]])
        return element

    dataset = tf.data.Dataset.counter(start_index, dtype=tf.int64)
    return dataset.map(
        lambda k: set_shapes(window(k)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


# Masks of other kinds than the ground truth's, kept for f_t of each pair (as `"agent_mask"`,
# `"mog2_mask"`): the controlled object alone (the pushing set), a background subtractor's.
FRAME_MASKS = ("agent_masks", "mog2_masks")


def _pair_dict(batch, diff_mode, diff_threshold):
    """Splits a batch's float `frames` [B, F, H, W, 3] (and `masks`, if any) into the
    (f_t, f_{t+1}) pair dict; the `FRAME_MASKS`, where given, become `"agent_mask"` and
    `"mog2_mask"` of f_t; d is computed from `aligned` (the frames aligned) where given, else
    from `frames`. With `background` [B, H, W, 3] (each window's clip background), every pair
    gets its window's as `"background"`, and d compares f_t with it instead of with f_{t+1}."""
    frames, masks = batch["frames"], batch.get("masks")
    diff_frames, background = batch.get("aligned"), batch.get("background")
    height, width = frames.shape[-3], frames.shape[-2]
    pairs_per_window = frames.shape[1] - 1

    def flatten(x, channels):
        return tf.reshape(x, [-1, height, width, channels])

    frame = flatten(frames[:, :-1], 3)
    next_frame = flatten(frames[:, 1:], 3)
    if diff_frames is not None:
        diff_pair = (flatten(diff_frames[:, :-1], 3), flatten(diff_frames[:, 1:], 3))
    else:
        diff_pair = (frame, next_frame)
    out = {"frame": frame, "next_frame": next_frame}
    if background is not None:
        out["background"] = tf.repeat(background, pairs_per_window, axis=0)
        diff_pair = (out["background"], diff_pair[0])
    out["diff"] = frame_difference_mask(*diff_pair, threshold=diff_threshold, mode=diff_mode)
    if masks is not None:
        out["mask"] = flatten(masks[:, :-1], 1)
        out["next_mask"] = flatten(masks[:, 1:], 1)
    for key in FRAME_MASKS:
        if batch.get(key) is not None:
            out[key[:-1]] = flatten(batch[key][:, :-1], 1)
    return out


def batch_windows(
    windows,
    clips_per_batch,
    image_size=None,
    keep_offsets=False,
    align=False,
    augmentation=None,
    seed=0,
):
    """Batches of preprocessed windows: `frames` float32 [C, F, H, W, 3] in [-1, 1], and
    `masks` float32 [C, F, H, W, 1] when the windows have them.

    Args:
        windows: a `tf.data.Dataset` of dicts with `frames` uint8 [F, H, W, 3] (and `masks`,
            `offsets`), as `clip_windows` or `records.record_windows` make.
        clips_per_batch: windows per batch `C`.
        image_size: `None` to keep the frame size, or an int / (height, width) to resize to.
        keep_offsets: also pass on `offsets` [C, F - 1, 2] when the windows have them, scaled
            to the resized frames' pixels.
        align: align each window's frames to its first (`stabilize.align_to_first`): camera
            shake compensated before the change map and the losses. A window's `background`
            (`clip_windows`), where it has one, is aligned with them.
        augmentation: an `augment.Augmentation` of the windows (training only), applied after
            the resizing and before the alignment; its draws are seeded by `seed` and each
            window's place in the stream.
        seed: int, the seed of the augmentation.
    """
    check_int("clips_per_batch", clips_per_batch)
    size = normalize_size(image_size)

    def preprocess(window):
        out = {"frames": preprocess_frames(window["frames"], size)}
        if "background" in window:
            out["background"] = preprocess_frames(window["background"], size)
        if "masks" in window:
            out["masks"] = preprocess_masks(window["masks"], size)
        if keep_offsets and "offsets" in window:
            height, width = window["frames"].shape[-3:-1]
            scale = [1.0, 1.0] if size is None else [size[1] / width, size[0] / height]
            out["offsets"] = tf.cast(window["offsets"], tf.float32) * scale
        return out

    def aligned(window):
        return {**window, **_aligned(window["frames"], window.get("background"))}

    windows = windows.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if augmentation:
        windows = augment.augment_windows(windows, augmentation, seed)
    if align:
        windows = windows.map(aligned, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return windows.batch(clips_per_batch, drop_remainder=True)


def _aligned(frames, background=None):
    """`{"frames": ...}` of a window aligned to its first frame, with `"background"` aligned to
    it too where given."""
    if background is None:
        return {"frames": stabilize.align_to_first(frames)}
    aligned = stabilize.align_to_first(tf.concat([frames, background[None]], axis=0))
    return {"frames": aligned[:-1], "background": aligned[-1]}


def pairs(batches, diff_mode="gray", diff_threshold=0.04):
    """Phase I triples from `batch_windows`' batches (see `triples`), prefetched; with
    `"background"` (and d against it) where the batches have one."""

    def to_pairs(batch):
        return _pair_dict(batch, diff_mode, diff_threshold)

    return batches.map(to_pairs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE
    )


def clip_batches(
    clips, frames_per_clip, clips_per_batch, seed, start_step=0, image_size=None, shuffle=True
):
    """Phase II training batches: whole windows of consecutive frames.

    Step `s` takes windows `s * clips_per_batch ... (s + 1) * clips_per_batch - 1` of
    `clip_windows`, so batch `s` depends only on `(seed, s)` and `start_step` resumes exactly.

    Args:
        clips: dict of arrays as returned by `synthetic.make_split`.
        frames_per_clip: window length `F`, in [2, T].
        clips_per_batch: windows per batch `C`.
        seed: int seed of the stream.
        start_step: first step (batch index) of the stream, to resume training.
        image_size: `None` to keep the frame size, or an int / (height, width) to resize to.
        shuffle: whether to permute the clips in each epoch.

    Returns:
        An infinite `tf.data.Dataset` of dicts: `frames` float32 [C, F, H, W, 3] in [-1, 1] and
        `masks` float32 [C, F, H, W, 1] in {0, 1} (ground truth, for logging only).
    """
    check_int("start_step", start_step, minimum=0)
    check_int("clips_per_batch", clips_per_batch)
    windows = clip_windows(
        clips, frames_per_clip, seed, start_index=start_step * clips_per_batch, shuffle=shuffle
    )
    return batch_windows(windows, clips_per_batch, image_size)


def triples(
    clips,
    frames_per_clip,
    clips_per_batch,
    seed,
    start_step=0,
    image_size=None,
    diff_mode="gray",
    diff_threshold=0.04,
    shuffle=True,
):
    """Phase I training batches: consecutive frame pairs with their frame-difference map.

    The pairs of `clip_batches`: within one window, pair `j` is `(f_j, f_{j+1})`, and
    `next_frame` of pair `j` is `frame` of pair `j + 1`; window `c` occupies batch rows
    `c * (F - 1) ... (c + 1) * (F - 1) - 1`.

    Args:
        clips, frames_per_clip, clips_per_batch, seed, start_step, image_size, shuffle: as in
            `clip_batches`; each window gives `F - 1` pairs.
        diff_mode: `"gray"` or `"maxchannel"`, see `frame_difference_mask`.
        diff_threshold: change threshold on [-1, 1] frames, see `frame_difference_mask`.

    Returns:
        An infinite `tf.data.Dataset` of dicts with `B = C * (F - 1)`:
        - `frame`: float32 [B, H, W, 3] in [-1, 1], f_t.
        - `next_frame`: float32 [B, H, W, 3] in [-1, 1], f_{t+1}.
        - `diff`: float32 [B, H, W, 1] in {0, 1}, the frame-difference mask of the pair.
        - `mask`, `next_mask`: float32 [B, H, W, 1] in {0, 1}, ground truth of f_t and f_{t+1}
          (for evaluation and logging only), when `clips` has `masks`.
    """
    batches = clip_batches(
        clips, frames_per_clip, clips_per_batch, seed, start_step, image_size, shuffle
    )
    return pairs(batches, diff_mode, diff_threshold)


def eval_triples(
    clips,
    batch_size,
    image_size=None,
    diff_mode="gray",
    diff_threshold=0.04,
    align=False,
    background=False,
):
    """Every consecutive pair of every clip, in order, for evaluation.

    Pair `i` is `(f_t, f_{t+1})` of clip `i // (T - 1)` with `t = i % (T - 1)`; the dataset holds
    exactly `N * (T - 1)` pairs.

    Args:
        clips: dict of arrays as returned by `synthetic.make_split`.
        batch_size: pairs per batch `B`; the last batch may be smaller.
        image_size: `None` to keep the frame size, or an int / (height, width) to resize to.
        diff_mode: `"gray"` or `"maxchannel"`, see `frame_difference_mask`.
        diff_threshold: change threshold on [-1, 1] frames, see `frame_difference_mask`.
        align: d of f_t and f_{t+1} aligned to it (`stabilize.align_to_first`), as training
            saw it; the frames themselves stay as they are.
        background: give every pair its clip's background (`change_map.clip_background`, or
            the `"backgrounds"` of the clips they were cut from where `clips` has them), and
            compute d against it, as training does with `--bg_reference=clip_median`.

    Returns:
        A finite `tf.data.Dataset` of dicts with the keys and shapes of `triples` (`[B, ...]`, the
        last batch possibly smaller; `mask` and `next_mask` only if `clips` has `masks`,
        `agent_mask` and `mog2_mask` of f_t if it has `agent_masks` and `mog2_masks`, and
        `background` if asked).
    """
    num_clips, clip_length = _check_clips(clips)
    check_int("batch_size", batch_size)
    size = normalize_size(image_size)
    frames = tf.convert_to_tensor(clips["frames"], tf.uint8)
    masks = {
        key: tf.convert_to_tensor(clips[key], tf.uint8)
        for key in ("masks", *FRAME_MASKS)
        if key in clips
    }
    pairs_per_clip = clip_length - 1
    backgrounds = None
    if background:
        backgrounds = clips.get("backgrounds")
        if backgrounds is None:
            backgrounds = clip_background(frames, axis=1)
        backgrounds = tf.convert_to_tensor(backgrounds, tf.uint8)

    def pair(i):
        clip, t = i // pairs_per_clip, i % pairs_per_clip
        pair_frames = tf.gather(frames, clip)[t : t + 2]
        pair_frames.set_shape([2, *clips["frames"].shape[2:]])
        out = {"frames": preprocess_frames(pair_frames, size)}
        if background:
            out["background"] = preprocess_frames(tf.gather(backgrounds, clip), size)
        if align:
            aligned = _aligned(out["frames"], out.get("background"))
            out["aligned"] = aligned.pop("frames")
            out.update(aligned)
        for key, array in masks.items():
            pair_masks = tf.gather(array, clip)[t : t + 2]
            pair_masks.set_shape([2, *clips[key].shape[2:]])
            out[key] = preprocess_masks(pair_masks, size)
        return out

    def to_pairs(batch):
        return _pair_dict(batch, diff_mode, diff_threshold)

    return (
        tf.data.Dataset.range(num_clips * pairs_per_clip)
        .map(pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(batch_size)
        .map(to_pairs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
