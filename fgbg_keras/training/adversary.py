"""Phase II's adversarial terms: the discriminators, what they see, their loss, and the
generator's GAN term with its weight.

They are kept apart from the way a batch is fed to the generator (`feeding`), as tensorflow/gan
keeps its losses apart from its train ops: `PhaseTwo.train_step` asks an `Adversary` for the
generator's term and its gradients' weight, and lets it train the discriminators.
"""

import tensorflow as tf
from keras import ops

from fgbg_keras import losses, replicas
from fgbg_keras.models.patchgan import local_crops


class Adversary:
    """The PatchGAN discriminators of Phase II and their losses.

    Args:
        discriminators: dict `"global"` (and optionally `"local"`) of `PatchDiscriminator`s.
        gan_loss: one of `losses.GAN_LOSSES`, `"nonsaturating"` or `"hinge"`.
        gan_weight: weight of the generator's adversarial term.
        adaptive_gan_weight: multiply `gan_weight` by the VQGAN adaptive weight, the ratio of the
            gradient norms of the reconstruction and GAN terms at the generator's last layer.
        conditional: the discriminators see concat(f_t, frame), not the frame alone.
        local_crop_size: side of the local discriminator's crop around the target mask.

    Reference: pix2pix, arXiv 1611.07004; VQGAN, arXiv 2012.09841 (the adaptive weight).
    """

    def __init__(
        self,
        discriminators,
        gan_loss="hinge",
        gan_weight=1.0,
        adaptive_gan_weight=True,
        conditional=True,
        local_crop_size=32,
    ):
        if gan_loss not in losses.GAN_LOSSES:
            raise ValueError(
                f"`gan_loss` must be one of {losses.GAN_LOSSES}. Received: gan_loss={gan_loss!r}"
            )
        if "global" not in discriminators or set(discriminators) - {"global", "local"}:
            raise ValueError(
                "`discriminators` must hold a 'global' and optionally a 'local' discriminator. "
                f"Received: keys={sorted(discriminators)}"
            )
        if gan_weight < 0:
            raise ValueError(f"`gan_weight` must be >= 0. Received: gan_weight={gan_weight}")
        self.discriminators = dict(discriminators)
        self.gan_loss = gan_loss
        self.gan_weight = gan_weight
        self.adaptive_gan_weight = adaptive_gan_weight
        self.conditional = conditional
        self.local_crop_size = local_crop_size

    def get_config(self):
        """The settings (not the discriminators) that rebuild it."""
        return {
            "gan_loss": self.gan_loss,
            "gan_weight": self.gan_weight,
            "adaptive_gan_weight": self.adaptive_gan_weight,
            "conditional": self.conditional,
            "local_crop_size": self.local_crop_size,
        }

    @property
    def variables(self):
        """The discriminators' trainable variables."""
        return [v for d in self.discriminators.values() for v in d.trainable_variables]

    def logits(self, condition, frame, target_mask, training):
        """The logits of every discriminator for `frame`, cut around `target_mask` if local."""
        image = ops.concatenate([condition, frame], -1) if self.conditional else frame
        logits = [self.discriminators["global"](image, training=training)]
        if "local" in self.discriminators:
            crops = local_crops(image, target_mask, self.local_crop_size)
            logits.append(self.discriminators["local"](crops, training=training))
        return [ops.cast(x, "float32") for x in logits]

    def generator_loss(self, condition, prediction, target_mask):
        """The generator's adversarial term, summed over the discriminators."""
        fake = self.logits(condition, prediction, target_mask, training=False)
        return ops.sum(
            ops.stack([losses.generator_adversarial_loss(x, self.gan_loss) for x in fake])
        )

    def weighted(self, gradients, gan_gradients, variables, output_kernel):
        """The generator's gradients with the GAN term's added at its weight, and the weight.

        The GAN term's gradient is taken on its own, so that the adaptive weight can compare
        the two at the last layer (`output_kernel`) before they are summed; the global batch's
        gradients there, the same on every replica.
        """
        weight = ops.convert_to_tensor(self.gan_weight, "float32")
        if self.adaptive_gan_weight:
            index = next(i for i, v in enumerate(variables) if v is output_kernel)
            weight = weight * losses.adaptive_gan_weight(
                *replicas.sum_over_replicas([gradients[index], gan_gradients[index]])
            )
        combined = [
            g if a is None else a * weight if g is None else g + a * weight
            for g, a in zip(gradients, gan_gradients)
        ]
        return combined, weight

    def train(self, optimizer, condition, targets, prediction, target_mask):
        """One step of the discriminators on the true next frames against `prediction`.

        Returns:
            `{"discriminator_loss", "real_logits", "fake_logits"}`.
        """
        prediction = ops.stop_gradient(prediction)
        with tf.GradientTape() as tape:
            real = self.logits(condition, targets, target_mask, training=True)
            fake = self.logits(condition, prediction, target_mask, training=True)
            loss = ops.sum(
                ops.stack(
                    [losses.discriminator_loss(r, f, self.gan_loss) for r, f in zip(real, fake)]
                )
            )
            scaled = replicas.scale_loss(loss)
        variables = self.variables
        optimizer.apply(tape.gradient(scaled, variables), variables)
        return {
            "discriminator_loss": loss,
            "real_logits": ops.mean(ops.stack([ops.mean(x) for x in real])),
            "fake_logits": ops.mean(ops.stack([ops.mean(x) for x in fake])),
        }
