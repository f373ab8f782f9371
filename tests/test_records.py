"""The tf.data reader of converted records: windows, triples, determinism, corrupt shards."""

import os

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import conversion, datasets, pipeline, records, sources, spec
from tests.tiny import tiny_config

LENGTH = 6


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    output = tmp_path_factory.mktemp("records") / "synthetic"
    options = sources.Options(size=32, clip_length=LENGTH, num_clips=8, seed=1, test_fraction=0.0)
    info = conversion.convert("synthetic", None, str(output), options, num_shards=4)
    clips, masks = {}, {}
    for name in info.splits["train"]["files"]:
        for serialized in tf.data.TFRecordDataset(str(output / name)):
            clip = spec.parse_clip(serialized, info.features)
            clips[clip["clip_id"].numpy()] = clip["frames"].numpy()
            masks[clip["clip_id"].numpy()] = clip["masks"].numpy()
    return str(output), clips, masks


def take(dataset, n):
    return [tf.nest.map_structure(np.asarray, x) for x in dataset.take(n)]


def test_windows_are_consecutive_frames_of_one_clip_and_seeded(converted):
    directory, clips, masks = converted
    windows = take(records.record_windows(directory, "train", 4, seed=5), 12)
    for window in windows:
        assert window["frames"].shape == (4, 32, 32, 3) and window["masks"].shape == (4, 32, 32, 1)
        found = [
            (clip_id, start)
            for clip_id, frames in clips.items()
            for start in range(LENGTH - 3)
            if np.array_equal(frames[start : start + 4], window["frames"])
        ]
        assert found, "a window is not 4 consecutive frames of any clip"
        clip_id, start = found[0]
        np.testing.assert_array_equal(window["masks"], masks[clip_id][start : start + 4])
    again = take(records.record_windows(directory, "train", 4, seed=5), 12)
    for a, b in zip(windows, again):
        np.testing.assert_array_equal(a["frames"], b["frames"])
    other = take(records.record_windows(directory, "train", 4, seed=6), 12)
    assert any(not np.array_equal(a["frames"], b["frames"]) for a, b in zip(windows, other))


def test_triples_from_records_match_the_built_in_pipeline_contract(converted):
    directory, _, _ = converted
    windows = records.record_windows(directory, "train", 3, seed=0)
    batch = next(iter(pipeline.pairs(pipeline.batch_windows(windows, 2))))
    assert batch["frame"].shape == (4, 32, 32, 3) and batch["diff"].shape == (4, 32, 32, 1)
    assert batch["mask"].shape == (4, 32, 32, 1)
    assert (
        float(tf.reduce_min(batch["frame"])) >= -1.0 and float(tf.reduce_max(batch["frame"])) <= 1
    )
    # Pair j's next frame is pair j + 1's frame within a window.
    np.testing.assert_array_equal(batch["next_frame"][0], batch["frame"][1])


def test_a_corrupt_shard_is_skipped_and_the_others_are_read(converted, tmp_path):
    directory, clips, _ = converted
    copy = tmp_path / "copy"
    tf.io.gfile.makedirs(str(copy))
    for name in tf.io.gfile.listdir(directory):
        tf.io.gfile.copy(os.path.join(directory, name), str(copy / name))
    info = spec.DatasetInfo.read(str(copy))
    sizes = {n: os.path.getsize(copy / n) for n in info.splits["train"]["files"]}
    bad = max(sizes, key=sizes.get)
    data = (copy / bad).read_bytes()
    (copy / bad).write_bytes(data[:20] + b"\x00" * 64 + data[84:])  # a bad CRC inside
    read = take(records.read_clips(str(copy), "train", shuffle=False, repeat=False), 100)
    assert 0 < len(read) < len(clips)
    for clip in read:
        np.testing.assert_array_equal(clip["frames"], clips[clip["clip_id"].item()])


def test_missing_data_set_and_shards_are_named(converted, tmp_path):
    with pytest.raises(ValueError, match="has no dataset.json"):
        records.record_windows(str(tmp_path), "train", 2)
    directory, _, _ = converted
    copy = tmp_path / "copy"
    tf.io.gfile.makedirs(str(copy))
    tf.io.gfile.copy(os.path.join(directory, spec.INFO_FILE), str(copy / spec.INFO_FILE))
    with pytest.raises(ValueError, match="shards and 4 of them are missing"):
        records.record_windows(str(copy), "train", 2)


@pytest.mark.parametrize("cached", [True, False])
def test_windows_with_background_carry_their_whole_clips_median(converted, cached, monkeypatch):
    directory, clips, _ = converted
    # A small split is decoded once and kept in memory; a large one decodes each window's clip.
    monkeypatch.setattr(records, "CACHE_BYTES", 2**40 if cached else 0)
    windows = take(records.record_windows(directory, "train", 3, seed=2, background=True), 12)
    assert len({w["frames"].tobytes() for w in windows}) > 6  # windows of many clips
    for window in windows:
        (clip_id,) = [
            i
            for i, frames in clips.items()
            if any(np.array_equal(frames[s : s + 3], window["frames"]) for s in range(LENGTH - 2))
        ]
        median = np.median(clips[clip_id].astype(np.float64), axis=0)
        assert window["background"].shape == (32, 32, 3)
        np.testing.assert_allclose(window["background"], np.round(median), atol=1)


def test_each_worker_reads_only_its_own_shards(converted):
    directory, clips, _ = converted
    info = spec.DatasetInfo.read(directory)
    files = info.splits["train"]["files"]
    in_file = {}
    for index, name in enumerate(files):
        for serialized in tf.data.TFRecordDataset(os.path.join(directory, name)):
            in_file[spec.parse_clip(serialized, info.features)["clip_id"].numpy()] = index
    read = {}
    for worker in range(2):
        part = take(records.read_clips(directory, "train", repeat=False, shard=(worker, 2)), 100)
        read[worker] = {clip["clip_id"].item() for clip in part}
        # Worker i of 2 reads the files i, i + 2, ... of the split, each clip once.
        assert len(part) == len(read[worker])
        assert {in_file[i] % 2 for i in read[worker]} == {worker}
    assert read[0] | read[1] == set(clips) and not read[0] & read[1]

    source = datasets.source(tiny_config(data=f"tfrecord:{directory}"))
    assert source.splits_by_worker(4) and not source.splits_by_worker(5)
    for window in take(source.worker_windows(4, 0, 0, (1, 2)), 8):
        assert any(
            np.array_equal(clips[i][s : s + 4], window["frames"])
            for i in read[1]
            for s in range(LENGTH - 3)
        ), "a window of worker 1 comes from a clip of worker 0's shards"
    with pytest.raises(ValueError, match="has 4 shards, fewer than the 5 parts"):
        records.read_clips(directory, "train", shard=(0, 5))


def test_evaluation_windows_cut_each_clip_one_after_the_other_with_its_whole_median(converted):
    directory, clips, _ = converted
    stream = records.read_clips(directory, "train", shuffle=False, repeat=False)
    out = records.first_clips(stream, 5, 3, ["frames", "source"], "here: the train")
    assert out["frames"].shape == (5, 3, 32, 32, 3) and out["backgrounds"].shape == (5, 32, 32, 3)
    # Clips of 6 frames give two windows each, frames 0-2 and 3-5; the fifth starts a third clip.
    for first, second in ((0, 1), (2, 3)):
        (clip_id,) = [i for i, f in clips.items() if np.array_equal(f[:3], out["frames"][first])]
        np.testing.assert_array_equal(out["frames"][second], clips[clip_id][3:6])
        median = np.round(np.median(clips[clip_id].astype(np.float64), axis=0))
        for window in (first, second):
            np.testing.assert_allclose(out["backgrounds"][window], median, atol=1)
    assert out["source"][0] == out["source"][1]
    with pytest.raises(ValueError, match="here: the train split has no clip of 7 frames"):
        records.first_clips(stream, 5, 7, ["frames"], "here: the train")
