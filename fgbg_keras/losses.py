"""Phase I and Phase II losses as small pure functions on `keras.ops` tensors.

Frames are float in [-1, 1] with shape [B, H, W, 3]; masks and change maps are [B, H, W, 1] in
[0, 1]. Each function returns a scalar. The phase models compose them with their weights.

Reference: arXiv 2111.12747 (the draft's eqs. 4-9) and docs/method.md.
"""

import dataclasses

import keras
from keras import ops

from fgbg_common.options import Options, option

# Which mask cuts the background for L_bg: the draft's M(f_{t+1}), the reference's M(f_t), or both.
BG_MASK_MODES = ("next", "current", "union")


def _mean(x):
    return ops.mean(ops.cast(x, "float32"))


# The distances of Phase II's pixel terms (`--pixel_loss`).
PIXEL_LOSSES = ("l1", "l2", "log_l2")
# Added to each frame's mean squared error before its log (`"log_l2"`): on frames in [-1, 1], the
# error of a 46 dB frame, so that a frame already that good stops pulling harder.
LOG_L2_FLOOR = 1e-4


def pixel_error(prediction, target, norm="l1"):
    """Elementwise `|prediction - target|` (`"l1"`) or its square (`"l2"`, and the region terms
    of `"log_l2"`), float32."""
    if norm not in PIXEL_LOSSES:
        raise ValueError(f"`norm` must be one of {PIXEL_LOSSES}. Received: norm={norm!r}")
    delta = ops.cast(prediction, "float32") - ops.cast(target, "float32")
    return ops.abs(delta) if norm == "l1" else ops.square(delta)


def reconstruction_loss(prediction, target, norm="l1"):
    """Mean absolute (`"l1"`) or squared (`"l2"`) error between generated frames and the true
    next frames, or (`"log_l2"`) the mean over frames of the log of each frame's mean squared
    error (plus `LOG_L2_FLOOR`).

    `"log_l2"` is what an average of per-frame PSNR measures (PSNR is -10 log10 of the MSE): each
    frame of a batch weighs alike, where with `"l2"` the frames with the largest errors (the
    late steps of a rollout) outweigh the others.

    Args:
        prediction: float tensor [B, H, W, 3], the generated frame f_hat.
        target: float tensor of the same shape, the true frame f_{t+1}.
        norm: one of `PIXEL_LOSSES`.

    Returns:
        A float32 scalar.
    """
    error = pixel_error(prediction, target, norm)
    if norm == "log_l2":
        return _mean(ops.log(ops.mean(error, axis=(1, 2, 3)) + LOG_L2_FLOOR))
    return _mean(error)


def codebook_loss(latents, quantized):
    """VQ codebook loss, mean (sg(z) - z_q)^2: moves the chosen codes towards the encoder output.

    Args:
        latents: float tensor [..., n_z], the encoder output z. No gradient flows to it.
        quantized: float tensor of the same shape, the selected codebook vectors z_q.

    Returns:
        A float32 scalar.

    Reference:
        arXiv 1711.00937 (VQ-VAE), eq. 3.
    """
    latents = ops.stop_gradient(ops.cast(latents, "float32"))
    return _mean(ops.square(latents - ops.cast(quantized, "float32")))


def commitment_loss(latents, quantized, beta=0.25):
    """VQ commitment loss, beta * mean (z - sg(z_q))^2: keeps the encoder close to its codes.

    `beta` weights this term, as in the VQ-VAE paper; taming's legacy quantiser puts it on the
    codebook term instead.

    Args:
        latents: float tensor [..., n_z], the encoder output z.
        quantized: float tensor of the same shape, the selected codebook vectors z_q. No gradient
            flows to it.
        beta: non-negative float, the commitment weight.

    Returns:
        A float32 scalar.

    Reference:
        arXiv 1711.00937 (VQ-VAE), eq. 3.
    """
    if beta < 0:
        raise ValueError(f"`beta` must be non-negative. Received: beta={beta}")
    quantized = ops.stop_gradient(ops.cast(quantized, "float32"))
    return beta * _mean(ops.square(ops.cast(latents, "float32") - quantized))


def background_loss(mask, frame, next_frame):
    """L_bg: the background, (1 - m) * f, should not change between two frames.

    Args:
        mask: float tensor [B, H, W, 1] in [0, 1], the foreground mask.
        frame: float tensor [B, H, W, 3] in [-1, 1], f_t.
        next_frame: float tensor [B, H, W, 3] in [-1, 1], f_{t+1}, or the background f_t
            is compared with instead (`--bg_reference=clip_median`: its clip's median).

    Returns:
        A float32 scalar, mean |(1 - m) * f_t - (1 - m) * f_{t+1}| over all B*H*W*3 elements.
    """
    background = 1.0 - ops.cast(mask, "float32")
    delta = background * ops.cast(frame, "float32") - background * ops.cast(next_frame, "float32")
    return _mean(ops.abs(delta))


def sparsity_loss(mask, diff, two_sided=False):
    """L_spar: the mask should be no larger than the area that changes.

    Per sample b, s_b = mean(m_b) - mean(d_b). The one-sided loss penalises only a mask larger
    than the changed area; the two-sided loss penalises any mismatch of the two areas.

    Args:
        mask: float tensor [B, H, W, 1] in [0, 1], the foreground mask.
        diff: float tensor [B, H, W, 1] in [0, 1], the frame-difference map d.
        two_sided: bool. If `True`, mean_b |s_b|; otherwise mean_b max(s_b, 0).

    Returns:
        A float32 scalar.
    """
    mask = ops.cast(mask, "float32")
    diff = ops.cast(diff, "float32")
    axes = tuple(range(1, len(mask.shape)))
    excess = ops.mean(mask, axis=axes) - ops.mean(diff, axis=axes)
    excess = ops.abs(excess) if two_sided else ops.maximum(excess, 0.0)
    return ops.mean(excess)


def binarization_loss(mask):
    """L_bin: pushes every mask value towards 0 or 1.

    Args:
        mask: float tensor [B, H, W, 1] in [0, 1].

    Returns:
        A float32 scalar, mean min(m, 1 - m); 0 for a binary mask, at most 0.5.
    """
    mask = ops.cast(mask, "float32")
    return _mean(ops.minimum(mask, 1.0 - mask))


def combine_masks(current, next_mask, mode):
    """Picks the mask that cuts the background for L_bg (the `--bg_mask` choice).

    Args:
        current: float tensor [B, H, W, 1], M(f_t) (the reference).
        next_mask: float tensor of the same shape, M(f_{t+1}) (the draft).
        mode: one of `BG_MASK_MODES`: `"next"`, `"current"`, or `"union"`, the elementwise
            maximum of the two.

    Returns:
        A tensor [B, H, W, 1].
    """
    if mode not in BG_MASK_MODES:
        raise ValueError(f"`mode` must be one of {BG_MASK_MODES}. Received: mode={mode!r}")
    if mode == "next":
        return next_mask
    if mode == "current":
        return current
    return ops.maximum(current, next_mask)


# Phase II: adversarial and region losses. Logits are raw discriminator outputs of any shape
# (one per patch for a PatchGAN); every term averages over all of them.
GAN_LOSSES = ("nonsaturating", "hinge")


def _check_gan_mode(mode):
    if mode not in GAN_LOSSES:
        raise ValueError(f"`mode` must be one of {GAN_LOSSES}. Received: mode={mode!r}")


def discriminator_loss(real_logits, fake_logits, mode):
    """The discriminator's loss on real and generated samples.

    `"nonsaturating"` is the log loss of the draft's eq. 9, -log sigmoid(real) - log(1 -
    sigmoid(fake)), written as softplus(-real) + softplus(fake); `"hinge"` is relu(1 - real) +
    relu(1 + fake) (the reference). Each term is averaged over its logits, and the loss is
    0.5 * (real term + fake term), as taming-transformers does, so its scale does not depend on
    the patch count.

    Args:
        real_logits: float tensor of any shape, the discriminator on real frames.
        fake_logits: float tensor of any shape, the discriminator on generated frames.
        mode: one of `GAN_LOSSES`.

    Returns:
        A float32 scalar.

    Reference: arXiv 2111.12747, eq. 9; VQGAN, arXiv 2012.09841; hinge loss, arXiv 1705.02894.
    """
    _check_gan_mode(mode)
    real_logits = ops.cast(real_logits, "float32")
    fake_logits = ops.cast(fake_logits, "float32")
    if mode == "nonsaturating":
        real_term = _mean(ops.softplus(-real_logits))
        fake_term = _mean(ops.softplus(fake_logits))
    else:
        real_term = _mean(ops.relu(1.0 - real_logits))
        fake_term = _mean(ops.relu(1.0 + fake_logits))
    return 0.5 * (real_term + fake_term)


def generator_adversarial_loss(fake_logits, mode):
    """The generator's adversarial loss on the discriminator's logits for its frames.

    `"nonsaturating"`: mean softplus(-fake) = mean -log sigmoid(fake), the non-saturating loss of
    the original GAN; `"hinge"`: -mean(fake).

    Args:
        fake_logits: float tensor of any shape, the discriminator on generated frames.
        mode: one of `GAN_LOSSES`.

    Returns:
        A float32 scalar.

    Reference: arXiv 1406.2661, section 3; arXiv 1705.02894.
    """
    _check_gan_mode(mode)
    fake_logits = ops.cast(fake_logits, "float32")
    if mode == "nonsaturating":
        return _mean(ops.softplus(-fake_logits))
    return -_mean(fake_logits)


def _global_norm(tensors):
    return ops.sqrt(
        sum(ops.sum(ops.square(ops.cast(t, "float32"))) for t in keras.tree.flatten(tensors))
    )


def adaptive_gan_weight(reconstruction_grad, gan_grad, max_weight=1e4):
    """The VQGAN adaptive weight of the GAN term, ||g_rec|| / (||g_gan|| + 1e-4).

    The two gradients are those of the reconstruction loss and of the generator's adversarial
    loss with respect to the generator's last layer; the weight makes the GAN term's gradient
    there as large as the reconstruction's. No gradient flows through it.

    Args:
        reconstruction_grad: a tensor, or a list of tensors (their global norm is used).
        gan_grad: the same for the adversarial loss.
        max_weight: non-negative float, the upper clip of the weight.

    Returns:
        A float32 scalar in [0, max_weight].

    Reference: VQGAN, arXiv 2012.09841, eq. 7.
    """
    if max_weight < 0:
        raise ValueError(f"`max_weight` must be non-negative. Received: max_weight={max_weight}")
    weight = _global_norm(reconstruction_grad) / (_global_norm(gan_grad) + 1e-4)
    return ops.stop_gradient(ops.clip(weight, 0.0, max_weight))


def masked_pixel_error(prediction, target, mask, norm="l1"):
    """A pixel error restricted to a region: mean over all elements of
    mask * |prediction - target| (or of mask * (prediction - target)^2 with `norm="l2"`).

    The Phase II region losses are `masked_pixel_error(f_hat, f_next, m_target)` (weight w_fg) and
    `masked_pixel_error(f_hat, f_next, 1 - m_target)` (weight w_bg); with `"l1"` or `"l2"` the
    two add up to `reconstruction_loss(f_hat, f_next)` with the same `norm` (`"log_l2"`'s region
    terms are squared errors).

    Args:
        prediction: float tensor `[B, H, W, 3]`.
        target: float tensor of the same shape.
        mask: float tensor `[B, H, W, 1]` in [0, 1], broadcast over the channels.
        norm: one of `PIXEL_LOSSES` (`pixel_error`).

    Returns:
        A float32 scalar, the sum divided by B*H*W*3 (not by the mask's area).
    """
    return _mean(ops.cast(mask, "float32") * pixel_error(prediction, target, norm))


def weighted_sum(terms, weights):
    """The total loss: `sum(weights[name] * terms[name])` over the names of `weights`, in their
    order (each phase lists its terms and weights once).

    Args:
        terms: dict of scalar loss terms.
        weights: dict from term names to their weights (floats or scalar tensors).

    Returns:
        A float32 scalar.
    """
    total = None
    for name, weight in weights.items():
        value = weight * terms[name]
        total = value if total is None else total + value
    return total


@dataclasses.dataclass
class LossOptions(Options):
    """Weights and variants of the Phase I losses (docs/method.md, the losses)."""

    reconstruction_weight: float = option(
        1.0, "Weight of L1(f_hat, f_{t+1}) (in Phase 2, of the distance --pixel_loss says)."
    )
    codebook_weight: float = option(1.0, "Weight of the codebook loss ||sg(z) - z_q||^2.")
    commitment_beta: float = option(0.25, "Weight beta of the commitment loss ||z - sg(z_q)||^2.")
    bg_weight: float = option(50.0, "l1, weight of the background loss L_bg.")
    bin_weight: float = option(4.0, "l3, weight of the binarization loss L_bin.")
    bg_mask: str = option(
        "union",
        "Mask of L_bg: next = M(f_{t+1}) (the draft), current = M(f_t) (the reference), union = "
        "max of the two.",
        choices=BG_MASK_MODES,
    )
    two_sided_sparsity: bool = option(
        False, "Penalise |mean(m) - mean(d)| instead of max(mean(m) - mean(d), 0)."
    )

    def check(self, config):
        self.finite_non_negative(
            "reconstruction_weight", "codebook_weight", "commitment_beta", "bg_weight", "bin_weight"
        )


@dataclasses.dataclass
class GanOptions(Options):
    """Phase II's adversarial and pixel terms."""

    gan_loss: str = option(
        "hinge",
        "Phase 2: hinge (the reference) or nonsaturating (the draft's log loss, eq. 9).",
        choices=GAN_LOSSES,
    )
    gan_weight: float = option(
        1.0,
        "Phase 2: weight of the generator's adversarial loss; 0: none, and the discriminators "
        "never train (--disc_start has no effect).",
    )
    adaptive_gan_weight: bool = option(
        True,
        "Phase 2: multiply --gan_weight by the VQGAN adaptive weight, the ratio of the gradient "
        "norms of the reconstruction and GAN terms at the generator's last layer.",
    )
    pixel_loss: str = option(
        "l1",
        "Phase 2: the distance of the generator's pixel terms (the whole frame, inside and "
        "outside the target mask): l1 (the draft) or l2, the squared error that PSNR measures, "
        "whose best guess where the future is uncertain is the mean rather than the median; "
        "log_l2: the whole-frame term is the mean of the log of each frame's squared error, "
        "what an average of per-frame PSNR measures, so that every rollout step weighs alike "
        "(the region terms stay squared errors).",
        choices=PIXEL_LOSSES,
    )
    fg_region_weight: float = option(
        1.0, "Phase 2: weight of the pixel term (--pixel_loss) inside the target mask."
    )
    bg_region_weight: float = option(
        1.0, "Phase 2: weight of the pixel term (--pixel_loss) outside the target mask."
    )

    def check(self, config):
        self.finite_non_negative("gan_weight", "fg_region_weight", "bg_region_weight")
