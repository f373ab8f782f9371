import numpy as np
import pytest
import tensorflow as tf

from fgbg_keras import mask_ops
from tests.harness import shifted


def pixels(rows_cols, height=12, width=12):
    """A [1, H, W, 1] mask with ones at the given (row, col) pixels."""
    mask = np.zeros((1, height, width, 1), np.float32)
    for row, col in rows_cols:
        mask[0, row, col, 0] = 1.0
    return mask


def rotation(quarter_turns):
    angle = quarter_turns * np.pi / 2
    # Rounded so that a quarter turn is exactly [[0, -1], [1, 0]].
    cos, sin = np.round(np.cos(angle), 12), np.round(np.sin(angle), 12)
    return np.array([[[cos, -sin, 0.0], [sin, cos, 0.0]]], np.float32)


def test_whole_pixel_shifts_are_exact_and_zero_filled():
    rng = np.random.default_rng(0)
    masks = (rng.uniform(size=(4, 10, 14, 1)) > 0.6).astype(np.float32)
    offsets = [(2, 0), (-3, 4), (9, -7), (-14, 0)]  # the last two leave partly / wholly
    controls = mask_ops.translation_controls(np.array(offsets, np.float32))
    warped = np.asarray(mask_ops.warp_masks(masks, controls))
    expected = np.stack([shifted(m, dx, dy) for m, (dx, dy) in zip(masks, offsets)])
    assert warped.dtype == np.float32
    np.testing.assert_array_equal(warped, expected)
    assert 0 < warped[2].sum() < masks[2].sum() and warped[3].sum() == 0


def test_identity_leaves_masks_unchanged_and_empty_masks_stay_empty():
    rng = np.random.default_rng(1)
    masks = (rng.uniform(size=(3, 9, 11, 1)) > 0.5).astype(np.float32)
    identity = mask_ops.translation_controls(np.zeros((3, 2), np.float32))
    np.testing.assert_array_equal(mask_ops.warp_masks(masks, identity), masks)
    empty = np.zeros((2, 9, 11, 1), np.float32)
    controls = np.concatenate([rotation(1), 1.5 * rotation(0.5)])
    controls[:, :, 2] = [3.0, -2.0]
    np.testing.assert_array_equal(mask_ops.warp_masks(empty, controls), empty)


def test_quarter_turn_turns_a_rectangle_into_its_transpose_in_place():
    mask = np.zeros((1, 15, 15, 1), np.float32)
    mask[0, 6:9, 2:9, 0] = 1.0  # 3 rows x 7 columns, centroid (x, y) = (5, 7)
    expected = np.zeros_like(mask)
    expected[0, 4:11, 4:7, 0] = 1.0  # 7 rows x 3 columns about the same centroid
    np.testing.assert_array_equal(mask_ops.warp_masks(mask, rotation(1)), expected)


def test_quarter_turn_direction_on_an_arrow():
    # Offsets from the centroid (6, 6): (0, 0), (2, 0), (-1, 1), (-1, -1): an arrow pointing
    # right (+x). L = [[0, -1], [1, 0]] takes (x, y) to (-y, x): the arrow points down (+y).
    arrow = pixels([(6, 6), (6, 8), (7, 5), (5, 5)])
    turned = pixels([(6, 6), (8, 6), (5, 5), (5, 7)])
    np.testing.assert_array_equal(mask_ops.warp_masks(arrow, rotation(1)), turned)


def test_scaling_grows_the_object_about_its_centroid():
    mask = pixels([(r, c) for r in range(5, 8) for c in range(3, 6)], 14, 14)  # centre (4, 6)
    grow = np.array([[[2.0, 0.0, 1.0], [0.0, 2.0, 0.0]]], np.float32)  # doubled, moved 1 px right
    expected = pixels([(r, c) for r in range(4, 9) for c in range(3, 8)], 14, 14)
    np.testing.assert_array_equal(mask_ops.warp_masks(mask, grow), expected)
    collapse = np.zeros((1, 2, 3), np.float32)
    assert np.asarray(mask_ops.warp_masks(mask, collapse)).sum() == 0


def test_centroids_of_hand_made_masks():
    masks = np.zeros((3, 6, 9, 1), np.float32)
    masks[0, 1, 2] = masks[0, 3, 6] = 1.0  # (x, y) = (4, 2)
    masks[1, 5, 0] = 0.7
    masks[1, 0, 8] = 0.4  # below the threshold: ignored
    centroids, valid = mask_ops.mask_centroids(masks)
    np.testing.assert_allclose(centroids, [[4.0, 2.0], [0.0, 5.0], [4.0, 2.5]])
    np.testing.assert_array_equal(valid, [True, True, False])


def test_binarize_and_translation_controls():
    np.testing.assert_array_equal(mask_ops.binarize(np.array([0.2, 0.5, 0.51, 1.0])), [0, 0, 1, 1])
    controls = mask_ops.translation_controls(np.array([[[2.0, -1.5]]]))
    np.testing.assert_array_equal(controls, [[[[1, 0, 2.0], [0, 1, -1.5]]]])


def test_fit_translations_recovers_the_shift_and_is_zero_for_empty_masks():
    mask = pixels([(r, c) for r in range(3, 6) for c in range(2, 7)] + [(6, 2)], 16, 16)
    masks = np.concatenate([mask, mask, np.zeros_like(mask)])
    moved = np.concatenate([shifted(mask, 3, -2), np.zeros_like(mask), mask])
    np.testing.assert_allclose(
        mask_ops.fit_translations(masks, moved), [[3.0, -2.0], [0.0, 0.0], [0.0, 0.0]]
    )


def test_shift_images_by_whole_pixels_is_exact():
    rng = np.random.default_rng(3)
    images = rng.uniform(-1, 1, (2, 9, 12, 3)).astype(np.float32)
    moved = np.asarray(mask_ops.shift_images(images, [[3, -2], [-1, 0]]))
    np.testing.assert_array_equal(moved[0], shifted(images[0], 3, -2))
    np.testing.assert_array_equal(moved[1], shifted(images[1], -1, 0))


def test_fill_from_surroundings_keeps_known_pixels_and_fills_holes_smoothly():
    rng = np.random.default_rng(4)
    images = rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    known = np.ones((1, 16, 16, 1), np.float32)
    known[0, 4:11, 3:9] = 0.0
    filled = np.asarray(mask_ops.fill_from_surroundings(images, known))
    np.testing.assert_array_equal(filled[known[..., 0] == 1], images[known[..., 0] == 1])
    hole = filled[0, 4:11, 3:9]
    assert hole.min() >= images.min() and hole.max() <= images.max()
    # One colour around a hole fills it with that colour, whatever was inside.
    flat = np.full((2, 8, 12, 3), 0.25, np.float32)
    flat[:, 2:6, 3:9] = -1.0
    known = np.ones((2, 8, 12, 1), np.float32)
    known[:, 2:6, 3:9] = 0.0
    np.testing.assert_allclose(mask_ops.fill_from_surroundings(flat, known), 0.25, atol=1e-6)


def test_paste_foreground_moves_the_object_and_fills_where_it_was():
    frame = np.full((1, 12, 12, 3), 0.25, np.float32)  # a flat background
    frame[0, 2:5, 2:5] = [0.5, -0.5, 1.0]  # a 3x3 object, centroid (3, 3)
    mask = np.zeros((1, 12, 12, 1), np.float32)
    mask[0, 2:5, 2:5] = 1.0
    # The target mask is 2 columns right and 1 row down: the object is copied there, and the
    # pixels it leaves take the background's colour.
    target = shifted(mask, 2, 1)
    pasted = np.asarray(mask_ops.paste_foreground(frame, mask, target))
    expected = np.full_like(frame, 0.25)
    expected[0, 3:6, 4:7] = [0.5, -0.5, 1.0]
    np.testing.assert_allclose(pasted, expected, atol=1e-6)
    # An unchanged mask leaves the frame as it is, a soft one (Phase I's) too, and an empty one.
    np.testing.assert_array_equal(mask_ops.paste_foreground(frame, mask, mask), frame)
    soft = np.random.default_rng(5).uniform(size=mask.shape).astype(np.float32)
    np.testing.assert_allclose(mask_ops.paste_foreground(frame, soft, soft), frame, atol=1e-6)
    empty = np.zeros_like(mask)
    np.testing.assert_array_equal(mask_ops.paste_foreground(frame, empty, empty), frame)


def test_pasting_into_the_moved_mask_ignores_a_change_of_shape_alone():
    rng = np.random.default_rng(2)
    frame = rng.uniform(-1, 1, (1, 12, 12, 3)).astype(np.float32)
    mask = np.zeros((1, 12, 12, 1), np.float32)
    mask[0, 3:8, 3:8] = 1.0
    # A target of another shape about the same centroid (a flickering mask of a still object):
    # the translation is zero, so "moved" leaves the frame as it is where "target" fills in.
    thinner = np.zeros_like(mask)
    thinner[0, 3:8, 4:7] = 1.0
    np.testing.assert_array_equal(mask_ops.paste_foreground(frame, mask, thinner, "moved"), frame)
    assert not np.allclose(mask_ops.paste_foreground(frame, mask, thinner, "target"), frame)
    # A true move by (2, 1) pastes the content into the moved mask and fills where it left.
    target = shifted(thinner, 2, 1)  # the centroid moves by (2, 1), the shape changes
    pasted = np.asarray(mask_ops.paste_foreground(frame, mask, target, "moved"))
    np.testing.assert_array_equal(pasted[0, 4:9, 5:10], frame[0, 3:8, 3:8])
    left = (mask - shifted(mask, 2, 1))[0, ..., 0] > 0
    assert not np.allclose(pasted[0][left], frame[0][left])
    outside = np.maximum(mask, shifted(mask, 2, 1))[0, ..., 0] == 0
    np.testing.assert_array_equal(pasted[0][outside], frame[0][outside])
    with pytest.raises(ValueError, match="`region` must be one of"):
        mask_ops.paste_foreground(frame, mask, target, "nearest")


def test_rescale_points_keeps_a_shapes_centroid_through_a_resize():
    # A 32x32 block of a 64x64 mask is a 8x8 block of its 16x16 resize, pixel for pixel.
    mask = np.zeros((1, 64, 64, 1), np.float32)
    mask[0, 16:48, 8:40] = 1.0
    small = np.zeros((1, 16, 16, 1), np.float32)
    small[0, 4:12, 2:10] = 1.0
    big_centroid, _ = mask_ops.mask_centroids(mask)
    small_centroid, _ = mask_ops.mask_centroids(small)
    moved = mask_ops.rescale_points(np.asarray(big_centroid), (64, 64), (16, 16))
    np.testing.assert_allclose(moved, small_centroid, atol=1e-6)
    np.testing.assert_allclose(mask_ops.resize_scale((64, 32), (16, 16)), [0.5, 0.25])


def test_clip_translations_fit_each_step_of_each_clip():
    clip = np.concatenate([pixels([(2, 2)]), pixels([(2, 4)]), pixels([(5, 4)])])
    offsets = np.asarray(mask_ops.clip_translations(np.stack([clip, clip[::-1]])))
    np.testing.assert_allclose(offsets, [[[2, 0], [0, 3]], [[0, -3], [-2, 0]]])


def test_erode_masks_peels_whole_pixels_but_not_along_the_border():
    mask = np.zeros((1, 8, 10, 1), np.float32)
    mask[0, 1:6, 2:9] = 1.0  # 5 x 7 block
    mask[0, 5:8, 0:2] = 1.0  # a 3 x 2 block touching the left and bottom borders
    expected = np.zeros_like(mask)
    expected[0, 2:5, 3:8] = 1.0
    expected[0, 6:8, 0:1] = 1.0  # the border counts as inside: only the inner side peels
    np.testing.assert_array_equal(mask_ops.erode_masks(mask, 1), expected)
    np.testing.assert_array_equal(mask_ops.erode_masks(mask, 0), mask)
    # Two pixels peel the 5-row block to one row; a soft mask is binarised first.
    twice = np.asarray(mask_ops.erode_masks(mask * 0.9, 2))
    assert twice[0, :, 2:9].sum() == 3 and twice[0, 3, 4:7].all()


def test_dilate_masks_grows_by_whole_pixels_up_to_the_border():
    mask = np.zeros((1, 8, 10, 1), np.float32)
    mask[0, 3:5, 4:6] = 0.9  # a soft 2 x 2 block, binarised first
    mask[0, 7, 0] = 1.0  # a corner pixel
    expected = np.zeros_like(mask)
    expected[0, 2:6, 3:7] = 1.0
    expected[0, 6:8, 0:2] = 1.0  # cut by the frame's border
    np.testing.assert_array_equal(mask_ops.dilate_masks(mask, 1), expected)
    np.testing.assert_array_equal(mask_ops.dilate_masks(mask, 0), mask > 0.5)


@pytest.mark.parametrize("pixels", [8, 9, 30])
def test_a_dilation_as_wide_as_the_frame_fills_it_where_the_mask_has_a_pixel(pixels):
    # From 9 pixels on (the frame's longer side less one) the shortcut replaces the pooling.
    masks = np.zeros((3, 8, 10, 1), np.float32)
    masks[0, 0, 0] = masks[1, 5, 9] = 1.0  # two corners; the third mask is empty
    pooled = tf.nn.max_pool2d(masks, 2 * pixels + 1, 1, "SAME").numpy()
    dilated = np.asarray(mask_ops.dilate_masks(masks, pixels))
    np.testing.assert_array_equal(dilated, pooled)
    assert dilated.shape == masks.shape and dilated[2].max() == 0.0
    assert dilated[0].min() == (1.0 if pixels >= 9 else 0.0)


def test_shift_whole_pixels_equals_the_bilinear_shift_for_whole_offsets():
    images = np.random.default_rng(3).uniform(-1, 1, (3, 7, 9, 2)).astype(np.float32)
    offsets = np.array([[2, -1], [-9, 0], [0, 3]], np.float32)
    np.testing.assert_array_equal(
        mask_ops.shift_whole_pixels(images, offsets), mask_ops.shift_images(images, offsets)
    )
    # Fractions round to the nearest whole pixel: 2.4 -> 2, -8.6 -> -9, 2.6 -> 3.
    np.testing.assert_array_equal(
        mask_ops.shift_whole_pixels(images, offsets + [[0.4, -0.4]]),
        mask_ops.shift_images(images, offsets),
    )


def test_fit_offset_map_recovers_a_mixing_matrix_and_refuses_one_axis():
    rng = np.random.default_rng(0)
    offsets = rng.normal(size=(200, 2))
    matrix = np.array([[1.1, 0.2], [-0.1, 0.75]])
    steps = offsets @ matrix + rng.normal(scale=0.01, size=(200, 2))
    np.testing.assert_allclose(mask_ops.fit_offset_map(offsets, steps), matrix, atol=0.01)
    along_x = np.stack([offsets[:, 0], np.zeros(200)], axis=1)
    with pytest.raises(ValueError, match="span both axes"):
        mask_ops.fit_offset_map(along_x, steps)
    with pytest.raises(ValueError, match="must be equal"):
        mask_ops.fit_offset_map(offsets, steps[:10])
