import numpy as np
import pytest
import tensorflow as tf

from data_pipelines.change_map import frame_difference_mask
from data_pipelines.pipeline import batch_windows, clip_windows, eval_triples, pairs, triples
from data_pipelines.preprocess import preprocess_frames, to_uint8
from data_pipelines.synthetic import SyntheticConfig, make_split

NUM_CLIPS, LENGTH, SIZE = 5, 6, 32


def labelled_clips():
    """Clips whose pixel value names the frame: clip n, frame t is filled with 10 * n + t."""
    ids = 10 * np.arange(NUM_CLIPS)[:, None] + np.arange(LENGTH)[None, :]
    pixels = ids[:, :, None, None, None]
    return {
        "frames": np.broadcast_to(pixels, (NUM_CLIPS, LENGTH, 4, 4, 3)).astype(np.uint8),
        "masks": (np.broadcast_to(pixels, (NUM_CLIPS, LENGTH, 4, 4, 1)) % 2).astype(np.uint8),
        "centroids": np.stack([ids, -ids], axis=-1).astype(np.float32),
        "offsets": ids[:, :-1, None].repeat(2, axis=-1).astype(np.float32),
    }


@pytest.fixture(scope="module")
def clips():
    config = SyntheticConfig(
        image_size=SIZE, clip_length=LENGTH, sprite_radius=(5.0, 7.0), speed=(1.0, 2.0)
    )
    return make_split("train", NUM_CLIPS, config, seed=0)


def take(dataset, count):
    return [tf.nest.map_structure(lambda x: x.numpy(), e) for e in dataset.take(count)]


def test_preprocess_frames_scales_and_resizes():
    frames = np.array([0, 51, 255], np.uint8).reshape(1, 1, 3, 1).repeat(3, -1)
    out = preprocess_frames(frames).numpy()
    np.testing.assert_allclose(out[0, 0, :, 0], [-1.0, -0.6, 1.0], atol=1e-6)
    assert out.dtype == np.float32
    video = np.full((2, 3, 64, 48, 3), 200, np.uint8)
    resized = preprocess_frames(video, size=(16, 24))
    assert resized.shape == (2, 3, 16, 24, 3)
    np.testing.assert_allclose(resized.numpy(), 200 / 127.5 - 1, atol=1e-5)
    assert preprocess_frames(video, size=8).shape == (2, 3, 8, 8, 3)


def test_preprocess_frames_unknown_spatial_size():
    fn = tf.function(
        lambda x: preprocess_frames(x, size=8),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)],
    )
    assert fn(np.zeros((2, 20, 30, 3), np.uint8)).shape == (2, 8, 8, 3)
    np.testing.assert_array_equal(fn(np.zeros((1, 8, 8, 3), np.uint8)).numpy(), -1.0)


def test_to_uint8_inverts_preprocess():
    values = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, -1)
    np.testing.assert_array_equal(to_uint8(preprocess_frames(values)).numpy(), values)
    np.testing.assert_array_equal(to_uint8(np.array([-3.0, 3.0])).numpy(), [0, 255])


def test_preprocess_bad_arguments():
    with pytest.raises(ValueError, match="frames.dtype"):
        preprocess_frames(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="size"):
        preprocess_frames(np.zeros((4, 4, 3), np.uint8), size=(4, 0))


def test_clip_windows_are_permutations_with_consecutive_frames():
    data = labelled_clips()
    windows = take(clip_windows(data, 3, seed=7), 2 * NUM_CLIPS)
    first_ids = [int(w["frames"][0, 0, 0, 0]) for w in windows]
    clip_ids = [i // 10 for i in first_ids]
    # Each epoch visits every clip exactly once, in a different order per epoch.
    assert sorted(clip_ids[:NUM_CLIPS]) == list(range(NUM_CLIPS))
    assert sorted(clip_ids[NUM_CLIPS:]) == list(range(NUM_CLIPS))
    for w, first in zip(windows, first_ids):
        assert 0 <= first % 10 <= LENGTH - 3
        np.testing.assert_array_equal(w["frames"][:, 0, 0, 0], first + np.arange(3))
        np.testing.assert_array_equal(w["centroids"][:, 0], first + np.arange(3))
        np.testing.assert_array_equal(w["offsets"][:, 0], first + np.arange(2))
        np.testing.assert_array_equal(w["masks"][:, 0, 0, 0], (first + np.arange(3)) % 2)
    unshuffled = take(clip_windows(data, 3, seed=7, shuffle=False), NUM_CLIPS + 1)
    assert [int(w["frames"][0, 0, 0, 0]) // 10 for w in unshuffled] == [0, 1, 2, 3, 4, 0]


def test_clip_windows_resume_and_bad_length():
    data = labelled_clips()
    full = take(clip_windows(data, 2, seed=1), 9)
    resumed = take(clip_windows(data, 2, seed=1, start_index=6), 3)
    for a, b in zip(full[6:], resumed):
        np.testing.assert_array_equal(a["frames"], b["frames"])
    with pytest.raises(ValueError, match="frames_per_clip"):
        clip_windows(data, LENGTH + 1, seed=0)
    with pytest.raises(ValueError, match="frames_per_clip"):
        clip_windows(data, 1, seed=0)


def test_triples_shapes_ranges_and_static_batch(clips):
    dataset = triples(clips, frames_per_clip=4, clips_per_batch=2, seed=0)
    assert dataset.element_spec["frame"].shape == (6, SIZE, SIZE, 3)
    assert dataset.element_spec["diff"].shape == (6, SIZE, SIZE, 1)
    (batch,) = take(dataset, 1)
    channels_of = {"frame": 3, "next_frame": 3, "diff": 1, "mask": 1, "next_mask": 1}
    for key, channels in channels_of.items():
        assert batch[key].shape == (6, SIZE, SIZE, channels)
        assert batch[key].dtype == np.float32
    assert batch["frame"].min() >= -1.0 and batch["frame"].max() <= 1.0
    for key in ("diff", "mask", "next_mask"):
        assert set(np.unique(batch[key])) <= {0.0, 1.0}
    assert batch["mask"].sum() > 0


def test_triples_pairs_match_clips(clips):
    (batch,) = take(triples(clips, frames_per_clip=4, clips_per_batch=2, seed=5), 1)
    np.testing.assert_array_equal(
        batch["diff"], frame_difference_mask(batch["frame"], batch["next_frame"]).numpy()
    )
    frames = to_uint8(batch["frame"]).numpy()
    for window in range(2):
        rows = slice(3 * window, 3 * window + 3)
        # Within a window, next_frame of pair j is frame of pair j + 1.
        np.testing.assert_array_equal(batch["next_frame"][rows][:-1], batch["frame"][rows][1:])
        np.testing.assert_array_equal(batch["next_mask"][rows][:-1], batch["mask"][rows][1:])
        # The window is three consecutive frames of one clip, with that clip's masks.
        first = frames[3 * window]
        n, t = np.argwhere((clips["frames"] == first).all(axis=(-3, -2, -1)))[0]
        np.testing.assert_array_equal(frames[rows], clips["frames"][n, t : t + 3])
        np.testing.assert_array_equal(batch["mask"][rows], clips["masks"][n, t : t + 3])


def test_triples_deterministic_and_resumable(clips):
    run = take(triples(clips, 3, 2, seed=11), 5)
    again = take(triples(clips, 3, 2, seed=11), 5)
    resumed = take(triples(clips, 3, 2, seed=11, start_step=3), 2)
    other = take(triples(clips, 3, 2, seed=12), 5)
    for a, b in zip(run, again):
        np.testing.assert_array_equal(a["frame"], b["frame"])
    for a, b in zip(run[3:], resumed):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert not all(np.array_equal(a["frame"], b["frame"]) for a, b in zip(run, other))


def test_triples_resize(clips):
    (batch,) = take(triples(clips, 2, 3, seed=0, image_size=16), 1)
    assert batch["frame"].shape == (3, 16, 16, 3)
    assert batch["mask"].shape == (3, 16, 16, 1)
    assert set(np.unique(batch["mask"])) == {0.0, 1.0}


def test_eval_triples_covers_every_pair_in_order():
    data = labelled_clips()
    batches = take(eval_triples(data, batch_size=4), 100)
    sizes = [b["frame"].shape[0] for b in batches]
    assert sum(sizes) == NUM_CLIPS * (LENGTH - 1) == 25
    assert sizes == [4] * 6 + [1]
    firsts = np.concatenate([to_uint8(b["frame"]).numpy()[:, 0, 0, 0] for b in batches])
    nexts = np.concatenate([to_uint8(b["next_frame"]).numpy()[:, 0, 0, 0] for b in batches])
    expected = [10 * n + t for n in range(NUM_CLIPS) for t in range(LENGTH - 1)]
    np.testing.assert_array_equal(firsts, expected)
    np.testing.assert_array_equal(nexts, np.array(expected) + 1)
    masks = np.concatenate([b["mask"][:, 0, 0, 0] for b in batches])
    np.testing.assert_array_equal(masks, np.array(expected) % 2)


def test_eval_triples_diff(clips):
    dataset = eval_triples(clips, batch_size=5, diff_mode="maxchannel", diff_threshold=0.1)
    (batch,) = take(dataset, 1)
    expected = frame_difference_mask(batch["frame"], batch["next_frame"], 0.1, "maxchannel")
    np.testing.assert_array_equal(batch["diff"], expected.numpy())
    assert batch["diff"].sum() > 0


def _expected_background(clip_frames):
    return np.round(np.median(clip_frames.astype(np.float64), axis=0))


def test_windows_pairs_and_eval_pairs_carry_their_clips_background(clips):
    # --bg_reference=clip_median: every window, training pair and evaluation pair holds the
    # median of its own whole clip, and d compares f_t with it.
    data = labelled_clips()
    for window in take(clip_windows(data, 3, seed=7, background=True), NUM_CLIPS):
        clip = int(window["frames"][0, 0, 0, 0]) // 10
        np.testing.assert_allclose(
            window["background"], _expected_background(data["frames"][clip]), atol=1
        )
    stream = triples(clips, 3, 2, seed=0)
    windows = clip_windows(clips, 3, seed=0, background=True)
    for batch in take(pairs(batch_windows(windows, 2), "maxchannel", 0.1), 2):
        assert batch["background"].shape == batch["frame"].shape == (4, SIZE, SIZE, 3)
        np.testing.assert_array_equal(batch["background"][0], batch["background"][1])
        expected = frame_difference_mask(batch["background"], batch["frame"], 0.1, "maxchannel")
        np.testing.assert_array_equal(batch["diff"], expected.numpy())
    assert "background" not in take(stream, 1)[0]
    (batch,) = take(eval_triples(clips, batch_size=LENGTH - 1, background=True), 1)
    np.testing.assert_allclose(
        to_uint8(batch["background"][0]).numpy(),
        _expected_background(clips["frames"][0]),
        atol=1,
    )
    expected = frame_difference_mask(batch["background"], batch["frame"])
    np.testing.assert_array_equal(batch["diff"], expected.numpy())
