"""The SavedModel: its signatures reloaded in a fresh process match the Keras model; bad inputs
are InvalidArgument errors that say what is wrong."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import pipeline
from data_pipelines.preprocess import preprocess_frames, to_uint8
from export import serving, step_model
from fgbg_keras import mask_ops, rollout, runs
from fgbg_keras.models.mask_generator import MaskGenerator
from fgbg_keras.models.unet_diff_generator import UNetDiffGenerator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RELOAD = r"""
import json, sys
import numpy as np
import tensorflow as tf

model = tf.saved_model.load(sys.argv[1])
inputs = np.load(sys.argv[2])
out = {}
for name, image, controls in (("same", inputs["image"], inputs["controls"]),
                              ("other", inputs["other_image"], inputs["other_controls"])):
    result = model.signatures["generate"](image=tf.constant(image), controls=tf.constant(controls))
    out[name + "_frames"] = result["frames"].numpy()
    out[name + "_masks"] = result["masks"].numpy()
out["mask"] = model.signatures["mask"](image=tf.constant(inputs["image"]))["mask"].numpy()
step = model.signatures["step"](
    frame=tf.constant(inputs["image"]), mask=tf.constant(out["mask"]),
    control=tf.constant(inputs["controls"][0]))
out["step_frame"], out["step_mask"] = step["frame"].numpy(), step["mask"].numpy()
np.savez(sys.argv[3], **out)
print(json.dumps(sorted(model.signatures.keys())))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory, unet_run_dir):
    root = tmp_path_factory.mktemp("export")
    run = runs.restore_networks(unet_run_dir)
    serving.export(run, str(root / "saved"))
    return run, str(root / "saved"), root


def keras_rollout(run, image, offsets):
    frame = preprocess_frames(image[None], run.config.model.image_size)
    controls = mask_ops.translation_controls(tf.constant(offsets[None], tf.float32))
    out = rollout.rollout(run.mask_generator, run.frame_generator, frame, controls)
    return to_uint8(out["frames"][0]).numpy(), out["masks"][0].numpy()


def test_signatures_reloaded_in_a_fresh_process_match_the_keras_model(exported):
    run, saved, root = exported
    rng = np.random.default_rng(0)
    inputs = {
        "image": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
        "controls": np.array([[2, 0], [2, 1], [0, -1]], np.float32),
        "other_image": rng.integers(0, 255, (48, 40, 3), dtype=np.uint8),
        "other_controls": np.tile(np.array([[2.5, 1.5]], np.float32), (5, 1)),
    }
    np.savez(root / "inputs.npz", **inputs)
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, saved, str(root / "inputs.npz"), str(root / "out.npz")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "generate",
        "generate_encoded",
        "mask",
        "serving_default",
        "step",
    ]
    out = np.load(root / "out.npz")
    # At the model's size the exported rollout is the Keras rollout, pixel for pixel (+-1 level).
    frames, masks = keras_rollout(run, inputs["image"], inputs["controls"])
    assert out["same_frames"].shape == (3, 32, 32, 3)
    np.testing.assert_allclose(out["same_frames"], frames, atol=1)
    np.testing.assert_array_equal(out["same_masks"], masks.astype(np.uint8))
    # Another size and T: outputs come back at the input's size; controls are in its pixels.
    assert out["other_frames"].shape == (5, 48, 40, 3)
    assert out["other_masks"].shape == (5, 48, 40, 1)
    scale = np.array([32 / 40, 32 / 48], np.float32)
    small, small_masks = keras_rollout(run, inputs["other_image"], inputs["other_controls"] * scale)
    resized = tf.image.resize(small.astype(np.float32), (48, 40)).numpy()
    np.testing.assert_allclose(out["other_frames"], np.round(resized), atol=1)
    # mask: binarize(M(.)) of the training preprocessing; step: one rollout step.
    expected_mask = mask_ops.binarize(
        run.mask_generator(preprocess_frames(inputs["image"][None], 32), training=False)
    )
    np.testing.assert_array_equal(out["mask"], np.asarray(expected_mask[0], np.uint8))
    np.testing.assert_allclose(out["step_frame"], frames[0], atol=1)
    np.testing.assert_array_equal(out["step_mask"], masks[0].astype(np.uint8))


@pytest.mark.parametrize(
    "signature, arguments, message",
    [
        ("mask", {"image": np.zeros((8, 8, 4), np.uint8)}, "3 channels"),
        ("mask", {"image": np.zeros((8, 8, 1), np.uint8)}, "3 channels"),
        ("mask", {"image": np.zeros((0, 8, 3), np.uint8)}, "must not be empty"),
        (
            "generate",
            {"image": np.zeros((8, 8, 3), np.uint8), "controls": np.zeros((0, 2), np.float32)},
            "at least one step",
        ),
        (
            "generate",
            {
                "image": np.zeros((8, 8, 3), np.uint8),
                "controls": np.array([[1.0, np.nan]], np.float32),
            },
            "must be finite",
        ),
        (
            "generate",
            {"image": np.zeros((8, 8, 3), np.uint8), "controls": np.zeros((3, 3), np.float32)},
            r"Shape of tensor controls \[3,3\] is not compatible with expected shape \[\?,2\]",
        ),
        (
            "mask",
            {"image": np.zeros((8, 8), np.uint8)},
            r"Shape of tensor image \[8,8\] is not compatible",
        ),
        (
            "step",
            {
                "frame": np.zeros((8, 8, 3), np.uint8),
                "mask": np.zeros((8, 8, 1), np.uint8),
                "control": np.zeros(3, np.float32),
            },
            r"Shape of tensor control \[3\] is not compatible",
        ),
        (
            "generate",
            # T x H x W = 4097 x 1 x 65536, one more step than MAX_OUTPUT_PIXELS allows.
            {
                "image": np.zeros((1, 65536, 3), np.uint8),
                "controls": np.ones((4097, 2), np.float32),
            },
            "T x H x W must be at most 268435456",
        ),
        (
            "generate_encoded",
            {"image_bytes": b"plain text", "controls": np.ones((1, 2), np.float32)},
            "Unknown image file format",
        ),
        (
            "generate_encoded",
            {"image_bytes": b"GIF89a, or so it says", "controls": np.ones((1, 2), np.float32)},
            "Invalid GIF data",
        ),
        (
            "step",
            {
                "frame": np.zeros((8, 8, 3), np.uint8),
                "mask": np.zeros((4, 8, 1), np.uint8),
                "control": np.zeros(2, np.float32),
            },
            "the same H and W as",
        ),
    ],
)
def test_bad_inputs_are_invalid_argument_errors_that_say_why(
    exported, signature, arguments, message
):
    _, saved, _ = exported
    model = tf.saved_model.load(saved)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        model.signatures[signature](**{k: tf.constant(v) for k, v in arguments.items()})


def test_the_exported_preprocessing_is_the_training_pipelines(exported):
    _, saved, _ = exported
    model = tf.saved_model.load(saved)
    rng = np.random.default_rng(3)
    for shape in ((32, 32, 3), (48, 40, 3), (17, 90, 3)):
        image = rng.integers(0, 255, shape, dtype=np.uint8)
        windows = tf.data.Dataset.from_tensors({"frames": image[None]})
        batch = next(iter(pipeline.batch_windows(windows, 1, image_size=32)))
        np.testing.assert_array_equal(model.preprocess(tf.constant(image)), batch["frames"][0])


def test_generate_encoded_decodes_png_and_jpeg_like_the_client_would(exported):
    _, saved, _ = exported
    model = tf.saved_model.load(saved)
    image = np.random.default_rng(2).integers(0, 255, (24, 36, 3), dtype=np.uint8)
    controls = tf.constant([[2.0, 1.0], [1.0, 0.0]])
    for encoded, decoded in (
        (tf.io.encode_png(image), image),
        (tf.io.encode_jpeg(image), tf.io.decode_jpeg(tf.io.encode_jpeg(image))),
        (tf.io.encode_png(image[..., :1]), np.repeat(image[..., :1], 3, axis=-1)),
    ):
        got = model.signatures["generate_encoded"](image_bytes=encoded, controls=controls)
        want = model.signatures["generate"](image=tf.constant(decoded), controls=controls)
        np.testing.assert_array_equal(got["frames"], want["frames"])
        np.testing.assert_array_equal(got["masks"], want["masks"])


def test_saved_model_cli_lists_the_documented_signatures(exported):
    _, saved, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "show", "--dir", saved, "--all"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    blocks = {}
    for block in result.stdout.split("signature_def[")[1:]:
        name, _, body = block.partition("]")
        blocks[name.strip("'")] = body
    expected = {
        "generate": [
            ("inputs['image']", "DT_UINT8", "(-1, -1, -1)"),
            ("inputs['controls']", "DT_FLOAT", "(-1, 2)"),
            ("outputs['frames']", "DT_UINT8", "(-1, -1, -1, 3)"),
            ("outputs['masks']", "DT_UINT8", "(-1, -1, -1, 1)"),
        ],
        "generate_encoded": [
            ("inputs['image_bytes']", "DT_STRING", "()"),
            ("inputs['controls']", "DT_FLOAT", "(-1, 2)"),
            ("outputs['frames']", "DT_UINT8", "(-1, -1, -1, 3)"),
            ("outputs['masks']", "DT_UINT8", "(-1, -1, -1, 1)"),
        ],
        "mask": [
            ("inputs['image']", "DT_UINT8", "(-1, -1, -1)"),
            ("outputs['mask']", "DT_UINT8", "(-1, -1, 1)"),
        ],
        "step": [
            ("inputs['frame']", "DT_UINT8", "(-1, -1, -1)"),
            ("inputs['mask']", "DT_UINT8", "(-1, -1, 1)"),
            ("inputs['control']", "DT_FLOAT", "(2)"),
            ("outputs['frame']", "DT_UINT8", "(-1, -1, 3)"),
            ("outputs['mask']", "DT_UINT8", "(-1, -1, 1)"),
        ],
    }
    expected["serving_default"] = expected["generate"]
    for name, tensors in expected.items():
        body = blocks[name]
        for tensor, dtype, shape in tensors:
            after = body.split(tensor + " tensor_info:")[1]
            assert f"dtype: {dtype}" in after.split("name:")[0], (name, tensor)
            assert f"shape: {shape}" in after.split("name:")[0], (name, tensor)


def test_predict_requests_built_with_the_serving_protos_feed_every_signature(exported):
    predict_pb2 = pytest.importorskip("tensorflow_serving.apis.predict_pb2")
    _, saved, _ = exported
    model = tf.saved_model.load(saved)
    image = np.random.default_rng(1).integers(0, 255, (20, 28, 3), dtype=np.uint8)
    requests = {
        "generate": {"image": image, "controls": np.array([[1.0, 0.5], [1.0, 0.5]], np.float32)},
        "generate_encoded": {
            "image_bytes": tf.io.encode_png(image).numpy(),
            "controls": np.array([[1.0, 0.5]], np.float32),
        },
        "mask": {"image": image},
        "step": {
            "frame": image,
            "mask": np.zeros((20, 28, 1), np.uint8),
            "control": np.array([1.0, 0.0], np.float32),
        },
    }
    for signature, inputs in requests.items():
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "fgbg"
        request.model_spec.signature_name = signature
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        # What the server does with the request: tensors from the protos, fed by name.
        parsed = predict_pb2.PredictRequest.FromString(request.SerializeToString())
        feed = {k: tf.constant(tf.make_ndarray(v)) for k, v in parsed.inputs.items()}
        outputs = model.signatures[parsed.model_spec.signature_name](**feed)
        for value in outputs.values():
            assert value.dtype == tf.uint8 and value.shape[-3:-1] == (20, 28)


def test_a_generator_with_memory_has_no_one_step_exports(tmp_path):
    # The one-step signature and the TFLite step model have no inputs for the rollout's memory.
    mask_generator = MaskGenerator(ngf=8, num_res_blocks=0, num_downsampling=1)
    frame_generator = UNetDiffGenerator(
        num_levels=2, filters=8, max_filters=8, norm_groups=4, memory=("previous",)
    )
    frame = tf.zeros([1, 16, 16, 3])
    mask = mask_generator(frame)
    frame_generator({"frame": frame, "mask": mask, "target_mask": mask})
    module = serving.Exported(mask_generator, frame_generator, 16)
    assert sorted(module.signatures()) == [
        "generate",
        "generate_encoded",
        "mask",
        "serving_default",
    ]
    saved = str(tmp_path / "saved")
    tf.saved_model.save(module, saved, signatures=module.signatures())
    loaded = tf.saved_model.load(saved)
    assert "step" not in loaded.signatures and getattr(loaded, "step", None) is None
    assert "generate" in loaded.signatures
    with pytest.raises(ValueError, match="one-step TFLite model has no inputs for the rollout"):
        step_model.step_function(mask_generator, frame_generator, 16)
    frame_generator.memory = ()
    assert "step" in serving.Exported(mask_generator, frame_generator, 16).signatures()
