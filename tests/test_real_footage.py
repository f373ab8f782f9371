"""Real footage: two still-camera videos from Debian's opencv-doc (`tools/footage/fetch.sh`)
convert with a split in time, pass the camera check, and a few training steps on a few of their
frames lower the loss."""

import os

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import camera_check, conversion, sources, spec
from fgbg_keras.training import loop
from tests.harness import read_events
from tests.tiny import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOOTAGE = os.environ.get("FGBG_FOOTAGE", os.path.join(ROOT, "data", "footage"))
CLIPS = ("box.mp4", "vtest.avi")
# The first frames of each (at 10 frames a second: 4.8 s; the box moves from the first second).
FRAMES = 48


@pytest.fixture(scope="module", params=CLIPS)
def converted(request, tmp_path_factory):
    path = os.path.join(FOOTAGE, request.param)
    if not os.path.exists(path):
        pytest.skip(f"{path} is missing: run tools/footage/fetch.sh")
    root = tmp_path_factory.mktemp("in")
    os.symlink(path, root / request.param)
    output = tmp_path_factory.mktemp("converted")
    options = sources.Options(
        size=32,
        fps=10,
        max_frames=FRAMES,
        clip_length=0,
        min_frames=8,
        split="time",
        test_fraction=0.25,
    )
    info = conversion.convert("videos", str(root), str(output), options, num_shards=1)
    return str(output), info


def test_real_footage_converts_split_in_time_and_passes_the_camera_check(converted):
    _, info = converted
    assert info.splits["train"]["frames"] == FRAMES * 3 // 4
    assert info.splits["test"]["frames"] == FRAMES // 4
    assert not info.skipped
    (recording,) = info.recordings
    # Still cameras: under a tenth of a pixel a frame here; and people or a box move.
    assert recording["camera_motion_px"] < camera_check.MOVING_CAMERA_PX
    assert recording["change_mean"] > camera_check.STILL_CHANGE
    assert not camera_check.warnings(info.recordings)
    assert spec.DatasetInfo.read(converted[0]).recordings == info.recordings


def test_a_few_steps_on_real_frames_lower_the_loss(converted, tmp_path):
    directory, _ = converted
    config = tiny_config(
        data=f"tfrecord:{directory}",
        train_steps=24,
        log_every=4,
        checkpoint_every=24,
        image_every=24,
        clips_per_batch=4,
        frames_per_clip=4,
        clip_length=8,
        learning_rate=2e-3,
        augment_flip=True,
        augment_shift=2,
    )
    config.model.generator = "unet"
    config.model.unet_filters = 8
    config.model.unet_max_filters = 16
    # The recipe's mask losses for real footage (configs/real.flags).
    config.loss.bg_reference = "clip_median"
    config.loss.bg_mask = "current"
    config.loss.diff = "maxchannel"
    config.loss.diff_threshold = 0.15
    config.loss.spar_schedule = "halving"
    config.loss.spar_start_ratio = config.loss.spar_min_ratio = 1.25
    model_dir = str(tmp_path / "run")
    loop.train_and_evaluate(config, model_dir, verbose=False)
    losses = [
        float(tf.make_ndarray(e.tensor_proto))
        for e in read_events(model_dir, "train").Tensors("loss")
    ]
    assert len(losses) == 6 and np.all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses
