"""The one-step TFLite model: builtin ops only, and the Keras step's outputs per quantisation."""

import os

import numpy as np
import pytest

from export import step_model
from export.litert import StepModel
from fgbg_keras import runs

pytest.importorskip("ai_edge_litert.interpreter")


@pytest.fixture(scope="module")
def run(unet_run_dir):
    return runs.restore_networks(unet_run_dir, precision="float32")


def invoke(model, frame, mask, control):
    step = StepModel(model)
    ops = {d["op_name"] for d in step.interpreter._get_ops_details()}
    return (*step(frame, mask, control), ops)


def stored_types(model):
    """The element types of the file's tensors (its weights among them)."""
    return {np.dtype(d["dtype"]).name for d in StepModel(model).interpreter.get_tensor_details()}


# Per quantisation, the largest and the mean absolute difference from the Keras step's frame in
# [-1, 1]. Dynamic range quantisation stores the weights in int8 (activations stay float): a few
# pixels move by up to about 15 grey levels, the mean by a fraction of one.
@pytest.mark.parametrize(
    "quantize, largest, mean",
    [("none", 1e-4, 1e-5), ("float16", 0.05, 1e-3), ("dynamic", 0.25, 5e-3)],
)
def test_builtin_ops_only_and_the_keras_step_within_tolerance(run, quantize, largest, mean):
    model, step = step_model.convert(run, quantize)
    rng = np.random.default_rng(0)
    frame = rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    mask = np.zeros((1, 32, 32, 1), np.float32)
    mask[0, 8:20, 6:18] = 1.0
    control = np.array([[3.0, -2.0]], np.float32)
    for given in (mask, np.zeros_like(mask)):  # a mask, then none: the model finds the object
        got_frame, got_mask, ops = invoke(model, frame, given, control)
        expected = step(frame, given, control)
        np.testing.assert_allclose(got_frame, expected["frame"], atol=largest)
        assert np.abs(got_frame - np.asarray(expected["frame"])).mean() < mean
        np.testing.assert_array_equal(got_mask, expected["mask"])
        assert ops and not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops
    # The mask moved by exactly the control, in whole pixels.
    np.testing.assert_array_equal(invoke(model, frame, mask, control)[1][0, 6:18, 9:21], 1.0)
    # The weights are stored as asked.
    quantized = {"none": set(), "float16": {"float16"}, "dynamic": {"int8"}}
    assert stored_types(model) & {"float16", "int8"} == quantized[quantize]


def test_an_unknown_quantisation_is_named(run):
    with pytest.raises(ValueError, match="--quantize='int4'"):
        step_model.convert(run, "int4")


def test_mixed_precision_networks_are_refused_with_the_way_out(run, tmp_path):
    import keras

    model_dir = os.path.dirname(os.path.dirname(run.checkpoint))
    try:
        mixed = runs.restore_networks(model_dir, precision="mixed_bfloat16")
        with pytest.raises(ValueError, match="precision='float32'"):
            step_model.convert(mixed)
    finally:
        keras.config.set_dtype_policy("float32")
