import numpy as np
import tensorflow as tf

from fgbg_keras import metrics


def test_mask_iou_on_hand_made_masks():
    predicted = np.zeros((3, 2, 2, 1), "float32")
    target = np.zeros((3, 2, 2, 1), "float32")
    # Sample 0: predicted {a, b} (b at 0.6 > 0.5), target {b, c}: IoU 1/3.
    predicted[0, 0, 0], predicted[0, 0, 1] = 0.9, 0.6
    target[0, 0, 1], target[0, 1, 0] = 1, 1
    # Sample 1: 0.5 is not above the threshold, so nothing is predicted; target {a}: IoU 0.
    predicted[1, 0, 0] = 0.5
    target[1, 0, 0] = 1
    # Sample 2: both empty: a perfect match.
    np.testing.assert_allclose(metrics.mask_iou(predicted, target), [1 / 3, 0.0, 1.0], rtol=1e-6)


def test_psnr_and_ssim_match_tensorflow_on_unit_range():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    b = np.clip(a + rng.normal(0, 0.1, a.shape), -1, 1).astype("float32")
    np.testing.assert_allclose(
        metrics.psnr(a, b), tf.image.psnr((a + 1) / 2, (b + 1) / 2, max_val=1.0), rtol=1e-5
    )
    np.testing.assert_allclose(
        metrics.ssim(a, b), tf.image.ssim((a + 1) / 2, (b + 1) / 2, max_val=1.0), rtol=1e-5
    )
    # A frame off by 0.2 everywhere on [-1, 1] is off by 0.1 on [0, 1]: PSNR 20 dB.
    np.testing.assert_allclose(metrics.psnr(a * 0, a * 0 + 0.2), [20.0, 20.0], rtol=1e-4)


def test_control_error_on_hand_made_masks():
    masks = np.zeros((3, 8, 8, 1), np.float32)
    masks[0, 2:4, 1:3] = 1.0  # centroid (x, y) = (1.5, 2.5)
    masks[1, 6, 6] = 1.0  # centroid (6, 6)
    truth = np.array([[4.5, 6.5], [6.0, 6.0], [1.0, 1.0]], np.float32)
    error, found = metrics.control_error(masks, truth)
    # (3, 4) from the truth: 5 px; on it: 0; the empty mask found nothing.
    np.testing.assert_allclose(np.asarray(error)[:2], [5.0, 0.0])
    assert np.isnan(np.asarray(error)[2])
    np.testing.assert_array_equal(found, [True, True, False])
