import keras
import numpy as np
import pytest
import tensorflow as tf

from fgbg_keras.models.patchgan import PatchDiscriminator, local_crops, mask_boxes
from tests.harness import check_layer

TINY = {"ndf": 4}


@pytest.mark.parametrize("size, out", [((32, 32), (2, 2)), ((64, 48), (6, 4)), ((24, 40), (1, 3))])
@pytest.mark.parametrize("norm, num_weights", [("instance", 13), ("none", 10)])
def test_output_size_is_a_eighth_minus_two(size, out, norm, num_weights):
    # conv0 kernel + bias (2), conv1-3 kernel + norm gamma/beta (3 each) or kernel + bias (2
    # each), logits kernel + bias (2).
    images = np.random.default_rng(0).uniform(-1, 1, (2, *size, 3)).astype("float32")
    logits = check_layer(
        PatchDiscriminator,
        {**TINY, "norm": norm},
        images,
        (2, *out, 1),
        expected_num_trainable_weights=num_weights,
        expected_num_non_trainable_weights=0,
    )
    assert np.asarray(logits).dtype == np.float32


def test_receptive_field_is_70_pixels():
    # Instance norm couples every pixel of a map to every output through its mean and variance,
    # so the local receptive field is measured without it. Positive constant kernels and zero
    # biases make every path from the window to the logit add a positive amount, so the gradient
    # is nonzero exactly on the receptive field.
    model = PatchDiscriminator(ndf=4, norm="none")
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.kernel.assign(np.full(layer.kernel.shape, 0.01, "float32"))
            layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
    images = tf.Variable(tf.ones((1, 256, 256, 3)))
    with tf.GradientTape() as tape:
        logits = model(images)
        centre = logits[0, 15, 15, 0]
    assert tuple(logits.shape) == (1, 30, 30, 1)
    grad = np.abs(tape.gradient(centre, images).numpy()[0]).sum(axis=-1)
    rows = np.flatnonzero(grad.sum(axis=1))
    cols = np.flatnonzero(grad.sum(axis=0))
    assert rows[-1] - rows[0] + 1 == 70 and len(rows) == 70
    assert cols[-1] - cols[0] + 1 == 70 and len(cols) == 70
    # Logit (i, j) sees input rows 8i - 23 .. 8i + 46: stride 8, and the padding of 1 adds up to
    # 1 + 2 + 4 + 8 + 8 = 23 input pixels on the left.
    assert rows[0] == 8 * 15 - 23 and cols[0] == 8 * 15 - 23
    assert np.count_nonzero(grad) == 70 * 70


def test_conditioned_discriminator_takes_the_pair():
    rng = np.random.default_rng(1)
    frame = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    other = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    model = PatchDiscriminator(input_channels=6, **TINY)
    logits = model(keras.ops.concatenate([frame, other], axis=-1))
    assert tuple(logits.shape) == (2, 2, 2, 1)
    with pytest.raises(ValueError):
        model(frame)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"ndf": 0}, "ndf"), ({"input_channels": 0}, "input_channels"), ({"norm": "batch"}, "norm")],
)
def test_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        PatchDiscriminator(**kwargs)


def _box_mask():
    # An 8x16 mask; sample 0 has foreground rows 2-3 and columns 4-9, sample 1 none.
    masks = np.zeros((2, 8, 16, 1), "float32")
    masks[0, 2:4, 4:10] = 1.0
    # Exactly 0.5 is background.
    masks[0, 6, 14] = 0.5
    return masks


def test_mask_boxes_golden_values():
    boxes = np.asarray(mask_boxes(_box_mask(), margin=0.1))
    assert boxes.shape == (2, 4) and boxes.dtype == np.float32
    # Edges: rows 2/8 .. 4/8 = [0.25, 0.5], columns 4/16 .. 10/16 = [0.25, 0.625].
    # Margin 0.1 of the extents 0.25 and 0.375: 0.025 and 0.0375 on each side.
    np.testing.assert_allclose(boxes[0], [0.225, 0.2125, 0.525, 0.6625], atol=1e-6)
    # No foreground: the whole frame.
    np.testing.assert_array_equal(boxes[1], [0.0, 0.0, 1.0, 1.0])


def test_mask_boxes_single_pixel_covers_its_edges_and_clips():
    masks = np.zeros((2, 8, 16, 1), "float32")
    masks[0, 3, 5] = 1.0
    masks[1, 0, 15] = 0.9
    boxes = np.asarray(mask_boxes(masks, margin=0.0))
    np.testing.assert_allclose(boxes[0], [3 / 8, 5 / 16, 4 / 8, 6 / 16], atol=1e-7)
    # A corner pixel grown by its own size on each side is clipped at the frame's edges.
    boxes = np.asarray(mask_boxes(masks, margin=1.0))
    np.testing.assert_allclose(boxes[1], [0.0, 14 / 16, 2 / 8, 1.0], atol=1e-7)


def test_mask_boxes_rejects_negative_margin():
    with pytest.raises(ValueError, match="margin=-0.1"):
        mask_boxes(_box_mask(), margin=-0.1)


def test_local_crops_of_the_whole_frame_at_full_size_is_the_image():
    images = np.random.default_rng(2).uniform(-1, 1, (1, 8, 8, 3)).astype("float32")
    empty = np.zeros((1, 8, 8, 1), "float32")
    np.testing.assert_allclose(np.asarray(local_crops(images, empty, 8)), images, atol=1e-5)


def test_local_crops_halving_averages_two_by_two_blocks():
    # Half-pixel sampling at half size lands on the corner shared by each 2x2 block.
    images = np.random.default_rng(3).uniform(-1, 1, (1, 8, 8, 3)).astype("float32")
    empty = np.zeros((1, 8, 8, 1), "float32")
    expected = images.reshape(1, 4, 2, 4, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(np.asarray(local_crops(images, empty, 4)), expected, atol=1e-5)


def test_local_crops_of_a_constant_region_is_that_colour():
    # A colour block over rows 4-27 and columns 8-23; the mask (rows 10-19, columns 12-17) and its
    # margin lie inside it with a pixel to spare, so the bilinear samples see only the colour.
    colour = np.array([0.25, -0.5, 0.75], "float32")
    images = np.random.default_rng(4).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    images[0, 4:28, 8:24] = colour
    masks = np.zeros((2, 32, 32, 1), "float32")
    masks[0, 10:20, 12:18] = 1.0
    masks[1, 0:4, 0:4] = 1.0
    crops = np.asarray(local_crops(images, masks, 16, margin=0.1))
    assert crops.shape == (2, 16, 16, 3) and crops.dtype == np.float32
    np.testing.assert_allclose(crops[0], np.broadcast_to(colour, (16, 16, 3)), atol=1e-6)
    # Sample 1 is cropped around its own box, not sample 0's.
    assert not np.allclose(crops[1], colour)
