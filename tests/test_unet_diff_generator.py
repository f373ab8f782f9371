import keras
import numpy as np
import pytest
import tensorflow as tf

from fgbg_keras import mask_ops, runs
from fgbg_keras.models.unet_diff_generator import GATE_START, UNet, UNetDiffGenerator
from tests.harness import check_layer

TINY = {"num_levels": 3, "filters": 8, "max_filters": 16, "norm_groups": 4}


def inputs(batch=2, size=(16, 16), seed=0, mask=None, target_mask=None):
    rng = np.random.default_rng(seed)
    random_mask = (rng.uniform(size=(batch, *size, 1)) > 0.5).astype("float32")
    mask = random_mask if mask is None else mask
    return {
        "frame": rng.uniform(-1, 1, (batch, *size, 3)).astype("float32"),
        "mask": mask,
        "target_mask": mask if target_mask is None else target_mask,
    }


def difference(generator, data):
    features = np.concatenate([data["frame"], data["mask"], data["target_mask"]], axis=-1)
    return np.asarray(generator.unet(features))


@pytest.mark.parametrize("size", [(8, 8), (16, 24)])
def test_unet_contract(size):
    # Levels 0, 1: conv + norm (4 each); level 2, the bottleneck: conv (2); three up stages:
    # conv + norm (4 each); head conv (2).
    features = np.random.default_rng(1).uniform(-1, 1, (2, *size, 5)).astype("float32")
    d = check_layer(UNet, TINY, features, (2, *size, 3), expected_num_trainable_weights=24)
    d = np.asarray(d)
    assert d.dtype == np.float32 and np.all(np.abs(d) <= 2.0)


@pytest.mark.parametrize("size", [(8, 8), (16, 24)])
def test_generator_contract(size):
    frame = check_layer(
        UNetDiffGenerator,
        TINY,
        inputs(size=size),
        {"frame": (2, *size, 3)},
        expected_num_trainable_weights=24,
        expected_num_non_trainable_weights=0,
    )["frame"]
    frame = np.asarray(frame)
    assert frame.dtype == np.float32 and np.all(np.abs(frame) <= 1.0)


def test_levels_down_to_one_pixel():
    # 32x32 with 5 levels: the bottleneck is 1x1, with no normalisation over it.
    generator = UNetDiffGenerator(num_levels=5, filters=8, max_filters=32, norm_groups=4)
    assert generator.downsampling_factor == 32
    assert tuple(generator.unet.get_layer("down4_conv").output.shape) == (None, None, None, 32)
    out = generator(inputs(size=(32, 32)))["frame"]
    assert tuple(out.shape) == (2, 32, 32, 3)
    assert np.all(np.isfinite(np.asarray(out)))


def test_empty_masks_keep_the_frame_exactly():
    empty = np.zeros((2, 16, 16, 1), "float32")
    data = inputs(mask=empty)
    out = np.asarray(UNetDiffGenerator(**TINY)(data)["frame"])
    np.testing.assert_array_equal(out, data["frame"])


def test_full_masks_give_the_clipped_sum():
    full = np.ones((2, 16, 16, 1), "float32")
    generator = UNetDiffGenerator(**TINY)
    data = inputs(mask=full)
    expected = np.clip(data["frame"] + difference(generator, data), -1.0, 1.0)
    np.testing.assert_array_equal(np.asarray(generator(data)["frame"]), expected)


def test_pixels_outside_the_union_keep_the_frame():
    # The object is in the top-left block and should move to the top-right one.
    mask = np.zeros((1, 16, 16, 1), "float32")
    target = np.zeros((1, 16, 16, 1), "float32")
    mask[0, 2:6, 2:6] = 1.0
    target[0, 2:6, 10:14] = 1.0
    generator = UNetDiffGenerator(**TINY)
    data = inputs(batch=1, mask=mask, target_mask=target)
    out = np.asarray(generator(data)["frame"])
    outside = np.maximum(mask, target)[..., 0] == 0
    np.testing.assert_array_equal(out[outside], data["frame"][outside])
    # Inside both the old and the new place the U-Net's change applies.
    expected = np.clip(data["frame"] + difference(generator, data), -1.0, 1.0)
    np.testing.assert_array_equal(out[0, 2:6, 2:6], expected[0, 2:6, 2:6])
    np.testing.assert_array_equal(out[0, 2:6, 10:14], expected[0, 2:6, 10:14])


def test_region_margin_lets_the_unet_change_pixels_next_to_the_masks():
    mask = np.zeros((1, 16, 16, 1), "float32")
    mask[0, 4:8, 4:8] = 1.0
    generator = UNetDiffGenerator(**TINY, region_margin=2)
    data = inputs(batch=1, mask=mask, target_mask=mask)
    out = np.asarray(generator(data)["frame"])
    expected = np.clip(data["frame"] + difference(generator, data), -1.0, 1.0)
    # Within two pixels of the mask the U-Net's change applies; beyond them the frame is kept.
    np.testing.assert_array_equal(out[0, 2:10, 2:10], expected[0, 2:10, 2:10])
    ring = np.zeros((16, 16), bool)
    ring[2:10, 2:10] = True
    ring[4:8, 4:8] = False
    assert not np.allclose(out[0][ring], data["frame"][0][ring], atol=1e-3)
    beyond = np.ones((16, 16), bool)
    beyond[2:10, 2:10] = False
    np.testing.assert_array_equal(out[0][beyond], data["frame"][0][beyond])
    assert UNetDiffGenerator.from_config(generator.get_config()).region_margin == 2


def test_paste_starts_from_the_moved_foreground():
    mask = np.zeros((1, 16, 16, 1), "float32")
    mask[0, 2:6, 2:6] = 1.0
    target = np.zeros_like(mask)
    target[0, 2:6, 10:14] = 1.0  # the same block, 8 columns to the right
    pasting = UNetDiffGenerator(**TINY, paste=True)
    data = inputs(batch=1, mask=mask, target_mask=target)
    out = np.asarray(pasting(data)["frame"])
    # The base is tested in test_mask_ops: the block copied 8 columns on, its old place filled.
    base = np.asarray(mask_ops.paste_foreground(data["frame"], mask, target))
    np.testing.assert_array_equal(base[0, 2:6, 10:14], data["frame"][0, 2:6, 2:6])
    features = np.concatenate([base, mask, target], axis=-1)
    expected = np.clip(base + np.asarray(pasting.unet(features)), -1.0, 1.0)
    region = np.maximum(mask, target)[..., 0] == 1
    np.testing.assert_allclose(out[region], expected[region], atol=1e-6)
    np.testing.assert_array_equal(out[~region], data["frame"][~region])
    # With unmoved masks, soft as in Phase I, pasting changes nothing: same weights, same frame.
    plain = UNetDiffGenerator(**TINY)
    plain.set_weights(pasting.get_weights())
    soft = np.random.default_rng(6).uniform(size=mask.shape).astype("float32")
    still = inputs(batch=1, mask=soft)
    np.testing.assert_allclose(pasting(still)["frame"], plain(still)["frame"], atol=1e-5)
    assert UNetDiffGenerator.from_config(pasting.get_config()).paste


def test_reset_head_makes_the_prediction_the_base_frame():
    generator = UNetDiffGenerator(**TINY)
    mask = np.zeros((2, 16, 16, 1), "float32")
    mask[:, 3:9, 4:10] = 1.0
    data = inputs(mask=mask)
    before = [w.copy() for w in generator.get_weights()]
    assert not np.array_equal(generator(data)["frame"], data["frame"])
    generator.reset_head()
    np.testing.assert_array_equal(generator(data)["frame"], data["frame"])
    # The last convolution (kernel, bias) is zero; every other weight is as it was.
    after = generator.get_weights()
    assert all(not np.any(w) for w in after[-2:])
    for a, b in zip(before[:-2], after[:-2]):
        np.testing.assert_array_equal(a, b)


def test_output_kernel_is_the_last_convolution():
    generator = UNetDiffGenerator(**TINY)
    kernel = generator.output_kernel
    assert tuple(kernel.shape) == (3, 3, 8 + 5, 3)
    assert kernel is generator.unet.layers[-3].kernel
    data = {k: tf.constant(v) for k, v in inputs().items()}
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(generator(data, training=True)["frame"])
    grad = tape.gradient(loss, kernel)
    assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_levels": 0}, "num_levels"),
        ({"filters": 0}, "filters"),
        ({"max_filters": 2.5}, "max_filters"),
        ({"norm_groups": 3}, "norm_groups"),
        ({"keep_pasted": -1}, "keep_pasted"),
        ({"keep_pasted": 1.5}, "keep_pasted"),
        ({"region_margin": -1}, "region_margin"),
    ],
)
def test_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"{name}="):
        UNetDiffGenerator(**{**TINY, **kwargs})


def test_keep_pasted_keeps_the_moved_object_and_changes_only_its_edge_and_old_place():
    mask = np.zeros((1, 16, 16, 1), "float32")
    mask[0, 2:8, 2:8] = 1.0
    target = np.zeros_like(mask)
    target[0, 2:8, 9:15] = 1.0  # the same 6x6 block, 7 columns on
    keeping = UNetDiffGenerator(**TINY, paste=True, keep_pasted=1)
    free = UNetDiffGenerator(**TINY, paste=True)
    keeping(inputs(batch=1))
    free.set_weights(keeping.get_weights())
    data = inputs(batch=1, mask=mask, target_mask=target)
    base = np.asarray(mask_ops.paste_foreground(data["frame"], mask, target))
    kept, changed = np.asarray(keeping(data)["frame"]), np.asarray(free(data)["frame"])
    # The interior (the target eroded by one pixel) is the pasted copy, bit for bit; the free
    # generator changes it, and both change the one-pixel band and the old place alike.
    np.testing.assert_array_equal(kept[0, 3:7, 10:14], base[0, 3:7, 10:14])
    assert not np.allclose(changed[0, 3:7, 10:14], base[0, 3:7, 10:14], atol=1e-3)
    band_and_old = np.maximum(mask, target)[0, ..., 0] == 1
    band_and_old[3:7, 10:14] = False
    np.testing.assert_allclose(kept[0][band_and_old], changed[0][band_and_old], atol=1e-6)
    # Per sample, in one batch: a still object keeps its interior too (the frame's own).
    both = {
        "frame": np.concatenate([data["frame"], data["frame"]]),
        "mask": np.concatenate([mask, mask]),
        "target_mask": np.concatenate([target, mask]),
    }
    out = np.asarray(keeping(both)["frame"])
    np.testing.assert_array_equal(out[0, 3:7, 10:14], base[0, 3:7, 10:14])
    np.testing.assert_array_equal(out[1, 3:7, 3:7], data["frame"][0, 3:7, 3:7])
    assert UNetDiffGenerator.from_config(keeping.get_config()).keep_pasted == 1


def test_phase_one_generator_keeps_nothing_and_phase_two_keeps_the_configured_band():
    from fgbg_keras.config import ModelConfig
    from fgbg_keras.models import factory

    config = ModelConfig(
        image_size=16,
        unet_filters=8,
        unet_max_filters=16,
        unet_keep_pasted=2,
        unet_region_margin=3,
    )
    phase_one = factory.build_frame_generator(config, moving_masks=False)
    phase_two = factory.build_frame_generator(config, moving_masks=True)
    assert (phase_one.keep_pasted, phase_one.region_margin) == (0, 0)
    assert (phase_two.keep_pasted, phase_two.region_margin) == (2, 3)


def memory_inputs(seed=1):
    """`inputs()` with random first and previous frames and masks."""
    data, more = inputs(seed=seed), inputs(seed=seed + 1)
    data.update(
        first_frame=more["frame"],
        first_mask=more["mask"],
        previous_frame=more["frame"][::-1],
        previous_mask=more["mask"][::-1],
    )
    return data


def test_memory_inputs_reach_the_unet_and_default_to_the_current_frame_and_mask():
    generator = UNetDiffGenerator(**TINY, memory=("first", "previous"))
    data = memory_inputs()
    assert generator.unet.input_channels == 13
    bare = {key: data[key] for key in ("frame", "mask", "target_mask")}
    current = {
        **bare,
        "first_frame": bare["frame"],
        "first_mask": bare["mask"],
        "previous_frame": bare["frame"],
        "previous_mask": bare["mask"],
    }
    np.testing.assert_array_equal(generator(bare)["frame"], generator(current)["frame"])
    for key in ("first_frame", "previous_frame", "first_mask", "previous_mask"):
        other = {**current, key: data[key]}
        assert not np.allclose(generator(other)["frame"], generator(current)["frame"]), key
    # Without memory, the extra inputs are ignored.
    plain = UNetDiffGenerator(**TINY)
    np.testing.assert_array_equal(plain(bare)["frame"], plain(data)["frame"])


def test_copy_widened_starts_a_memory_generator_as_the_generator_it_came_from():
    source = UNetDiffGenerator(**TINY, name="g")
    target = UNetDiffGenerator(**TINY, memory=("previous",), name="g")
    data = memory_inputs()
    source(data), target(data)
    runs.copy_widened(source, target)
    # Equal up to float32 rounding: the convolution over the extra, zero-weighted input
    # channels sums in another order on some CPU kernels (1.5e-6 to 4e-6 apart on an AMD
    # EPYC with TensorFlow's Eigen kernels); swapping two input channels of the first
    # convolution moved this output by 1.8.
    np.testing.assert_allclose(target(data)["frame"], source(data)["frame"], atol=1e-5, rtol=0)
    wider = UNetDiffGenerator(**{**TINY, "filters": 16, "max_filters": 32}, name="g")
    wider(data)
    with pytest.raises(ValueError, match=r"down0_conv.*only more input channels"):
        runs.copy_widened(source, wider)


@pytest.mark.parametrize("memory", [("last",), ("first", "first")])
def test_rejects_unknown_or_repeated_memory(memory):
    with pytest.raises(ValueError, match="`memory` must name distinct entries"):
        UNetDiffGenerator(**TINY, memory=memory)


def moved_square(batch=2, size=16, shift=3):
    mask = np.zeros((batch, size, size, 1), "float32")
    mask[:, 4:9, 3:8] = 1.0
    return mask, np.roll(mask, shift, axis=2)


def test_copy_gate_starts_almost_shut_and_opens_to_the_drawn_frame():
    mask, target = moved_square()
    data = inputs(mask=mask, target_mask=target)
    gated = UNetDiffGenerator(**TINY, paste=True, copy_gate=True)
    drawn = UNetDiffGenerator(**TINY, paste=True)
    gated(data), drawn(data)
    assert gated.unet.input_channels == 5 + 3  # and the input frame
    drawn.reset_head()
    gated.reset_head()
    frame, union = data["frame"], np.maximum(mask, target)
    pasted = np.asarray(drawn(data)["frame"])  # the pasted frame: the drawn one after a reset
    expected = frame + GATE_START * union * (pasted - frame)
    np.testing.assert_allclose(gated(data)["frame"], expected, atol=1e-6)
    np.testing.assert_array_equal(
        np.asarray(gated(data)["frame"])[union[..., 0] == 0], frame[union[..., 0] == 0]
    )
    gate = gated.unet.get_layer("gate_conv")
    for bias, share in ((40.0, 1.0), (-40.0, 0.0)):
        gate.bias.assign([bias])
        np.testing.assert_allclose(
            gated(data)["frame"], frame + share * union * (pasted - frame), atol=1e-6
        )
    assert UNetDiffGenerator.from_config(gated.get_config()).copy_gate


def test_a_gated_generator_starts_from_an_ungated_one_behind_its_shut_gate():
    mask, target = moved_square()
    data = inputs(mask=mask, target_mask=target)
    source = UNetDiffGenerator(**TINY, paste=True, name="g")
    target_generator = UNetDiffGenerator(**TINY, paste=True, copy_gate=True, name="g")
    source(data), target_generator(data)
    runs.copy_widened(source, target_generator)
    frame, union = data["frame"], np.maximum(mask, target)
    drawn = np.asarray(source(data)["frame"])
    np.testing.assert_allclose(
        target_generator(data)["frame"],
        frame + GATE_START * union * (drawn - frame),
        atol=1e-5,
    )
    # The other way round a layer would be lost.
    with pytest.raises(ValueError, match="gate_conv"):
        runs.copy_widened(target_generator, source)


def test_under_mixed_precision_what_the_generator_copies_is_the_frame_itself():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mask, target = moved_square()
        data = inputs(mask=mask, target_mask=target)
        for generator in (
            UNetDiffGenerator(**TINY, paste=True, keep_pasted=1),
            UNetDiffGenerator(**TINY, paste=True, copy_gate=True),
        ):
            frame = np.asarray(generator(data)["frame"])
            assert frame.dtype == np.float32
            outside = np.maximum(mask, target)[..., 0] == 0
            # Not rounded to bfloat16 (up to 1/256 off on these frames).
            np.testing.assert_array_equal(frame[outside], data["frame"][outside])
    finally:
        keras.config.set_dtype_policy("float32")


def test_band_where_moved_leaves_a_still_object_as_it_is_and_redraws_only_near_the_motion():
    mask = np.zeros((1, 16, 16, 1), "float32")
    mask[:, 4:9, 2:12] = 1.0
    target = np.roll(mask, 2, axis=2)  # the masks differ in columns 2, 3, 12 and 13
    still = inputs(batch=1, mask=mask)
    moving = inputs(batch=1, mask=mask, target_mask=target)
    banded = UNetDiffGenerator(**TINY, paste=True, keep_pasted=1, band_where_moved=True)
    everywhere = UNetDiffGenerator(**TINY, paste=True, keep_pasted=1)
    banded(still)
    everywhere.set_weights(banded.get_weights())
    # Equal masks: the frame itself, where the plain band redraws the mask's edge.
    np.testing.assert_array_equal(banded(still)["frame"], still["frame"])
    assert not np.allclose(everywhere(still)["frame"], still["frame"], atol=1e-3)
    # A moved square: both redraw where the masks differ, and only the plain band redraws the
    # edge rows that the move along x leaves in place, more than a pixel from any difference.
    out, plain = np.asarray(banded(moving)["frame"]), np.asarray(everywhere(moving)["frame"])
    base = np.asarray(mask_ops.paste_foreground(moving["frame"], mask, target))
    differ = np.abs(mask - target)[0, ..., 0] > 0.5
    np.testing.assert_allclose(out[0][differ], plain[0][differ], atol=1e-6)
    np.testing.assert_array_equal(out[0, 4, 7], base[0, 4, 7])  # top edge, 4 px from a change
    assert not np.allclose(plain[0, 4, 7], base[0, 4, 7], atol=1e-3)
    assert UNetDiffGenerator.from_config(banded.get_config()).band_where_moved
