"""Phase II: the frame generator learns to draw the object where a target mask says."""

import keras
import tensorflow as tf
from absl import logging
from keras import ops

from fgbg_keras import losses, metrics, replicas
from fgbg_keras.mask_ops import binarize
from fgbg_keras.models import generators
from fgbg_keras.models.factory import build_discriminators, build_networks
from fgbg_keras.training import callbacks as fgbg_callbacks
from fgbg_keras.training import phases
from fgbg_keras.training.adversary import Adversary
from fgbg_keras.training.feeding import PairFeeding, RolloutFeeding
from fgbg_keras.training.tracked import TrackedModel

# The order in which Phase II reports its terms; the NaN guard names the first bad one.
LOSS_TERMS = (
    "reconstruction_loss",
    "foreground_loss",
    "background_loss",
    "codebook_loss",
    "commitment_loss",
    "generator_gan_loss",
    "discriminator_loss",
)
TRAIN_STATISTICS = (
    "gan_weight",
    "ss_probability",
    "real_logits",
    "fake_logits",
    "perplexity",
    "codes_used",
    "target_mask_mean",
)
TEST_STATISTICS = ("psnr", "copy_last_psnr")


@keras.saving.register_keras_serializable(package="fgbg_keras")
class PhaseTwo(TrackedModel):
    """Phase II of fgbg: the generator is conditioned on the target mask, with GAN losses.

    The mask network M is frozen and runs in inference mode: it only extracts
    m_t = binarize(M(f_t)) and the target m_{t+1} = binarize(M(f_{t+1})). The frame generator G
    draws f_hat = G(f_t, m_t, m_{t+1}) and is trained with
    `reconstruction_weight * L1 + fg_region_weight * L1 on m_{t+1} + bg_region_weight * L1 on
    (1 - m_{t+1}) + VQ terms + w_gan * L_G`, where L_G is the adversarial loss summed over the
    discriminators of `adversary` (`adversary.Adversary`: PatchGANs, a global one and
    optionally a local one on a crop around the target mask, both optionally conditioned on
    f_t, with their own optimizer, as in the Keras GAN guide) and `w_gan` its weight.

    How a batch of windows reaches G is `feeding` (`feeding.PairFeeding`: pairs of true frames,
    with scheduled sampling; `feeding.RolloutFeeding`: rollouts of G's own outputs, as it is
    tested). The discriminators see each step as a pair with the frame G was fed, the true next
    frame for the real pair and G's for the fake one.

    Two switches change the traced graph and are set between `fit` epochs by the
    `PhaseTwoSwitches` callback, never inside `train_step`: `adversarial` (the discriminators
    have joined: after `disc_start`) and `scheduled_sampling` (after its start step; pairs
    only).

    `fit()` takes batches that are dicts with `"frames"` `[C, F, H, W, 3]` in [-1, 1] (clips of
    F consecutive frames); `evaluate()` takes the pair dicts of `pipeline.eval_triples`.

    Args:
        mask_generator: the trained mask network M; frozen here.
        frame_generator: the frame generator G (VQ-VAE or U-Net).
        adversary: an `adversary.Adversary`, the discriminators and the GAN terms.
        feeding: a `feeding.PairFeeding` or `feeding.RolloutFeeding`.
        reconstruction_weight, fg_region_weight, bg_region_weight, codebook_weight,
            commitment_beta: loss weights.
        pixel_loss: `"l1"`, `"l2"` or `"log_l2"`, the distance of the reconstruction and
            region terms (`losses.reconstruction_loss`).
        **kwargs: standard `keras.Model` arguments.

    Reference: arXiv 2111.12747, sections 3.2-3.4; VQGAN, arXiv 2012.09841 (adaptive weight).
    """

    def __init__(
        self,
        mask_generator,
        frame_generator,
        adversary,
        feeding,
        reconstruction_weight=1.0,
        fg_region_weight=1.0,
        bg_region_weight=1.0,
        codebook_weight=1.0,
        commitment_beta=0.25,
        pixel_loss="l1",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if pixel_loss not in losses.PIXEL_LOSSES:
            raise ValueError(
                f"`pixel_loss` must be one of {losses.PIXEL_LOSSES}. Received: "
                f"pixel_loss={pixel_loss!r}"
            )
        for name, value in (
            ("reconstruction_weight", reconstruction_weight),
            ("fg_region_weight", fg_region_weight),
            ("bg_region_weight", bg_region_weight),
            ("codebook_weight", codebook_weight),
            ("commitment_beta", commitment_beta),
        ):
            if value < 0:
                raise ValueError(f"`{name}` must be >= 0. Received: {name}={value}")
        if generators.reads_memory(frame_generator) and not feeding.rollouts:
            raise ValueError(
                "A frame generator that reads the rollout's memory "
                f"({generators.reads_memory(frame_generator)}) needs a `feeding.RolloutFeeding`: "
                "trained on pairs it would only see its current frame there."
            )
        self.mask_generator = mask_generator
        self.mask_generator.trainable = False
        self.frame_generator = frame_generator
        self.adversary = adversary
        # Tracked here, where the checkpoints have always found them.
        self.discriminators = adversary.discriminators
        self.feeding = feeding
        self.reconstruction_weight = reconstruction_weight
        self.fg_region_weight = fg_region_weight
        self.bg_region_weight = bg_region_weight
        self.codebook_weight = codebook_weight
        self.commitment_beta = commitment_beta
        self.pixel_loss = pixel_loss
        self.adversarial = False
        self.scheduled_sampling = False
        self.discriminator_optimizer = None
        self._create_trackers(LOSS_TERMS + TRAIN_STATISTICS + TEST_STATISTICS)

    def compile(self, optimizer, discriminator_optimizer, **kwargs):
        """`optimizer` trains the frame generator, `discriminator_optimizer` the discriminators."""
        super().compile(optimizer=optimizer, **kwargs)
        self.discriminator_optimizer = discriminator_optimizer

    def masks(self, frames):
        """binarize(M(frames)) for frames `[N, H, W, 3]`, with no gradient: M is frozen."""
        mask = self.mask_generator(frames, training=False)
        return ops.stop_gradient(binarize(ops.cast(mask, "float32")))

    def call(self, inputs, training=None):
        """The frame predicted from `inputs["frame"]` with the mask of `inputs["next_frame"]`.

        Returns:
            A dict with `"mask"`, the target mask `[B, H, W, 1]`, and `"frame"` `[B, H, W, 3]`.
        """
        frame, next_frame = inputs["frame"], inputs["next_frame"]
        mask, target_mask = ops.split(self.masks(ops.concatenate([frame, next_frame], 0)), 2)
        outputs = self.frame_generator(
            {"frame": frame, "mask": mask, "target_mask": target_mask}, training=training
        )
        return {"mask": target_mask, "frame": outputs["frame"]}

    def window_masks(self, frames):
        """binarize(M(.)) of every frame of clips `[C, F, H, W, 3]`: `[C, F, H, W, 1]`."""
        shape = ops.shape(frames)
        height, width = frames.shape[2], frames.shape[3]
        masks = self.masks(ops.reshape(frames, (-1, height, width, 3)))
        return ops.reshape(masks, (shape[0], shape[1], height, width, 1))

    def generator_losses(self, outputs, targets, target_mask):
        """The generator's loss terms (no adversarial term), statistics and prediction, from
        its `outputs` for `targets` with `target_mask`."""
        prediction, norm = outputs["frame"], self.pixel_loss
        vq_terms, statistics = generators.codebook_terms(
            self.frame_generator, outputs, self.commitment_beta
        )
        terms = {
            "reconstruction_loss": losses.reconstruction_loss(prediction, targets, norm),
            "foreground_loss": losses.masked_pixel_error(prediction, targets, target_mask, norm),
            "background_loss": losses.masked_pixel_error(
                prediction, targets, 1.0 - target_mask, norm
            ),
            **vq_terms,
        }
        weights = {
            "reconstruction_loss": self.reconstruction_weight,
            "foreground_loss": self.fg_region_weight,
            "background_loss": self.bg_region_weight,
            "codebook_loss": self.codebook_weight,
            "commitment_loss": 1.0,
        }
        total = losses.weighted_sum(terms, weights)
        statistics["target_mask_mean"] = ops.mean(target_mask)
        return total, terms, statistics, prediction

    def train_step(self, data):
        data, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        frames = ops.cast(data["frames"], "float32")
        prepared = self.feeding.prepare(self, data, frames, self.window_masks(frames))
        variables = self.frame_generator.trainable_variables
        adversarial = self.adversarial
        with tf.GradientTape(persistent=adversarial) as tape:
            fed = self.feeding.generate(self, prepared, training=True)
            total, terms, statistics, prediction = self.generator_losses(
                fed.outputs, fed.targets, fed.target_mask
            )
            statistics.update(fed.statistics)
            scaled = replicas.scale_loss(total)
            if adversarial:
                gan_term = self.adversary.generator_loss(fed.inputs, prediction, fed.target_mask)
                scaled_gan_term = replicas.scale_loss(gan_term)
        gradients = tape.gradient(scaled, variables)
        if adversarial:
            gradients, weight = self.adversary.weighted(
                gradients,
                tape.gradient(scaled_gan_term, variables),
                variables,
                self.frame_generator.output_kernel,
            )
            terms["generator_gan_loss"] = gan_term
            statistics["gan_weight"] = weight
            total = total + weight * gan_term
        del tape
        self.optimizer.apply(gradients, variables)
        if adversarial:
            trained = self.adversary.train(
                self.discriminator_optimizer, fed.inputs, fed.targets, prediction, fed.target_mask
            )
            terms["discriminator_loss"] = trained.pop("discriminator_loss")
            statistics.update(trained)
        return self._update_trackers(total, {**terms, **statistics})

    def test_step(self, data):
        data, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        frame, next_frame = data["frame"], data["next_frame"]
        mask, target_mask = ops.split(self.masks(ops.concatenate([frame, next_frame], 0)), 2)
        outputs = self.frame_generator(
            {"frame": frame, "mask": mask, "target_mask": target_mask}, training=False
        )
        total, terms, statistics, prediction = self.generator_losses(
            outputs, next_frame, target_mask
        )
        values = {**terms, **statistics}
        values["psnr"] = ops.mean(metrics.psnr(prediction, next_frame))
        values["copy_last_psnr"] = ops.mean(metrics.psnr(frame, next_frame))
        return self._update_trackers(total, values)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                **self._serialized_networks(),
                "discriminators": {
                    name: keras.saving.serialize_keras_object(d)
                    for name, d in self.discriminators.items()
                },
                "adversary": self.adversary.get_config(),
                "feeding": {
                    "rollouts": self.feeding.rollouts,
                    **self.feeding.get_config(),
                },
                "reconstruction_weight": self.reconstruction_weight,
                "fg_region_weight": self.fg_region_weight,
                "bg_region_weight": self.bg_region_weight,
                "codebook_weight": self.codebook_weight,
                "commitment_beta": self.commitment_beta,
                "pixel_loss": self.pixel_loss,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = cls._deserialize_networks(config)
        discriminators = {
            name: keras.saving.deserialize_keras_object(d)
            for name, d in config.pop("discriminators").items()
        }
        config["adversary"] = Adversary(discriminators, **config["adversary"])
        settings = dict(config["feeding"])
        rollouts = settings.pop("rollouts")
        config["feeding"] = RolloutFeeding(**settings) if rollouts else PairFeeding(**settings)
        return cls(**config)


def build_phase_two(config):
    """The `PhaseTwo` model of a `RunConfig`, with freshly built networks."""
    loss, two = config.loss, config.phase_two
    adversary = Adversary(
        build_discriminators(two),
        gan_loss=two.gan_loss,
        gan_weight=two.gan_weight,
        adaptive_gan_weight=two.adaptive_gan_weight,
        conditional=two.disc_conditional,
        local_crop_size=two.local_crop_size,
    )
    if two.train_rollout:
        feeding = RolloutFeeding(two.train_controls, two.train_true_pairs)
    else:
        feeding = PairFeeding(
            ss_start=two.resolved_ss_start(config.train.train_steps),
            ss_initial=two.ss_initial,
            ss_increment=two.ss_increment,
            ss_interval=two.ss_interval,
            seed=config.train.seed,
        )
    return PhaseTwo(
        *build_networks(config.model, moving_masks=PhaseTwoTraining.moving_masks),
        adversary,
        feeding,
        reconstruction_weight=loss.reconstruction_weight,
        fg_region_weight=two.fg_region_weight,
        bg_region_weight=two.bg_region_weight,
        codebook_weight=loss.codebook_weight,
        commitment_beta=loss.commitment_beta,
        pixel_loss=two.pixel_loss,
        name="phase_two",
    )


class PhaseTwoTraining(phases.Phase):
    """`--phase=2`: `PhaseTwo` on windows of consecutive frames, started from a Phase I run."""

    name = "2"
    help = (
        "2: freeze the masks and fine-tune the generator on target masks, with discriminators "
        "(needs --init_from)."
    )
    sections = ("phase_two",)
    needs_init_from = True
    loss_terms = LOSS_TERMS
    progress_names = ("loss", "reconstruction_loss", "discriminator_loss", "ss_probability")

    def build(self, config, sample_batch):
        """`PhaseTwo` compiled and built; the returned optimizer trains the frame generator,
        the discriminators' own is `model.discriminator_optimizer`."""
        optimizer = phases.adam(config, config.train.learning_rate)
        model = build_phase_two(config)
        disc_rate = config.phase_two.disc_learning_rate or config.train.learning_rate
        model.compile(
            optimizer=optimizer,
            discriminator_optimizer=phases.adam(config, disc_rate),
            jit_compile=config.train.jit_compile,
        )
        outputs = model(sample_batch, training=False)
        model.adversary.logits(sample_batch["frame"], outputs["frame"], outputs["mask"], False)
        model.discriminator_optimizer.build(model.adversary.variables)
        optimizer.build(model.frame_generator.trainable_variables)
        return model, optimizer

    def checkpoint_state(self, model, optimizer):
        return {
            **super().checkpoint_state(model, optimizer),
            "discriminator_optimizer": model.discriminator_optimizer,
        }

    def start(self, model, config):
        if config.phase_two.reset_generator_head and hasattr(model.frame_generator, "reset_head"):
            model.frame_generator.reset_head()
            logging.info(
                "The frame generator's last layer starts at zero: Phase 2 starts from its base "
                "frame."
            )

    def keeps_offsets(self, config):
        return config.phase_two.train_controls == "true"

    def check_source(self, config, source):
        if self.keeps_offsets(config) and not source.has_controls:
            raise ValueError(
                f"--train_controls=true: --data={config.train.data} has no labelled controls "
                "(offsets); use --train_controls=fitted, the controls fitted from M's masks."
            )

    def train_data(self, config, batches):
        return batches.prefetch(tf.data.AUTOTUNE)

    def callbacks(self, config, model_dir, validation, writes=True):
        train, two = config.train, config.phase_two
        switches = fgbg_callbacks.PhaseTwoSwitches(
            two.resolved_disc_start(),
            None if two.train_rollout else two.resolved_ss_start(train.train_steps),
        )
        if not writes:
            return [switches]
        return [
            switches,
            fgbg_callbacks.RolloutSummaries(
                model_dir, validation.clips, train.image_every, image_size=config.model.image_size
            ),
        ]


PHASE = phases.register(PhaseTwoTraining())
