"""Golden-value tests of the Phase I losses on tiny hand-made inputs.

Each expected value is worked out by hand in the comment above it.
"""

import numpy as np
import pytest
import tensorflow as tf

from fgbg_keras import losses

# One 2x2 sample. The mask [[1, 0], [0.5, 0]] keeps, as background (1 - m), [[0, 1], [0.5, 1]].
MASK = np.array([[1.0, 0.0], [0.5, 0.0]], "float32").reshape(1, 2, 2, 1)
FRAME = np.zeros((1, 2, 2, 3), "float32")
NEXT_FRAME = np.array(
    [
        [[0.5, 0.5, 0.5], [0.2, -0.4, 0.0]],
        [[1.0, 1.0, 1.0], [-0.3, 0.3, 0.6]],
    ],
    "float32",
).reshape(1, 2, 2, 3)


def _value(x):
    x = np.asarray(x)
    assert x.shape == () and x.dtype == np.float32
    return float(x)


def test_reconstruction_loss_is_mean_absolute_error():
    # |NEXT_FRAME| sums per pixel to 1.5 + 0.6 + 3.0 + 1.2 = 6.3 over 12 elements: 0.525.
    assert _value(losses.reconstruction_loss(FRAME, NEXT_FRAME)) == pytest.approx(0.525)


def test_l2_reconstruction_and_region_terms_are_squared_errors_that_add_up():
    # NEXT_FRAME squared, per pixel: 0.75, 0.2, 3.0, 0.54 (sum 4.49) over 12 elements.
    assert _value(losses.reconstruction_loss(FRAME, NEXT_FRAME, "l2")) == pytest.approx(4.49 / 12)
    # Inside MASK: 1 * 0.75 + 0.5 * 3.0 = 2.25; outside: 0.2 + 0.5 * 3.0 + 0.54 = 2.24.
    foreground = losses.masked_pixel_error(FRAME, NEXT_FRAME, MASK, "l2")
    background = losses.masked_pixel_error(FRAME, NEXT_FRAME, 1.0 - MASK, "l2")
    assert _value(foreground) == pytest.approx(2.25 / 12)
    assert _value(background) == pytest.approx(2.24 / 12)
    with pytest.raises(ValueError, match="`norm` must be one of"):
        losses.pixel_error(FRAME, NEXT_FRAME, "l0")


def test_log_l2_weighs_each_frame_by_the_log_of_its_own_squared_error():
    frames = np.zeros((2, 2, 2, 3), np.float32)
    targets = np.stack([np.full((2, 2, 3), 0.1), np.full((2, 2, 3), 1.0)]).astype(np.float32)
    expected = np.mean(np.log([0.01 + losses.LOG_L2_FLOOR, 1.0 + losses.LOG_L2_FLOOR]))
    assert _value(losses.reconstruction_loss(frames, targets, "log_l2")) == pytest.approx(expected)
    # The region terms stay squared errors.
    mask = np.ones((2, 2, 2, 1), np.float32)
    region = losses.masked_pixel_error(frames, targets, mask, "log_l2")
    assert _value(region) == pytest.approx(np.mean(np.square(targets)))
    # The gradient of a frame is its squared error's divided by that error: the better frame
    # pulls harder here, where under l2 the worse one pulls 10 times harder.
    frames = tf.Variable(frames)
    with tf.GradientTape() as tape:
        loss = losses.reconstruction_loss(frames, targets, "log_l2")
    gradient = np.abs(tape.gradient(loss, frames).numpy()).sum(axis=(1, 2, 3))
    assert gradient[0] > gradient[1]


def test_background_loss_weights_each_pixel_by_one_minus_mask():
    # (1 - m) * |f_t - f_{t+1}| per pixel, summed over channels:
    # 0 * 1.5 = 0, 1 * 0.6 = 0.6, 0.5 * 3.0 = 1.5, 1 * 1.2 = 1.2; total 3.3 over 12 elements.
    assert _value(losses.background_loss(MASK, FRAME, NEXT_FRAME)) == pytest.approx(0.275)


def test_background_loss_is_zero_when_mask_covers_the_change():
    # Only pixel (0, 0), under a mask of 1, changes.
    next_frame = FRAME.copy()
    next_frame[0, 0, 0] = 0.9
    assert _value(losses.background_loss(MASK, FRAME, next_frame)) == 0.0


# Two samples: the first mask is larger than its changed area, the second smaller.
# Sample 0: mean(m) = (1 + 0 + 0.5 + 0) / 4 = 0.375, mean(d) = 1 / 4 = 0.25, s = 0.125.
# Sample 1: mean(m) = 0.5 / 4 = 0.125, mean(d) = 2 / 4 = 0.5, s = -0.375.
SPARSITY_MASK = np.array([[[1.0, 0.0], [0.5, 0.0]], [[0.0, 0.0], [0.5, 0.0]]], "float32")[..., None]
SPARSITY_DIFF = np.array([[[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]], "float32")[..., None]


def test_sparsity_loss_one_sided_clips_negative_excess():
    # (max(0.125, 0) + max(-0.375, 0)) / 2 = 0.0625.
    loss = losses.sparsity_loss(SPARSITY_MASK, SPARSITY_DIFF)
    assert _value(loss) == pytest.approx(0.0625)


def test_sparsity_loss_two_sided():
    # (|0.125| + |-0.375|) / 2 = 0.25.
    loss = losses.sparsity_loss(SPARSITY_MASK, SPARSITY_DIFF, two_sided=True)
    assert _value(loss) == pytest.approx(0.25)


def test_sparsity_loss_is_per_sample_not_pooled():
    # Pooled over the batch, 0.25 - 0.375 < 0 would give 0; per sample it does not.
    assert _value(losses.sparsity_loss(SPARSITY_MASK, SPARSITY_DIFF)) > 0.0


def test_binarization_loss():
    # min(m, 1 - m) of [0, 0.25, 0.5, 1] is [0, 0.25, 0.5, 0]; mean 0.75 / 4 = 0.1875.
    mask = np.array([0.0, 0.25, 0.5, 1.0], "float32").reshape(1, 2, 2, 1)
    assert _value(losses.binarization_loss(mask)) == pytest.approx(0.1875)


# z - z_q = [1 - 0, 2 - 4] = [1, -2]; mean of squares (1 + 4) / 2 = 2.5.
LATENTS = np.array([[1.0, 2.0]], "float32")
QUANTIZED = np.array([[0.0, 4.0]], "float32")


def test_codebook_and_commitment_values():
    assert _value(losses.codebook_loss(LATENTS, QUANTIZED)) == pytest.approx(2.5)
    # beta = 0.25 weights the commitment term: 0.25 * 2.5.
    assert _value(losses.commitment_loss(LATENTS, QUANTIZED)) == pytest.approx(0.625)
    assert _value(losses.commitment_loss(LATENTS, QUANTIZED, beta=1.0)) == pytest.approx(2.5)


def _gradients(loss_fn):
    latents = tf.Variable(LATENTS)
    quantized = tf.Variable(QUANTIZED)
    with tf.GradientTape() as tape:
        loss = loss_fn(latents, quantized)
    return tape.gradient(loss, [latents, quantized])


def test_codebook_loss_gradient_reaches_only_the_codebook():
    # d/dz_q mean((sg(z) - z_q)^2) = -2 (z - z_q) / 2 = [-1, 2].
    to_latents, to_quantized = _gradients(losses.codebook_loss)
    assert to_latents is None
    np.testing.assert_allclose(to_quantized.numpy(), [[-1.0, 2.0]])


def test_commitment_loss_gradient_reaches_only_the_encoder():
    # d/dz 0.25 * mean((z - sg(z_q))^2) = 0.25 * 2 (z - z_q) / 2 = [0.25, -0.5].
    to_latents, to_quantized = _gradients(losses.commitment_loss)
    assert to_quantized is None
    np.testing.assert_allclose(to_latents.numpy(), [[0.25, -0.5]])


def test_commitment_loss_rejects_negative_beta():
    with pytest.raises(ValueError, match="beta=-1"):
        losses.commitment_loss(LATENTS, QUANTIZED, beta=-1)


CURRENT = np.array([[1.0, 0.0], [0.0, 0.2]], "float32").reshape(1, 2, 2, 1)
NEXT = np.array([[0.0, 1.0], [0.0, 0.5]], "float32").reshape(1, 2, 2, 1)


@pytest.mark.parametrize(
    "mode, expected",
    [("next", NEXT), ("current", CURRENT), ("union", [[[[1.0], [1.0]], [[0.0], [0.5]]]])],
)
def test_combine_masks(mode, expected):
    np.testing.assert_array_equal(np.asarray(losses.combine_masks(CURRENT, NEXT, mode)), expected)


def test_combine_masks_rejects_unknown_mode():
    assert losses.BG_MASK_MODES == ("next", "current", "union")
    with pytest.raises(ValueError, match="mode='both'"):
        losses.combine_masks(CURRENT, NEXT, "both")


# Four fixed logits per player, as in tensorflow/gan's losses_impl_test.
REAL_LOGITS = np.array([3.0, 0.5, -1.0, 0.0], "float32")
FAKE_LOGITS = np.array([-2.0, 0.5, 1.5, 1.0], "float32")
# softplus(x) = log(1 + e^x):
# softplus(-real) = [0.048587, 0.474077, 1.313262, 0.693147], mean 0.632268.
# softplus(fake) = [0.126928, 0.974077, 1.701413, 1.313262], mean 1.028920.
# softplus(-fake) = softplus(fake) - fake, so its mean is 1.028920 - mean(fake) = 1.028920 - 0.25.
GAN_GOLDEN = {
    # 0.5 * (0.632268 + 1.028920).
    ("discriminator", "nonsaturating"): 0.830594,
    # relu(1 - real) = [0, 0.5, 2, 1], mean 0.875; relu(1 + fake) = [0, 1.5, 2.5, 2], mean 1.5;
    # 0.5 * (0.875 + 1.5).
    ("discriminator", "hinge"): 1.1875,
    ("generator", "nonsaturating"): 0.778920,
    # -mean(fake) = -(1.0 / 4).
    ("generator", "hinge"): -0.25,
}


def _gan_loss(player, mode, shape):
    real = REAL_LOGITS.reshape(shape)
    fake = FAKE_LOGITS.reshape(shape)
    if player == "discriminator":
        return losses.discriminator_loss(real, fake, mode)
    return losses.generator_adversarial_loss(fake, mode)


@pytest.mark.parametrize("player, mode", sorted(GAN_GOLDEN))
@pytest.mark.parametrize("shape", [(4,), (1, 2, 2, 1)])
def test_gan_losses_golden_values(player, mode, shape):
    # The same four values as one batch of logits or as a [1, 2, 2, 1] map of patch logits.
    loss = _gan_loss(player, mode, shape)
    assert _value(loss) == pytest.approx(GAN_GOLDEN[(player, mode)], abs=1e-6)


def test_nonsaturating_loss_is_stable_for_large_logits():
    # A confident, correct discriminator: both terms are softplus(-100) ~ e^-100.
    real = np.full((2,), 100.0, "float32")
    fake = np.full((2,), -100.0, "float32")
    assert _value(losses.discriminator_loss(real, fake, "nonsaturating")) == pytest.approx(0.0)
    # The generator then has log(1 + e^100) ~ 100, not inf.
    assert _value(losses.generator_adversarial_loss(fake, "nonsaturating")) == pytest.approx(100.0)


def test_gan_losses_reject_unknown_mode():
    assert losses.GAN_LOSSES == ("nonsaturating", "hinge")
    with pytest.raises(ValueError, match="mode='wasserstein'"):
        losses.discriminator_loss(REAL_LOGITS, FAKE_LOGITS, "wasserstein")
    with pytest.raises(ValueError, match="mode='wasserstein'"):
        losses.generator_adversarial_loss(FAKE_LOGITS, "wasserstein")


def test_adaptive_gan_weight_is_the_ratio_of_gradient_norms():
    # ||[3, 4]|| = 5, ||[0, 1]|| = 1: 5 / (1 + 1e-4).
    rec = np.array([3.0, 4.0], "float32")
    gan = np.array([0.0, 1.0], "float32")
    assert _value(losses.adaptive_gan_weight(rec, gan)) == pytest.approx(5.0 / 1.0001)
    # A list of tensors uses their global norm: ||[3]|| and ||[4]|| together are 5.
    split = [rec[:1], rec[1:]]
    assert _value(losses.adaptive_gan_weight(split, gan)) == pytest.approx(5.0 / 1.0001)


def test_adaptive_gan_weight_is_clipped():
    # A zero GAN gradient gives 5 / 1e-4 = 5e4, clipped to max_weight.
    rec = np.array([3.0, 4.0], "float32")
    gan = np.zeros(2, "float32")
    assert _value(losses.adaptive_gan_weight(rec, gan)) == pytest.approx(1e4)
    assert _value(losses.adaptive_gan_weight(rec, gan, max_weight=10.0)) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="max_weight=-1"):
        losses.adaptive_gan_weight(rec, gan, max_weight=-1)


def test_adaptive_gan_weight_passes_no_gradient():
    rec = tf.Variable([3.0, 4.0])
    gan = tf.Variable([0.0, 1.0])
    with tf.GradientTape() as tape:
        weight = losses.adaptive_gan_weight(rec, gan)
    assert tape.gradient(weight, [rec, gan]) == [None, None]


def test_masked_pixel_error_splits_the_reconstruction_loss():
    # m * |f_t - f_{t+1}| per pixel, summed over channels:
    # 1 * 1.5 = 1.5, 0 * 0.6 = 0, 0.5 * 3.0 = 1.5, 0 * 1.2 = 0; total 3.0 over 12 elements.
    foreground = losses.masked_pixel_error(FRAME, NEXT_FRAME, MASK)
    assert _value(foreground) == pytest.approx(0.25)
    # With 1 - m it is L_bg on a zero frame (0.275), and the two add up to the L1 (0.525).
    background = losses.masked_pixel_error(FRAME, NEXT_FRAME, 1.0 - MASK)
    assert _value(background) == pytest.approx(0.275)
    assert _value(foreground) + _value(background) == pytest.approx(0.525)
