import keras
import numpy as np
import pytest
import tensorflow as tf

from fgbg_keras import mask_ops, rollout
from fgbg_keras.models import factory
from tests.harness import shifted
from tests.tiny import tiny_config

SIZE = 32


def blob(batch=1):
    """A [B, SIZE, SIZE, 1] disc of radius 4 at (x, y) = (15, 15)."""
    rows, cols = np.mgrid[:SIZE, :SIZE]
    disc = ((rows - 15) ** 2 + (cols - 15) ** 2 <= 16).astype(np.float32)
    return np.broadcast_to(disc[None, :, :, None], (batch, SIZE, SIZE, 1)).copy()


def fixed_blob_mask_generator(frames, training=False):
    """A mask "network" that finds the same disc in every frame."""
    return tf.broadcast_to(tf.constant(blob()), [tf.shape(frames)[0], SIZE, SIZE, 1])


@pytest.fixture(scope="module")
def frame_generator():
    generator = factory.build_frame_generator(tiny_config().model, moving_masks=True)
    zeros = np.zeros((1, SIZE, SIZE, 1), np.float32)
    generator({"frame": np.zeros((1, SIZE, SIZE, 3)), "mask": zeros, "target_mask": zeros})
    return generator


def first_frames(batch=2):
    return np.random.default_rng(2).uniform(-1, 1, (batch, SIZE, SIZE, 3)).astype(np.float32)


def step_controls(offsets, batch=2):
    offsets = np.broadcast_to(np.asarray(offsets, np.float32), (batch, len(offsets), 2))
    return np.asarray(mask_ops.translation_controls(offsets))


def test_rollout_returns_a_frame_and_mask_per_step_and_carries_the_mask(frame_generator):
    offsets = [(2, 0), (2, 0), (0, -1), (-3, 1), (1, 1)]
    out = rollout.rollout(
        fixed_blob_mask_generator, frame_generator, first_frames(), step_controls(offsets)
    )
    assert out["frames"].shape == (2, 5, SIZE, SIZE, 3) and out["frames"].dtype == tf.float32
    assert out["masks"].shape == (2, 5, SIZE, SIZE, 1) and out["empty"].dtype == tf.bool
    assert np.all(np.isfinite(out["frames"])) and np.all(np.abs(out["frames"]) <= 1.0)
    np.testing.assert_array_equal(out["initial_mask"], blob(2))
    total = np.cumsum(offsets, axis=0)
    for k, (dx, dy) in enumerate(total):
        np.testing.assert_array_equal(out["masks"][:, k], shifted(blob(2), dx, dy), err_msg=k)
    assert not np.any(out["empty"])
    again = rollout.rollout(
        fixed_blob_mask_generator, frame_generator, first_frames(), step_controls(offsets)
    )
    for key in out:
        np.testing.assert_array_equal(out[key], again[key], err_msg=key)


def test_carry_composes_sub_pixel_steps_and_reestimate_does_not(frame_generator):
    controls = step_controls([(0.5, 0.0)] * 4)
    carry = rollout.rollout(fixed_blob_mask_generator, frame_generator, first_frames(), controls)
    np.testing.assert_array_equal(carry["masks"][:, 1], shifted(blob(2), 1, 0))
    np.testing.assert_array_equal(carry["masks"][:, 3], shifted(blob(2), 2, 0))
    again = rollout.rollout(
        fixed_blob_mask_generator,
        frame_generator,
        first_frames(),
        step_controls([(2, 1)] * 3),
        mask_mode="reestimate",
    )
    # M finds the disc where it was, so every target is the disc moved by one step only.
    for k in range(3):
        np.testing.assert_array_equal(again["masks"][:, k], shifted(blob(2), 2, 1))


def test_empty_flags_once_the_object_leaves_the_frame(frame_generator):
    # The disc spans columns 11..19: after steps of 5 px its left edge is at 16, 21, 26, 31, 36.
    out = rollout.rollout(
        fixed_blob_mask_generator, frame_generator, first_frames(), step_controls([(5, 0)] * 5)
    )
    np.testing.assert_array_equal(out["empty"], [[False, False, False, False, True]] * 2)
    assert np.asarray(out["masks"][:, 4]).sum() == 0


def tiny_networks():
    """A freshly built (untrained) mask network and frame generator of the tiny config."""
    config = tiny_config().model
    mask_generator = factory.build_mask_generator(config)
    frame_generator = factory.build_frame_generator(config, moving_masks=True)
    masks = mask_generator(first_frames(1))
    frame_generator({"frame": first_frames(1), "mask": masks, "target_mask": masks})
    return mask_generator, frame_generator


def test_compiled_rollout_traces_once_for_every_number_of_steps():
    mask_generator, frame_generator = tiny_networks()
    frames = first_frames(1)
    fn = rollout.make_rollout_fn(mask_generator, frame_generator, mask_mode="reestimate")
    graph = fn.get_concrete_function().graph
    assert any(op.type in ("While", "StatelessWhile") for op in graph.get_operations())
    short = fn(frames, step_controls([(1, 0)] * 3, batch=1))
    long = fn(frames, step_controls([(1, 0)] * 12, batch=1))
    assert fn.experimental_get_tracing_count() == 1
    assert short["frames"].shape == (1, 3, SIZE, SIZE, 3)
    assert long["frames"].shape == (1, 12, SIZE, SIZE, 3)
    np.testing.assert_allclose(long["frames"][:, :3], short["frames"], rtol=1e-5, atol=1e-5)
    eager = rollout.rollout(
        mask_generator,
        frame_generator,
        frames,
        step_controls([(1, 0)] * 3, batch=1),
        mask_mode="reestimate",
    )
    np.testing.assert_allclose(eager["frames"], short["frames"], rtol=1e-4, atol=1e-4)


def test_rollout_graph_carries_a_fixed_state_and_preallocated_outputs():
    # Memory that does not grow with T, read off the graph: one While loop whose carried
    # state is one frame, one mask and one control per clip, and whose outputs go to lists
    # reserved once at size T and written in place (no append, no concatenation of state).
    mask_generator, frame_generator = tiny_networks()
    for mode in rollout.MASK_MODES:
        fn = rollout.make_rollout_fn(mask_generator, frame_generator, mode)
        graph = fn.get_concrete_function().graph
        (loop,) = [op for op in graph.get_operations() if op.type in ("While", "StatelessWhile")]
        reserved = [t for t in loop.inputs if t.op.type == "TensorListReserve"]
        assert len(reserved) == 3  # frames, masks and "empty" flags
        # The carried state is f_k, m_k and the composed control (m_0 too with carry); the
        # only tensor with a T axis is the controls input, which the loop only reads.
        state = [t.shape.as_list() for t in loop.outputs if t.dtype == tf.float32]
        per_clip = ([None, None, None, 3], [None, None, None, 1], [None, 2, 3])
        assert [shape for shape in state if shape not in per_clip] == [[None, None, 2, 3]]
        library = graph.as_graph_def().library.function
        body = next(f for f in library if f.signature.name == loop.get_attr("body").name)
        body_ops = {node.op for node in body.node_def}
        assert "TensorListSetItem" in body_ops
        assert not body_ops & {"TensorListPushBack", "TensorListConcatV2", "TensorListResize"}


def test_mixed_precision_networks_give_float32_outputs():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        config = tiny_config().model
        mask_generator = factory.build_mask_generator(config)
        frame_generator = factory.build_frame_generator(config, moving_masks=True)
        out = rollout.rollout(
            mask_generator,
            frame_generator,
            first_frames(1),
            step_controls([(1, 1)] * 2, 1),
            mask_mode="reestimate",
        )
    finally:
        keras.config.set_dtype_policy("float32")
    assert out["frames"].dtype == tf.float32 and out["masks"].dtype == tf.float32


def test_unknown_mask_mode_is_refused(frame_generator):
    with pytest.raises(ValueError, match="mask_mode.*'warp'"):
        rollout.rollout(
            fixed_blob_mask_generator,
            frame_generator,
            first_frames(),
            step_controls([(1, 0)]),
            mask_mode="warp",
        )
    with pytest.raises(ValueError, match="mask_mode"):
        rollout.make_rollout_fn(fixed_blob_mask_generator, frame_generator, mask_mode="")


def test_each_step_is_given_the_first_frame_and_the_previous_step_s_inputs():
    # A generator that mixes what it is given: the rollout must feed f_0, m_0 and step k - 1's
    # frame and mask (step 0's own at step 0).
    def mixing_generator(inputs, training=False):
        mixed = (
            0.5 * inputs["frame"]
            + 0.3 * inputs["previous_frame"]
            + 0.2 * inputs["first_frame"]
            + 0.1 * inputs["previous_mask"]
            - 0.05 * inputs["first_mask"]
        )
        return {"frame": mixed}

    offsets = [(2, 0), (1, 1), (0, -2), (-1, 0)]
    frames = first_frames()
    out = rollout.rollout(
        fixed_blob_mask_generator, mixing_generator, frames, step_controls(offsets)
    )
    masks = [blob(2)] + [shifted(blob(2), dx, dy) for dx, dy in np.cumsum(offsets, axis=0)]
    fed = [frames]
    for k in range(len(offsets)):
        previous = max(k - 1, 0)
        fed.append(
            0.5 * fed[k]
            + 0.3 * fed[previous]
            + 0.2 * frames
            + 0.1 * masks[previous]
            - 0.05 * masks[0]
        )
    np.testing.assert_allclose(out["frames"], np.stack(fed[1:], 1), atol=1e-5)
