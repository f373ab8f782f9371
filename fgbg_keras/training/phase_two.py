"""Phase II: the frame generator learns to draw the object where a target mask says."""

import keras
import tensorflow as tf
from absl import logging
from keras import ops

from fgbg_keras import losses, metrics, replicas
from fgbg_keras.mask_ops import (
    TRAIN_CONTROLS,
    binarize,
    carry_target,
    fitted_controls,
    identity_controls,
    translation_controls,
)
from fgbg_keras.models import generators
from fgbg_keras.models.factory import build_discriminators, build_networks
from fgbg_keras.models.patchgan import local_crops
from fgbg_keras.schedules import scheduled_sampling_probability
from fgbg_keras.training import callbacks as fgbg_callbacks
from fgbg_keras.training import phases
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
    discriminators and `w_gan` is `gan_weight`, times the VQGAN adaptive weight if asked. The
    discriminators (PatchGANs: a global one and optionally a local one on a crop around the
    target mask, both optionally conditioned on f_t) have their own optimizer, as in the Keras
    GAN guide.

    Two switches change the traced graph and are set between `fit` epochs by the
    `PhaseTwoSwitches` callback, never inside `train_step`: `adversarial` (the discriminators
    have joined: after `disc_start`) and `scheduled_sampling` (after its start step). With
    scheduled sampling on, each input frame f_t (t > 0 in its clip) is replaced, with
    probability p, by G's own output for it from f_{t-1}, computed by a first pass without
    gradients; p follows `scheduled_sampling_probability`.

    With `train_rollout`, the generator is trained the way it is tested instead: each window of F
    frames is rolled out from its first true frame as `rollout.rollout` does in `"carry"` mode,
    steered by the controls fitted from M's masks of the window's true frames (the parameterized
    control, so no labels are needed), or with `train_controls="true"` by the windows' labelled
    `"offsets"` (the true controls, as the ConvLSTM baseline is trained). Step k draws from G's own
    previous output, with the target mask m_0 moved by the composed controls (not M(f_{k+1}), which
    a test rollout never has), and the loss of every step reaches every earlier step through the
    generated frames. The discriminators see each step as a pair with the frame G was fed, the true
    next frame for the real pair and G's for the fake one, so both share their condition, and the
    adversarial gradient, like the L1 one, reaches the earlier steps through it. Scheduled sampling
    has nothing left to do then (it never switches on).

    `fit()` takes batches that are dicts with `"frames"` `[C, F, H, W, 3]` in [-1, 1] (clips of
    F consecutive frames); `evaluate()` takes the pair dicts of `pipeline.eval_triples`.

    Args:
        mask_generator: the trained mask network M; frozen here.
        frame_generator: the frame generator G (VQ-VAE or U-Net).
        discriminators: dict `"global"` (and optionally `"local"`) of `PatchDiscriminator`s.
        gan_loss: `"nonsaturating"` or `"hinge"`.
        gan_weight: weight of the adversarial term.
        adaptive_gan_weight: multiply `gan_weight` by the VQGAN adaptive weight.
        disc_conditional: the discriminators see concat(f_t, frame), not the frame alone.
        local_crop_size: side of the local discriminator's crop.
        reconstruction_weight, fg_region_weight, bg_region_weight, codebook_weight,
            commitment_beta: loss weights.
        ss_start, ss_initial, ss_increment, ss_interval: the scheduled-sampling schedule.
        train_rollout: train on rollouts of the windows, not on pairs of true frames (above).
        train_controls: with `train_rollout`, what carries the mask: `"fitted"` (the
            translations of M's masks) or `"true"` (the batches' `"offsets"`, translations).
        pixel_loss: `"l1"`, `"l2"` or `"log_l2"`, the distance of the reconstruction and
            region terms (`losses.reconstruction_loss`).
        seed: seed of the scheduled-sampling draws (stateless, so resuming is exact).
        **kwargs: standard `keras.Model` arguments.

    Reference: arXiv 2111.12747, sections 3.2-3.4; VQGAN, arXiv 2012.09841 (adaptive weight).
    """

    def __init__(
        self,
        mask_generator,
        frame_generator,
        discriminators,
        gan_loss="hinge",
        gan_weight=1.0,
        adaptive_gan_weight=True,
        disc_conditional=True,
        local_crop_size=32,
        reconstruction_weight=1.0,
        fg_region_weight=1.0,
        bg_region_weight=1.0,
        codebook_weight=1.0,
        commitment_beta=0.25,
        ss_start=0,
        ss_initial=0.1,
        ss_increment=0.1,
        ss_interval=100,
        train_rollout=False,
        train_controls="fitted",
        pixel_loss="l1",
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_choice("gan_loss", gan_loss, losses.GAN_LOSSES)
        _check_choice("pixel_loss", pixel_loss, losses.PIXEL_LOSSES)
        _check_choice("train_controls", train_controls, TRAIN_CONTROLS)
        if "global" not in discriminators or set(discriminators) - {"global", "local"}:
            raise ValueError(
                "`discriminators` must hold a 'global' and optionally a 'local' discriminator. "
                f"Received: keys={sorted(discriminators)}"
            )
        for name, value in (
            ("gan_weight", gan_weight),
            ("reconstruction_weight", reconstruction_weight),
            ("fg_region_weight", fg_region_weight),
            ("bg_region_weight", bg_region_weight),
            ("codebook_weight", codebook_weight),
            ("commitment_beta", commitment_beta),
        ):
            if value < 0:
                raise ValueError(f"`{name}` must be >= 0. Received: {name}={value}")
        if generators.reads_memory(frame_generator) and not train_rollout:
            raise ValueError(
                "A frame generator that reads the rollout's memory "
                f"({generators.reads_memory(frame_generator)}) needs `train_rollout=True`: "
                "trained on pairs it would only see its current frame there."
            )
        if train_controls != "fitted" and not train_rollout:
            raise ValueError(
                f"`train_controls={train_controls!r}` needs `train_rollout=True`: it steers the "
                "training rollouts."
            )
        if ss_interval < 1:
            raise ValueError(f"`ss_interval` must be >= 1. Received: ss_interval={ss_interval}")
        self.mask_generator = mask_generator
        self.mask_generator.trainable = False
        self.frame_generator = frame_generator
        self.discriminators = dict(discriminators)
        self.gan_loss = gan_loss
        self.gan_weight = gan_weight
        self.adaptive_gan_weight = adaptive_gan_weight
        self.disc_conditional = disc_conditional
        self.local_crop_size = local_crop_size
        self.reconstruction_weight = reconstruction_weight
        self.fg_region_weight = fg_region_weight
        self.bg_region_weight = bg_region_weight
        self.codebook_weight = codebook_weight
        self.commitment_beta = commitment_beta
        self.ss_start = ss_start
        self.ss_initial = ss_initial
        self.ss_increment = ss_increment
        self.ss_interval = ss_interval
        self.train_rollout = train_rollout
        self.train_controls = train_controls
        self.pixel_loss = pixel_loss
        self.seed = seed
        self.adversarial = False
        self.scheduled_sampling = False
        self.discriminator_optimizer = None
        self._create_trackers(LOSS_TERMS + TRAIN_STATISTICS + TEST_STATISTICS)

    def compile(self, optimizer, discriminator_optimizer, **kwargs):
        """`optimizer` trains the frame generator, `discriminator_optimizer` the discriminators."""
        super().compile(optimizer=optimizer, **kwargs)
        self.discriminator_optimizer = discriminator_optimizer

    @property
    def discriminator_variables(self):
        return [v for d in self.discriminators.values() for v in d.trainable_variables]

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

    def discriminate(self, condition, frame, target_mask, training):
        """The logits of every discriminator for `frame`, cut around `target_mask` if local."""
        image = ops.concatenate([condition, frame], -1) if self.disc_conditional else frame
        logits = [self.discriminators["global"](image, training=training)]
        if "local" in self.discriminators:
            crops = local_crops(image, target_mask, self.local_crop_size)
            logits.append(self.discriminators["local"](crops, training=training))
        return [ops.cast(x, "float32") for x in logits]

    def _window_masks(self, frames):
        """binarize(M(.)) of every frame of clips `[C, F, H, W, 3]`: `[C, F, H, W, 1]`."""
        shape = ops.shape(frames)
        height, width = frames.shape[2], frames.shape[3]
        masks = self.masks(ops.reshape(frames, (-1, height, width, 3)))
        return ops.reshape(masks, (shape[0], shape[1], height, width, 1))

    def _flat_pairs(self, frames, masks):
        """Clips `[C, F, H, W, 3]` and their masks to inputs and targets
        `[C * (F - 1), H, W, 3]`, and their masks."""
        height, width = frames.shape[2], frames.shape[3]

        def flat(x, channels):
            return ops.reshape(x, (-1, height, width, channels))

        return (
            flat(frames[:, :-1], 3),
            flat(frames[:, 1:], 3),
            flat(masks[:, :-1], 1),
            flat(masks[:, 1:], 1),
        )

    def _rolled_out(self, frames, masks, controls, training):
        """Each window rolled out from its first frame, as `train_rollout` says, the mask carried
        by `controls` `[C, F - 1, 2, 3]`.

        Returns:
            The frames G was fed, the true targets, the input and target masks (each
            `[(F - 1) * C, H, W, .]`, step by step), and G's outputs joined in that order.
        """
        length = frames.shape[1]
        if length is None:
            raise ValueError("Training on rollouts needs windows of a known number of frames.")
        initial = masks[:, 0]
        frame, mask = frames[:, 0], initial
        first = previous = (frame, mask)
        total = identity_controls(ops.shape(frames)[0])
        fed, targets, fed_masks, target_masks, outputs = [], [], [], [], []
        for k in range(length - 1):
            target, total = carry_target(initial, controls[:, k], total)
            output = self.frame_generator(
                generators.rollout_inputs(frame, mask, target, first, previous),
                training=training,
            )
            previous = (frame, mask)
            fed.append(frame)
            fed_masks.append(mask)
            targets.append(frames[:, k + 1])
            target_masks.append(target)
            outputs.append(output)
            frame, mask = ops.cast(output["frame"], "float32"), target
        joined = {key: ops.concatenate([o[key] for o in outputs], 0) for key in outputs[0]}
        return (
            ops.concatenate(fed, 0),
            ops.concatenate(targets, 0),
            ops.concatenate(fed_masks, 0),
            ops.concatenate(target_masks, 0),
            joined,
        )

    def _training_controls(self, data, masks):
        """The controls that carry the mask along a training rollout (`train_controls`)."""
        if self.train_controls == "fitted":
            return fitted_controls(masks)
        if "offsets" not in data:
            raise ValueError(
                "`train_controls='true'` needs batches with the windows' \"offsets\" "
                f"(data with labelled controls). Received keys: {sorted(data)}"
            )
        return translation_controls(data["offsets"])

    def _sampled_inputs(self, frames, inputs, mask, target_mask):
        """Inputs where each f_t (t > 0) is G's own output from f_{t-1} with probability p."""
        step = self.optimizer.iterations
        p = scheduled_sampling_probability(
            step, self.ss_start, self.ss_initial, self.ss_increment, self.ss_interval
        )
        first = self.frame_generator(
            {"frame": inputs, "mask": mask, "target_mask": target_mask}, training=False
        )["frame"]
        shape = ops.shape(frames)
        clips, pairs = shape[0], shape[1] - 1
        height, width = frames.shape[2], frames.shape[3]
        own = ops.reshape(ops.stop_gradient(first), (clips, pairs, height, width, 3))
        real = ops.reshape(inputs, (clips, pairs, height, width, 3))
        previous_output = ops.concatenate([real[:, :1], own[:, :-1]], axis=1)
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        # Drawn for the global batch; each replica keeps the rows of its own clips.
        draws = replicas.replica_rows(
            tf.random.stateless_uniform(
                tf.stack([clips * replicas.num_replicas(), pairs]), seed=seed
            ),
            clips,
        )
        use_own = ops.logical_and(draws < p, ops.arange(pairs)[None, :] > 0)
        sampled = ops.where(use_own[:, :, None, None, None], previous_output, real)
        return ops.reshape(sampled, (-1, height, width, 3)), p

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
        masks = self._window_masks(frames)
        statistics = {}
        if not self.train_rollout:
            inputs, targets, mask, target_mask = self._flat_pairs(frames, masks)
            if self.scheduled_sampling:
                inputs, statistics["ss_probability"] = self._sampled_inputs(
                    frames, inputs, mask, target_mask
                )
        variables = self.frame_generator.trainable_variables
        with tf.GradientTape(persistent=self.adversarial) as tape:
            if self.train_rollout:
                inputs, targets, mask, target_mask, outputs = self._rolled_out(
                    frames, masks, self._training_controls(data, masks), training=True
                )
            else:
                outputs = self.frame_generator(
                    {"frame": inputs, "mask": mask, "target_mask": target_mask}, training=True
                )
            total, terms, more, prediction = self.generator_losses(outputs, targets, target_mask)
            scaled = replicas.scale_loss(total)
            statistics.update(more)
            if self.adversarial:
                fake_logits = self.discriminate(inputs, prediction, target_mask, training=False)
                adversarial = ops.sum(
                    ops.stack(
                        [losses.generator_adversarial_loss(x, self.gan_loss) for x in fake_logits]
                    )
                )
                scaled_adversarial = replicas.scale_loss(adversarial)
        gradients = tape.gradient(scaled, variables)
        if self.adversarial:
            # The GAN term's gradient is taken on its own, so that the adaptive weight can
            # compare the two at the last layer before they are summed.
            gan_gradients = tape.gradient(scaled_adversarial, variables)
            weight = ops.convert_to_tensor(self.gan_weight, "float32")
            if self.adaptive_gan_weight:
                kernel = self.frame_generator.output_kernel
                index = next(i for i, v in enumerate(variables) if v is kernel)
                # The global batch's gradients at the last layer, the same on every replica.
                weight = weight * losses.adaptive_gan_weight(
                    *replicas.sum_over_replicas([gradients[index], gan_gradients[index]])
                )
            gradients = [
                g if a is None else a * weight if g is None else g + a * weight
                for g, a in zip(gradients, gan_gradients)
            ]
            terms["generator_gan_loss"] = adversarial
            statistics["gan_weight"] = weight
            total = total + weight * adversarial
        del tape
        self.optimizer.apply(gradients, variables)

        if self.adversarial:
            prediction = ops.stop_gradient(prediction)
            with tf.GradientTape() as tape:
                real_logits = self.discriminate(inputs, targets, target_mask, training=True)
                fake_logits = self.discriminate(inputs, prediction, target_mask, training=True)
                discriminator_loss = ops.sum(
                    ops.stack(
                        [
                            losses.discriminator_loss(real, fake, self.gan_loss)
                            for real, fake in zip(real_logits, fake_logits)
                        ]
                    )
                )
                scaled = replicas.scale_loss(discriminator_loss)
            variables = self.discriminator_variables
            gradients = tape.gradient(scaled, variables)
            self.discriminator_optimizer.apply(gradients, variables)
            terms["discriminator_loss"] = discriminator_loss
            statistics["real_logits"] = ops.mean(ops.stack([ops.mean(x) for x in real_logits]))
            statistics["fake_logits"] = ops.mean(ops.stack([ops.mean(x) for x in fake_logits]))
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
                "gan_loss": self.gan_loss,
                "gan_weight": self.gan_weight,
                "adaptive_gan_weight": self.adaptive_gan_weight,
                "disc_conditional": self.disc_conditional,
                "local_crop_size": self.local_crop_size,
                "reconstruction_weight": self.reconstruction_weight,
                "fg_region_weight": self.fg_region_weight,
                "bg_region_weight": self.bg_region_weight,
                "codebook_weight": self.codebook_weight,
                "commitment_beta": self.commitment_beta,
                "ss_start": self.ss_start,
                "ss_initial": self.ss_initial,
                "ss_increment": self.ss_increment,
                "ss_interval": self.ss_interval,
                "train_rollout": self.train_rollout,
                "train_controls": self.train_controls,
                "pixel_loss": self.pixel_loss,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = cls._deserialize_networks(config)
        config["discriminators"] = {
            name: keras.saving.deserialize_keras_object(d)
            for name, d in config["discriminators"].items()
        }
        return cls(**config)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}. Received: {name}={value!r}")


def build_phase_two(config):
    """The `PhaseTwo` model of a `RunConfig`, with freshly built networks."""
    loss, two = config.loss, config.phase_two
    return PhaseTwo(
        *build_networks(config.model, moving_masks=PhaseTwoTraining.moving_masks),
        build_discriminators(two),
        gan_loss=two.gan_loss,
        gan_weight=two.gan_weight,
        adaptive_gan_weight=two.adaptive_gan_weight,
        disc_conditional=two.disc_conditional,
        local_crop_size=two.local_crop_size,
        reconstruction_weight=loss.reconstruction_weight,
        fg_region_weight=two.fg_region_weight,
        bg_region_weight=two.bg_region_weight,
        codebook_weight=loss.codebook_weight,
        commitment_beta=loss.commitment_beta,
        ss_start=two.resolved_ss_start(config.train.train_steps),
        ss_initial=two.ss_initial,
        ss_increment=two.ss_increment,
        ss_interval=two.ss_interval,
        train_rollout=two.train_rollout,
        train_controls=two.train_controls,
        pixel_loss=two.pixel_loss,
        seed=config.train.seed,
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
        model.discriminate(sample_batch["frame"], outputs["frame"], outputs["mask"], False)
        model.discriminator_optimizer.build(model.discriminator_variables)
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
