"""The built-in robot-pushing set: rendering, ground truth, splits, conversion, training."""

import dataclasses
import json
import os
import threading

import keras
import numpy as np
import pytest

from data_pipelines import (
    conversion,
    datasets,
    pipeline,
    pushing,
    pushing_scene,
    pushing_video,
    records,
    sources,
)
from fgbg_keras import runs
from fgbg_keras.evaluation import pairs
from fgbg_keras.training import loop, phases
from tests.tiny import tiny_config

SIZE, LENGTH = 32, 8
QUIET = pushing.PushingOptions().nuisances_off()


@pytest.fixture(scope="module")
def clips():
    """Clips of the nuisance-free scene at a few seeds, with every object count."""
    options = dataclasses.replace(QUIET, objects=4)
    return [pushing.generate_clip(seed, SIZE, 16, options) for seed in range(6)]


def _in_a_fresh_scene(seed):
    """`generate_clip(seed)` in a new thread, so with a new pybullet client (`Scene`)."""
    out = []
    worker = threading.Thread(target=lambda: out.append(pushing.generate_clip(seed, SIZE, LENGTH)))
    worker.start()
    worker.join()
    return out[0]


def test_rendering_is_deterministic_per_seed():
    # A clip is the same whatever the scene rendered before it: clip 3 after clip 4 in this
    # thread's scene, and first in a fresh one (textures once leaked from clip to clip).
    other = pushing.generate_clip(4, SIZE, LENGTH)
    first = pushing.generate_clip(3, SIZE, LENGTH)
    again = _in_a_fresh_scene(3)
    for key in ("frames", "masks", "agent_masks", "centroids", "endeffector_xy"):
        np.testing.assert_array_equal(first[key], again[key], err_msg=key)
    assert not np.array_equal(first["frames"], other["frames"])
    assert first["frames"].shape == (LENGTH, SIZE, SIZE, 3)
    assert first["frames"].dtype == np.uint8


def test_arm_mask_is_the_segmentation_and_holds_the_end_effector(clips):
    for clip in clips:
        rendered = clip["segmentation"] == clip["arm_id"]
        factor = pushing_scene.SUPERSAMPLE
        assert rendered.shape[1:] == (factor * SIZE,) * 2
        # A pixel is the arm's where at least half of its rendered samples are.
        samples = rendered.reshape(16, SIZE, factor, SIZE, factor)
        arm = samples.mean(axis=(2, 4)) >= 0.5
        np.testing.assert_array_equal(clip["agent_masks"][..., 0], arm)
        assert arm.any(axis=(1, 2)).all()
        for t, (x, y) in enumerate(np.round(clip["endeffector_xy"]).astype(int)):
            near = clip["agent_masks"][t, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2, 0]
            assert near.any(), (t, x, y)


def test_arm_centroids_and_offsets_follow_its_mask(clips):
    clip = clips[0]
    rows, cols = np.nonzero(clip["agent_masks"][5, ..., 0])
    np.testing.assert_allclose(clip["centroids"][5], [cols.mean(), rows.mean()], atol=1e-4)
    np.testing.assert_allclose(clip["offsets"], np.diff(clip["centroids"], axis=0), atol=1e-6)


def test_objects_move_only_after_the_arm_touches_them(clips):
    pushes = 0
    for clip in clips:
        moved, touched = clip["moved"][:-1], clip["touched"]
        for k in range(moved.shape[1]):
            steps = np.nonzero(moved[:, k])[0]
            if not len(steps):
                continue
            pushes += 1
            # Frame t moves to t + 1 in the physics steps of touched[t + 1].
            assert touched[: steps[0] + 2, k].any(), (k, steps)
    assert pushes, "no clip pushed an object: the scene does not test pushing"


def test_foreground_is_the_arm_alone_before_any_contact_and_more_after(clips):
    grew = 0
    for clip in clips:
        contact = np.cumsum(clip["touched"].any(axis=1)) > 0
        for t in range(len(contact) - 1):
            if not contact[t + 1]:
                np.testing.assert_array_equal(clip["masks"][t], clip["agent_masks"][t])
        grew += int((clip["masks"] > clip["agent_masks"]).any())
    assert grew, "no pushed object ever joined the foreground"


def test_nuisances_change_the_frames_but_not_the_truth():
    quiet = pushing.generate_clip(1, SIZE, LENGTH, QUIET)
    noisy = pushing.generate_clip(1, SIZE, LENGTH, dataclasses.replace(QUIET, noise=5.0))
    np.testing.assert_array_equal(quiet["masks"], noisy["masks"])
    difference = np.abs(quiet["frames"].astype(int) - noisy["frames"])
    assert 2.0 < difference.mean() < 8.0
    shaken = pushing.generate_clip(1, SIZE, LENGTH, dataclasses.replace(QUIET, shake=2.0))
    assert not np.array_equal(shaken["agent_masks"], quiet["agent_masks"])


def test_compression_loses_more_at_a_higher_crf_and_stays_close():
    frames = pushing.generate_clip(2, SIZE, LENGTH, QUIET)["frames"]
    errors = []
    for crf in (1, 23, 35):
        decoded = pushing_video.compress(frames, crf)
        assert decoded.shape == frames.shape
        errors.append(np.abs(decoded.astype(int) - frames).mean())
    # crf 1 keeps the 4:2:0 chroma loss of these small, saturated frames.
    assert 0.0 < errors[0] < errors[1] < errors[2] < 15.0, errors


def test_splits_never_share_a_clip():
    train = pushing.make_split("train", 3, SIZE, 4, QUIET, processes=1)
    test = pushing.make_split("test", 3, SIZE, 4, QUIET, processes=1)
    for a in train["frames"]:
        for b in test["frames"]:
            assert not np.array_equal(a, b)
    assert set(train) == set(pushing.KEPT)


@pytest.mark.parametrize(
    "options, flag",
    [
        (dataclasses.replace(QUIET, objects=0), "--pushing_objects=0"),
        (dataclasses.replace(QUIET, speed=40.0), "--pushing_speed=40.0"),
        (dataclasses.replace(QUIET, crf=60), "--pushing_crf=60"),
        (dataclasses.replace(QUIET, shake=-1.0), "--pushing_shake=-1.0"),
    ],
)
def test_options_that_cannot_render_name_their_flag(options, flag):
    with pytest.raises(ValueError, match=flag):
        options.check()


def test_a_split_is_rendered_once_into_the_cache_and_loaded_from_it(tmp_path, monkeypatch):
    cache = str(tmp_path / "cache")
    first = pushing.make_split("test", 2, SIZE, 4, QUIET, processes=1, cache_dir=cache)
    (saved,) = os.listdir(cache)

    def no_rendering(job):
        raise AssertionError("rendered again instead of loading the cached split")

    monkeypatch.setattr(pushing, "_render_split_part", no_rendering)
    again = pushing.make_split("test", 2, SIZE, 4, QUIET, processes=1, cache_dir=cache)
    for key in pushing.KEPT:
        np.testing.assert_array_equal(first[key], again[key])
    # Other settings are another file; a file that cannot be read is rendered again.
    with pytest.raises(AssertionError, match="rendered again"):
        pushing.make_split("test", 3, SIZE, 4, QUIET, processes=1, cache_dir=cache)
    with open(os.path.join(cache, saved), "wb") as damaged:
        damaged.write(b"not an npz file")
    with pytest.raises(AssertionError, match="rendered again"):
        pushing.make_split("test", 2, SIZE, 4, QUIET, processes=1, cache_dir=cache)


def test_sizes_the_networks_cannot_take_are_refused():
    with pytest.raises(ValueError, match="--image_size=40"):
        pushing.check_size(40)
    config = tiny_config(data="pushing", clip_length=6)
    config.model.image_size = 40
    with pytest.raises(ValueError, match="--image_size=40"):
        datasets.source(config).check(2)


def test_beam_conversion_keeps_frames_masks_and_offsets(tmp_path):
    options = sources.Options(
        size=SIZE, clip_length=6, num_clips=4, seed=5, pushing=QUIET, test_fraction=0.5
    )
    info = conversion.convert("pushing", None, str(tmp_path), options, num_shards=1)
    assert {"masks", "agent_masks", "centroids", "endeffector_xy"} <= set(info.features)
    written = {}
    for split in ("train", "test"):
        for clip in records.read_clips(str(tmp_path), split, shuffle=False, repeat=False):
            written[clip["clip_id"].numpy().decode()] = clip
    assert len(written) == 4
    for index in range(4):
        expected = pushing.generate_clip(np.random.SeedSequence([5, 4, index]), SIZE, 6, QUIET)
        clip = written[f"pushing/{index:06d}"]
        for key in ("frames", "masks", "agent_masks", "centroids", "endeffector_xy"):
            np.testing.assert_array_equal(clip[key].numpy(), expected[key], err_msg=key)


def test_a_model_that_fails_to_load_skips_only_its_clips(tmp_path, monkeypatch):
    monkeypatch.setattr(
        pushing_scene,
        "OBJECT_MODELS",
        (("cube_small.urdf", (1.5, 1.5)), ("no_such_model.urdf", (1.0, 1.0))),
    )
    options = sources.Options(
        size=SIZE,
        clip_length=4,
        num_clips=8,
        pushing=dataclasses.replace(QUIET, objects=1),
        test_fraction=0.3,
    )
    info = conversion.convert("pushing", None, str(tmp_path), options)
    converted = info.splits["train"]["clips"] + info.splits["test"]["clips"]
    assert info.skipped and converted, info.skipped
    assert converted + len(info.skipped) == 8
    saved = json.loads((tmp_path / "dataset.json").read_text())
    assert all(s["path"] in {str(i) for i in range(8)} for s in saved["skipped"])
    assert all("no_such_model" in s["reason"] or "error" in s["reason"] for s in saved["skipped"])


@pytest.mark.parametrize(
    "align_frames, bg_reference",
    [("none", "next_frame"), ("translation", "next_frame"), ("none", "clip_median")],
)
def test_training_steps_on_pushing_lower_the_loss(align_frames, bg_reference):
    keras.utils.set_random_seed(2)
    config = tiny_config(data="pushing", clip_length=6, num_train_clips=2).validate()
    config.loss.align_frames = align_frames
    config.loss.bg_reference = bg_reference
    config.pushing.pushing_crf = 0
    config.loss.spar_schedule = "halving"
    config.loss.spar_start_ratio = config.loss.spar_min_ratio = 16.0
    config.train.learning_rate = 2e-3
    source = datasets.source(config)
    windows = source.training_windows(
        3, seed=0, start_index=0, background=config.loss.clip_background
    )
    batches = pipeline.batch_windows(windows, 2, align=config.loss.align)
    batch = next(iter(pipeline.pairs(batches)))
    assert ("background" in batch) == config.loss.clip_background
    model, _ = phases.get(1).build(config, batch)
    before = model.evaluate(batch, verbose=0, return_dict=True, steps=1)
    for _ in range(20):
        model.train_on_batch(batch)
    after = model.evaluate(batch, verbose=0, return_dict=True, steps=1)
    assert after["loss"] < before["loss"], (before, after)


def test_a_pushing_run_reports_iou_against_the_foreground_and_the_arm(tmp_path):
    config = tiny_config(
        data="pushing", clip_length=6, num_train_clips=2, num_val_clips=1, num_test_clips=2
    )
    config.pushing.pushing_crf = 0
    model_dir = str(tmp_path / "run")
    loop.train_and_evaluate(config, model_dir, verbose=False)
    results = pairs.evaluate_pairs(runs.restore_networks(model_dir))
    assert results["pairs"] == 2 * 5
    for name in ("mask_iou", "diff_mask_iou", *pairs.AGENT_METRICS):
        assert 0.0 <= results[name] <= 1.0, name
    assert "mask IoU, agent alone" in pairs.format_table(results)
