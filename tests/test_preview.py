"""The preview drives the TFLite model through LiteRT as a phone would: the loop matches the
Keras step, the GIF has a frame per step, and images or models that do not fit are named."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from export import litert, step_model
from fgbg_keras import runs

pytest.importorskip("ai_edge_litert.interpreter")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def model(unet_run_dir, tmp_path_factory):
    run = runs.restore_networks(unet_run_dir, precision="float32")
    content, step = step_model.convert(run)
    path = tmp_path_factory.mktemp("preview") / "model.tflite"
    path.write_bytes(content)
    return str(path), step


def test_whole_pixel_steps_carry_fractions_to_later_steps():
    steps = litert.whole_pixel_steps(np.tile([[0.4, -1.5]], (5, 1)))
    np.testing.assert_array_equal(steps[:, 0], [0, 1, 0, 1, 0])  # cumulative 0, 1, 1, 2, 2
    np.testing.assert_array_equal(np.cumsum(steps[:, 1]), [-2, -3, -4, -6, -8])


def test_the_loop_feeds_each_output_back_like_the_keras_step(model):
    path, step = model
    rng = np.random.default_rng(0)
    frame = rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    offsets = np.array([[1.5, 0.0], [1.5, 0.5], [-1.0, 2.0], [0.0, 0.0]], np.float32)
    result = litert.run_loop(litert.StepModel(path), frame, offsets)
    assert result["frames"].shape == (4, 32, 32, 3) and len(result["seconds"]) == 4
    keras_frame, keras_mask = tf.constant(frame), tf.zeros([1, 32, 32, 1])
    for t, control in enumerate(result["controls"]):
        out = step(keras_frame, keras_mask, tf.constant(control[None]))
        keras_frame, keras_mask = out["frame"], out["mask"]
        np.testing.assert_allclose(result["frames"][t], keras_frame[0], atol=1e-4)
        np.testing.assert_array_equal(result["masks"][t], keras_mask[0])


def gif_frames(path):
    """Frame count of a GIF written at 10 fps (Pillow merges equal frames, adding durations)."""
    from PIL import Image, ImageSequence

    with Image.open(path) as image:
        size = image.size
        total = sum(frame.info["duration"] for frame in ImageSequence.Iterator(image))
    return total // 100, size


def test_the_command_writes_a_frame_per_step_and_says_the_image_was_resized(model, tmp_path):
    from PIL import Image

    path, _ = model
    image = np.random.default_rng(1).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    output = tmp_path / "out.gif"
    command = [sys.executable, "-m", "export.preview", f"--model={path}"]
    command += [f"--image={tmp_path / 'in.png'}", "--trajectory=3,0;0,2", "--steps=7"]
    command += [f"--output={output}", "--overlay", "--scale=2", "--threads=1"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "is 48x40; this model takes 32x32 frames" in result.stdout
    assert "ms per frame" in result.stdout
    assert gif_frames(output) == (8, (64, 64))  # the input and 7 generated frames, 2x


def test_a_file_that_is_not_the_one_step_model_is_named(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match="junk.tflite.* is not a TFLite model"):
        litert.StepModel(str(junk))

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    def double(x):
        return 2.0 * x

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [double.get_concrete_function()], double
    )
    with pytest.raises(ValueError, match=r"not a one-step model of export.tflite: it takes .*x"):
        litert.StepModel(converter.convert())


def test_bad_flags_are_named(model, tmp_path):
    path, _ = model
    with pytest.raises(ValueError, match="--scale=0"):
        litert.preview(path, "in.png", [[1, 0]], 3, str(tmp_path / "out.gif"), scale=0)
    with pytest.raises(ValueError, match="--steps=0"):
        litert.preview(path, "in.png", [[1, 0]], 0, str(tmp_path / "out.gif"))
    with pytest.raises(ValueError, match="--image='missing.png' cannot be read"):
        litert.preview(path, "missing.png", [[1, 0]], 3, str(tmp_path / "out.gif"))
