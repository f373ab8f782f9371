"""Conversion of every source to sharded TFRecords on Beam, and every kind of bad input."""

import dataclasses
import glob
import json
import os
import pathlib
import re
import subprocess
import sys

import av
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from data_pipelines import conversion, sources, spec
from data_pipelines.inputs import videos as video_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 16


def write_video(path, frames, fps=10):
    """Writes uint8 frames [T, H, W, 3] (H, W even) as a real video file with PyAV."""
    with av.open(str(path), "w") as container:
        codec = "gif" if str(path).endswith(".gif") else "mpeg4"
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
        if codec != "gif":
            stream.bit_rate = 4_000_000  # a quality a camera would give these tiny frames
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def moving_square(length, height, width, seed=0):
    rng = np.random.default_rng(seed)
    frames = np.full((length, height, width, 3), rng.integers(0, 255, 3), np.uint8)
    for t in range(length):
        frames[t, 4:12, 2 + t : 10 + t] = [250, 20, 20]
    return frames


def read_split(output, split, info):
    files = [os.path.join(output, f) for f in info.splits[split]["files"]]
    dataset = tf.data.TFRecordDataset(files).map(lambda s: spec.parse_clip(s, info.features))
    return list(dataset.as_numpy_iterator())


def run_convert(source, root, output, options=None, test_fraction=None, **kwargs):
    options = options or sources.Options(size=SIZE, min_frames=3)
    if test_fraction is not None:
        options = dataclasses.replace(options, test_fraction=test_fraction)
    return conversion.convert(source, str(root), str(output), options, **kwargs)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    (root / "a").mkdir()
    write_video(root / "a" / "walk.mp4", moving_square(12, 24, 32, seed=1))
    write_video(root / "b.avi", moving_square(9, 16, 16, seed=2))
    write_video(root / "c.gif", moving_square(6, 20, 20, seed=3))
    good = (root / "a" / "walk.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(good[: len(good) // 3])
    (root / "noise.mkv").write_bytes(np.random.default_rng(0).bytes(3000))
    (root / "not_a_video.mov").write_text("these are notes, not a film")
    (root / "readme.txt").write_text("ignored: not a video extension")
    return root


def test_videos_convert_and_bad_files_are_skipped_with_their_reason(videos, tmp_path):
    output = tmp_path / "out"
    options = sources.Options(size=SIZE, clip_length=5, min_frames=3)
    info = run_convert("videos", videos, output, options, test_fraction=0.0, num_shards=2)
    clips = read_split(str(output), "train", info)
    # walk.mp4: 12 frames -> clips of 5, 5, and 2 (skipped, < 3); b.avi: 5 + 4; c.gif: 5, 1 (skip).
    lengths = sorted(len(c["frames"]) for c in clips)
    assert lengths == [4, 5, 5, 5, 5]
    for clip in clips:
        assert clip["frames"].shape[1:] == (SIZE, SIZE, 3) and clip["frames"].dtype == np.uint8
        assert clip["height"] == SIZE and clip["fps"] == pytest.approx(10.0)
    # The square is red in every decoded frame: the video was really read, not blank.
    walk = next(c for c in clips if c["clip_id"] == b"a/walk.mp4#0")
    assert walk["frames"][0, ..., 0].max() > 200
    reasons = {os.path.basename(s["path"]): s["reason"] for s in info.skipped}
    assert "unreadable video" in reasons["noise.mkv"]
    assert "unreadable video" in reasons["not_a_video.mov"]
    assert "shorter than --frames_per_clip=3" in reasons["walk.mp4#2"]
    assert "c.gif#1" in reasons
    assert "truncated.mp4" in reasons  # unreadable, or cut short with its frames kept
    assert "readme.txt" not in json.dumps(info.skipped)
    assert info.splits["train"]["clips"] == 5 and info.splits["train"]["frames"] == 24
    assert len(info.splits["train"]["files"]) == 2
    # dataset.json on disk says the same.
    assert spec.DatasetInfo.read(str(output)) == info


def write_image(path, array, mode=None):
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)


def test_frame_folders_keep_the_class_and_convert_every_image_mode(tmp_path):
    root = tmp_path / "faces"
    rng = np.random.default_rng(0)
    happy = root / "happiness" / "clip1"
    happy.mkdir(parents=True)
    for t in range(4):
        write_image(happy / f"{t}.png", rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    mixed = root / "happiness" / "clip2"
    mixed.mkdir()
    write_image(mixed / "f1.png", rng.integers(0, 255, (16, 16), dtype=np.uint8))  # grayscale
    write_image(mixed / "f2.png", rng.integers(0, 255, (40, 16, 4), dtype=np.uint8))  # RGBA
    sixteen = (rng.integers(0, 65535, (16, 24))).astype(np.uint16)
    Image.fromarray(sixteen).save(mixed / "f3.png")  # 16-bit grayscale
    write_image(mixed / "f10.jpg", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    sad = root / "sadness" / "clip3"
    sad.mkdir(parents=True)
    write_image(sad / "0.png", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    broken = root / "sadness" / "clip4"
    broken.mkdir()
    for t in range(7):
        write_image(broken / f"{t}.png", np.full((16, 16, 3), t * 30, np.uint8))
    (broken / "3.png").write_bytes(b"\x89PNG not really")  # splits 0-2 and 4-6
    info = run_convert("frames", root, tmp_path / "out", test_fraction=0.0, num_shards=1)
    clips = {c["clip_id"].decode(): c for c in read_split(str(tmp_path / "out"), "train", info)}
    assert sorted(clips) == [
        "happiness/clip1#0",
        "happiness/clip2#0",
        "sadness/clip4@0#0",
        "sadness/clip4@1#0",
    ]
    assert clips["happiness/clip2#0"]["label"] == b"happiness"
    assert clips["happiness/clip2#0"]["frames"].shape == (4, SIZE, SIZE, 3)
    # Grayscale is repeated over the channels; 16-bit is scaled to 8 bits.
    gray = clips["happiness/clip2#0"]["frames"][0]
    np.testing.assert_array_equal(gray[..., 0], gray[..., 1])
    sixteen_frame = clips["happiness/clip2#0"]["frames"][2]
    assert 100 < sixteen_frame.mean() < 155  # uniform 0..65535 -> about 127 in 8 bits
    # Natural order: f10 comes after f3.
    np.testing.assert_array_equal(clips["sadness/clip4@1#0"]["frames"][:, 0, 0, 0], [120, 150, 180])
    assert info.splits["train"]["per_class"] == {"happiness": 2, "sadness": 2}
    reasons = {os.path.relpath(s["path"], root): s["reason"] for s in info.skipped}
    assert "unreadable image" in reasons[os.path.join("sadness", "clip4", "3.png")]
    assert "shorter than" in reasons["sadness/clip3#0"]


def bair_record(rng, frames=30, size=64):
    """One video as the original BAIR files store it: a `tf.train.Example`."""
    example = tf.train.Example()
    for i in range(frames):
        context = example.features.feature
        image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8).tobytes()
        context[f"{i}/image_main/encoded"].bytes_list.value.append(image)
        context[f"{i}/image_aux1/encoded"].bytes_list.value.append(image)
        context[f"{i}/action"].float_list.value.extend(rng.normal(size=4).tolist())
        context[f"{i}/endeffector_pos"].float_list.value.extend(rng.normal(size=3).tolist())
    return example.SerializeToString()


def test_bair_records_keep_actions_the_official_split_and_a_cut_files_first_videos(tmp_path):
    root = tmp_path / "softmotion30_44k" / "train"
    root.mkdir(parents=True)
    (tmp_path / "softmotion30_44k" / "test").mkdir()
    with tf.io.TFRecordWriter(str(root.parent / "test" / "traj_0_to_1.tfrecords")) as writer:
        writer.write(bair_record(np.random.default_rng(9)))
    rng = np.random.default_rng(0)
    records = [bair_record(rng) for _ in range(3)]
    with tf.io.TFRecordWriter(str(root / "traj_0_to_255.tfrecords")) as writer:
        for record in records:
            writer.write(record)
    whole = (root / "traj_0_to_255.tfrecords").read_bytes()
    (root / "traj_256_to_511.tfrecords").write_bytes(
        whole[: len(whole) * 2 // 3 + 100]
    )  # inside the third
    options = sources.Options(size=64, min_frames=3)
    info = run_convert("bair", root.parent, tmp_path / "out", options, test_fraction=0.0)
    assert info.features == ("actions", "endeffector_pos")
    # The official split, whatever --test_fraction says.
    assert [c["clip_id"] for c in read_split(str(tmp_path / "out"), "test", info)] == [
        b"test/traj_0_to_1.tfrecords#0"
    ]
    clips = read_split(str(tmp_path / "out"), "train", info)
    assert len(clips) == 5  # 3 from the whole file, 2 before the cut of the other
    first = next(c for c in clips if c["clip_id"] == b"train/traj_0_to_255.tfrecords#0")
    original = tf.train.Example.FromString(records[0]).features.feature
    np.testing.assert_array_equal(
        first["frames"][7].reshape(-1),
        np.frombuffer(original["7/image_main/encoded"].bytes_list.value[0], np.uint8),
    )
    np.testing.assert_allclose(first["actions"][7], original["7/action"].float_list.value)
    assert first["endeffector_pos"].shape == (30, 3)
    assert any("unreadable after 2 videos" in s["reason"] for s in info.skipped)


def test_synthetic_keeps_its_ground_truth_and_splits_by_clip(tmp_path):
    options = sources.Options(size=32, clip_length=6, num_clips=12, seed=3)
    info = run_convert("synthetic", None, tmp_path / "out", options, test_fraction=0.5)
    assert info.features == ("masks", "centroids")
    train = read_split(str(tmp_path / "out"), "train", info)
    test = read_split(str(tmp_path / "out"), "test", info)
    assert len(train) + len(test) == 12 and train and test
    assert not {c["clip_id"] for c in train} & {c["clip_id"] for c in test}
    clip = train[0]
    index = int(clip["clip_id"].decode().split("/")[1])
    from data_pipelines import synthetic

    expected = synthetic.generate_clip(
        np.random.SeedSequence([3, 3, index]), synthetic.scaled_config(32, 6)
    )
    np.testing.assert_array_equal(clip["frames"], expected["frames"])  # PNG is lossless
    np.testing.assert_array_equal(clip["masks"], expected["masks"])
    np.testing.assert_allclose(clip["centroids"], expected["centroids"])


def test_jpeg_encoding_is_close_and_lossy_and_masks_stay_exact(tmp_path):
    options = sources.Options(size=32, clip_length=4, num_clips=2)
    png = run_convert("synthetic", None, tmp_path / "png", options, test_fraction=0.0)
    jpeg = run_convert(
        "synthetic", None, tmp_path / "jpeg", options, encoding="jpeg", test_fraction=0.0
    )
    # Shards are filled in whatever order the runner goes: match the clips by id.
    a = {c["clip_id"]: c for c in read_split(str(tmp_path / "png"), "train", png)}
    b = {c["clip_id"]: c for c in read_split(str(tmp_path / "jpeg"), "train", jpeg)}
    assert sorted(a) == sorted(b) and len(a) == 2
    a, b = [a[k] for k in sorted(a)], [b[k] for k in sorted(b)]
    error = np.abs(a[0]["frames"].astype(float) - b[0]["frames"].astype(float)).mean()
    assert 0 < error < 8
    np.testing.assert_array_equal(a[0]["masks"], b[0]["masks"])  # masks stay lossless


def test_existing_output_is_refused_unless_overwrite_and_empty_input_is_named(tmp_path):
    options = sources.Options(size=16, clip_length=3, num_clips=2)
    output = tmp_path / "out"
    run_convert("synthetic", None, output, options)
    with pytest.raises(ValueError, match="already holds a conversion.*--overwrite"):
        run_convert("synthetic", None, output, options)
    info = run_convert("synthetic", None, output, options, overwrite=True, test_fraction=0.0)
    assert info.splits["train"]["clips"] == 2
    assert len(glob.glob(str(output / "*.tfrecord"))) == len(info.splits["train"]["files"]) + len(
        info.splits["test"]["files"]
    )
    # --overwrite replaces only what a conversion writes.
    (output / "notes.txt").write_text("mine")
    (output / "mine.tfrecord").write_text("mine too")
    run_convert("synthetic", None, output, options, overwrite=True)
    assert (output / "notes.txt").exists() and (output / "mine.tfrecord").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="must not be --input=.* or inside it"):
        run_convert("frames", empty, empty / "out")
    with pytest.raises(ValueError, match=f"--input='{empty}' holds no video files"):
        run_convert("videos", empty, tmp_path / "o2")
    with pytest.raises(ValueError, match="is not a folder"):
        run_convert("frames", tmp_path / "missing", tmp_path / "o3")
    # A folder of only bad videos converts nothing: an error, not an empty data set.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mp4").write_bytes(b"nope")
    with pytest.raises(ValueError, match="No clip.*could be converted"):
        run_convert("videos", bad, tmp_path / "o4")


def test_cli_runs_on_beam_with_pipeline_options_and_names_unknown_flags(tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "data_pipelines.convert", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )

    output = tmp_path / "out"
    result = run(
        "--source=synthetic",
        f"--output={output}",
        "--image_size=16",
        "--clip_length=3",
        "--num_clips=3",
        "--direct_num_workers=1",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "skipped" in result.stdout and (output / spec.INFO_FILE).exists()
    result = run("--source=synthetic", f"--output={tmp_path / 'o'}", "--sizee=3")
    assert result.returncode != 0 and "--sizee" in result.stderr
    result = run("--source=videos", f"--input={tmp_path / 'nowhere'}", f"--output={tmp_path}")
    assert result.returncode != 0 and "is not a folder" in result.stderr


@pytest.mark.parametrize(
    "options, flag",
    [
        (sources.Options(size=16, clip_length=2, min_frames=3), "--clip_length=2"),
        (sources.Options(size=16, clip_length=-1), "--clip_length=-1"),
        (sources.Options(size=16, fps=-5.0), "--fps=-5.0"),
        (sources.Options(size=16, max_frames=-1), "--max_frames=-1"),
        (sources.Options(size=16, resize="stretch"), "--resize='stretch'"),
        (sources.Options(size=16, min_frames=1), "--frames_per_clip=1"),
        (sources.Options(size=8), "--image_size=8: too small"),
    ],
)
def test_bad_options_are_named_before_anything_runs(options, flag, tmp_path):
    with pytest.raises(ValueError, match=re.escape(flag)):
        run_convert("synthetic", None, tmp_path / "out", options)
    assert not (tmp_path / "out").exists()


def test_videos_cut_anywhere_never_stop_the_conversion(tmp_path):
    source = tmp_path / "whole.mkv"
    write_video(source, moving_square(12, 16, 16, seed=4))
    data = source.read_bytes()
    root = tmp_path / "cut"
    root.mkdir()
    cuts = sorted({len(data) * k // 40 for k in range(1, 40)})
    for cut in cuts:
        (root / f"cut{cut:06d}.mkv").write_bytes(data[:cut])
    (root / "whole.mkv").write_bytes(data)
    options = sources.Options(size=16, min_frames=2)
    info = run_convert("videos", root, tmp_path / "out", options, test_fraction=0.0)
    converted = {c["source"].decode() for c in read_split(str(tmp_path / "out"), "train", info)}
    skipped = {s["path"].split("#")[0] for s in info.skipped}
    # Every input is accounted for: converted, or skipped (whole, or its too-short pieces) with
    # a reason.
    for name in os.listdir(root):
        assert str(root / name) in converted | skipped, name
    assert str(root / "whole.mkv") in converted


def test_fps_resampling_max_frames_and_both_resize_policies(tmp_path):
    path = tmp_path / "ten_fps.mp4"
    write_video(path, moving_square(12, 16, 32, seed=5), fps=10)
    read_video = video_files.read_video
    read = list(read_video(str(path), str(tmp_path), sources.Options(size=16, fps=5.0)))
    assert len(read) == 1 and len(read[0].frames) == 6 and read[0].fps == 5.0
    read = list(read_video(str(path), str(tmp_path), sources.Options(size=16, max_frames=4)))
    assert len(read[0].frames) == 4 and read[0].fps == pytest.approx(10.0)
    # A 16x32 image: crop keeps its centre 16x16 at full scale; pad shrinks it to 8x16 and
    # pads 4 black rows above and below.
    image = np.zeros((16, 32, 3), np.uint8)
    image[:, 8:24] = 200
    np.testing.assert_array_equal(sources.fit_frame(image, 16, "crop"), image[:, 8:24])
    padded = sources.fit_frame(image, 16, "pad")
    assert padded.shape == (16, 16, 3)
    assert not padded[:4].any() and not padded[12:].any() and padded[4:12, 5:11].min() > 150


@pytest.mark.parametrize("extension, tolerance", [("mp4", 8.0), ("gif", 12.0)])
def test_synthetic_clips_written_as_video_come_back_within_codec_tolerance(
    extension, tolerance, tmp_path
):
    from data_pipelines import synthetic

    clip = synthetic.make_split("train", 1, synthetic.scaled_config(64, 8), seed=7)["frames"][0]
    (tmp_path / "in").mkdir()
    write_video(tmp_path / "in" / f"clip.{extension}", clip)
    output = tmp_path / "out"
    info = run_convert(
        "videos", tmp_path / "in", output, sources.Options(size=64), test_fraction=0.0
    )
    (converted,) = read_split(str(output), "train", info)
    frames = converted["frames"].astype(float)
    assert frames.shape == clip.shape
    # Each decoded frame is closest to its own original: none dropped, repeated or reordered.
    errors = np.abs(frames[:, None] - clip[None].astype(float)).mean(axis=(2, 3, 4))
    np.testing.assert_array_equal(errors.argmin(axis=1), np.arange(len(clip)))
    assert errors.diagonal().max() < tolerance


def numbered_frames(length, size=16):
    """Frames whose first pixel holds their index, so that a converted frame names its source."""
    frames = np.zeros((length, size, size, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(length)
    frames[:, 4:12, 4:12] = 200
    return frames


def test_time_split_never_shares_a_frame_and_names_a_recording_too_short_for_both(tmp_path):
    root = tmp_path / "frames"
    for name, length in (("long", 40), ("short", 9)):
        folder = root / name
        folder.mkdir(parents=True)
        for t, frame in enumerate(numbered_frames(length)):
            write_image(folder / f"{t:03d}.png", frame)
    options = sources.Options(
        size=16, clip_length=6, min_frames=3, split="time", test_fraction=0.25
    )
    info = run_convert("frames", root, tmp_path / "out", options, num_shards=2)

    def indices(split):
        clips = [c for c in read_split(str(tmp_path / "out"), split, info)]
        return {
            c["source"].decode().rsplit(os.sep, 1)[-1]: set(c["frames"][:, 0, 0, 0].tolist())
            for c in clips
        }, clips

    train, train_clips = indices("train")
    test, test_clips = indices("test")
    # long: 40 frames, the last 10 are test (clips 30-35, 36-39), the first 30 train (5 x 6).
    assert sorted(len(c["frames"]) for c in test_clips) == [4, 6]
    long_train = set().union(
        *(set(c["frames"][:, 0, 0, 0].tolist()) for c in train_clips if b"long" in c["source"])
    )
    long_test = set().union(
        *(set(c["frames"][:, 0, 0, 0].tolist()) for c in test_clips if b"long" in c["source"])
    )
    assert long_train == set(range(30)) and long_test == set(range(30, 40))
    assert not long_train & long_test
    # short: 9 frames, 2 for test, fewer than a clip of 3: in train only, and dataset.json says so.
    assert "short" in train and "short" not in test
    (named,) = [
        s for s in info.skipped if s["path"].endswith("short") and "--split=time" in s["reason"]
    ]
    assert "2 of its 9 frames" in named["reason"] and "has no test clips" in named["reason"]
    written = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert written["options"]["split"] == "time" and written["options"]["test_fraction"] == 0.25
    assert any("--split=time" in s["reason"] for s in written["skipped"])


def test_time_split_is_refused_for_sets_without_recordings_and_without_a_test_part(tmp_path):
    with pytest.raises(ValueError, match="--split='time'"):
        run_convert("synthetic", None, tmp_path / "a", sources.Options(size=32, split="time"))
    with pytest.raises(ValueError, match="--test_fraction=0.0"):
        run_convert(
            "videos", tmp_path, tmp_path / "b", sources.Options(split="time", test_fraction=0.0)
        )


def still_scene(length, size=32, seed=0):
    rng = np.random.default_rng(seed)
    scene = rng.integers(0, 255, (size * 2, size * 2, 3)).astype(np.uint8)
    # Smooth it, so that a shift by a fraction of a pixel is measurable.
    scene = np.asarray(
        Image.fromarray(scene)
        .resize((size // 2, size // 2))
        .resize((size * 2,) * 2, Image.BILINEAR)
    )
    return scene, np.repeat(scene[None, 8 : 8 + size, 8 : 8 + size], length, axis=0)


def test_camera_check_flags_a_moving_camera_and_a_still_scene_and_passes_a_mover(tmp_path, caplog):
    scene, still = still_scene(12)
    panning = np.stack([scene[8 : 8 + 32, 2 * t : 2 * t + 32] for t in range(12)])  # 2 px/frame
    moving = still.copy()
    for t in range(12):
        moving[t, 10:18, 2 + t : 10 + t] = [250, 20, 20]  # a square, 1 px/frame
    root = tmp_path / "in"
    for name, frames in (("panning", panning), ("still", still), ("square", moving)):
        for t, frame in enumerate(frames):
            (root / name).mkdir(parents=True, exist_ok=True)
            write_image(root / name / f"{t:02d}.png", frame)
    options = sources.Options(size=32, clip_length=6, min_frames=3)
    with caplog.at_level("WARNING"):
        info = run_convert("frames", root, tmp_path / "out", options, test_fraction=0.0)
    checks = {os.path.basename(r["path"]): r for r in info.recordings}
    assert checks["panning"]["camera_motion_px"] == pytest.approx(2.0, abs=0.2)
    assert checks["still"]["camera_motion_px"] < 0.05 and checks["still"]["change_mean"] == 0.0
    assert checks["square"]["camera_motion_px"] < 0.2
    assert checks["square"]["change_mean"] > 0.01 and checks["square"]["clips"] == 2
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    (camera,) = [w for w in warned if "camera moves" in w]
    (nothing,) = [w for w in warned if "Almost nothing moves" in w]
    named = {name: str(root / name) for name in ("panning", "still", "square")}
    assert named["panning"] in camera and named["still"] not in camera
    assert named["still"] in nothing and named["panning"] not in nothing
    assert named["square"] not in camera + nothing
    written = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert {os.path.basename(r["path"]) for r in written["recordings"]} == set(checks)


def test_a_new_source_is_one_registered_class(tmp_path, monkeypatch):
    class Numbers(sources.Source):
        """Text files holding a number n: a clip of 4 frames of grey level n; 0 is unreadable."""

        wanted = "files named *.num"

        def find(self, root):
            return sources.walk_files(root, lambda name: name.endswith(".num"))

        def read(self, item, root, options):
            value = int(pathlib.Path(item).read_text())
            if not value:
                yield sources.Skipped(item, "zero")
                return
            frames = np.full((4, options.size, options.size, 3), value, np.uint8)
            yield spec.Clip(sources.relative(item, root), item, frames)

    monkeypatch.setitem(sources._SOURCES, "numbers", Numbers())
    root = tmp_path / "in"
    root.mkdir()
    for name, value in (("a.num", 10), ("b.num", 0), ("c.num", 30), ("d.txt", 5)):
        (root / name).write_text(str(value))
    info = run_convert("numbers", root, tmp_path / "out", test_fraction=0.0)
    assert info.splits["train"]["clips"] == 2 and info.splits["test"]["clips"] == 0
    assert [s["reason"] for s in info.skipped] == ["zero"]
    levels = sorted(
        int(clip["frames"][0, 0, 0, 0]) for clip in read_split(str(tmp_path / "out"), "train", info)
    )
    assert levels == [10, 30]
    with pytest.raises(ValueError, match="holds no files named"):
        run_convert("numbers", tmp_path / "out", tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="--source=numbers has none to cut"):
        run_convert("numbers", root, tmp_path / "o2", sources.Options(size=SIZE, split="time"))
