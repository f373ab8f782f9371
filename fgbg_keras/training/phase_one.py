"""Phase I: the mask network and the frame generator learn together, with no labels."""

import keras
import tensorflow as tf
from keras import ops

from data_pipelines import pipeline
from fgbg_keras import losses, metrics, replicas
from fgbg_keras.models import generators
from fgbg_keras.models.factory import build_networks
from fgbg_keras.schedules import make_sparsity_schedule
from fgbg_keras.training import phases
from fgbg_keras.training.tracked import TrackedModel

# The order in which Phase I reports its terms; the NaN guard names the first bad one.
LOSS_TERMS = (
    "reconstruction_loss",
    "codebook_loss",
    "commitment_loss",
    "background_loss",
    "sparsity_loss",
    "binarization_loss",
)
TRAIN_STATISTICS = (
    "sparsity_weight",
    "bg_spar_ratio",
    "perplexity",
    "codes_used",
    "mask_mean",
    "diff_mean",
)
TEST_STATISTICS = ("mask_iou", "psnr", "copy_last_psnr")


@keras.saving.register_keras_serializable(package="fgbg_keras")
class PhaseOne(TrackedModel):
    """Phase I of fgbg: reconstruction + VQ + mask losses over (f_t, f_{t+1}, d) triples.

    `fit()` takes batches that are dicts with `"frame"` f_t and `"next_frame"` f_{t+1}
    (`[B, H, W, 3]` in [-1, 1]) and `"diff"` d (`[B, H, W, 1]`); `evaluate()` additionally reads
    the ground-truth `"mask"` of f_t when present, to report mask IoU.

    The loss is `reconstruction_weight * L1(f_hat, f_{t+1}) + codebook_weight * L_codebook +
    L_commitment + bg_weight * L_bg + l2 * L_spar + bin_weight * L_bin`, where the sparsity
    weight l2 follows `sparsity_schedule` and is updated after every step from the raw
    L_bg and L_spar. With `bg_mask` other than `"current"`, M also runs on f_{t+1}; the
    sparsity and binarization terms then average over both masks.

    Args:
        mask_generator: the mask network M (a `MaskGenerator`).
        frame_generator: the frame generator G (any registered one, `models.generators`).
        bg_mask: `"next"`, `"current"` or `"union"`: the mask of the background loss.
        two_sided_sparsity: penalise `|mean(m) - mean(d)|` instead of its positive part.
        reconstruction_weight, codebook_weight, commitment_beta, bg_weight, bin_weight: weights.
        sparsity_schedule: `"controller"`, `"halving"` or `"off"`.
        sparsity_schedule_config: keyword arguments of that schedule.
        **kwargs: standard `keras.Model` arguments.

    Reference: arXiv 2111.12747, sections 3.1 and 3.3.
    """

    def __init__(
        self,
        mask_generator,
        frame_generator,
        bg_mask="union",
        two_sided_sparsity=False,
        reconstruction_weight=1.0,
        codebook_weight=1.0,
        commitment_beta=0.25,
        bg_weight=50.0,
        bin_weight=1.0,
        sparsity_schedule="controller",
        sparsity_schedule_config=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if bg_mask not in losses.BG_MASK_MODES:
            raise ValueError(
                f"`bg_mask` must be one of {losses.BG_MASK_MODES}. Received: bg_mask={bg_mask!r}"
            )
        for name, value in (
            ("reconstruction_weight", reconstruction_weight),
            ("codebook_weight", codebook_weight),
            ("commitment_beta", commitment_beta),
            ("bg_weight", bg_weight),
            ("bin_weight", bin_weight),
        ):
            if value < 0:
                raise ValueError(f"`{name}` must be >= 0. Received: {name}={value}")
        self.mask_generator = mask_generator
        self.frame_generator = frame_generator
        self.bg_mask = bg_mask
        self.two_sided_sparsity = two_sided_sparsity
        self.reconstruction_weight = reconstruction_weight
        self.codebook_weight = codebook_weight
        self.commitment_beta = commitment_beta
        self.bg_weight = bg_weight
        self.bin_weight = bin_weight
        self.sparsity_schedule_name = sparsity_schedule
        self.sparsity_schedule_config = dict(sparsity_schedule_config or {})
        self.sparsity_schedule = make_sparsity_schedule(
            sparsity_schedule, **self.sparsity_schedule_config
        )
        self._create_trackers(LOSS_TERMS + TRAIN_STATISTICS + TEST_STATISTICS)

    def call(self, inputs, training=None):
        """Masks and the predicted next frame of `inputs["frame"]`.

        Returns:
            A dict with `"mask"` `[B, H, W, 1]` and the frame generator's outputs (`"frame"`,
            `"latents"`, `"quantized"`, `"indices"`).
        """
        frame = inputs["frame"]
        return self._predict(frame, self.mask_generator(frame, training=training), training)

    def _predict(self, frame, mask, training):
        """The frame generator's outputs for `frame` and its mask, with `"mask"` added."""
        outputs = self.frame_generator(
            {"frame": frame, "mask": mask, "target_mask": mask}, training=training
        )
        return {"mask": mask, **outputs}

    def compute_losses(self, data, training):
        """The loss terms, the total and the statistics of one batch."""
        frame, next_frame, diff = data["frame"], data["next_frame"], data["diff"]
        # `--bg_reference`: the background is compared with f_{t+1} or with the clip's median.
        reference = data.get("background", next_frame)
        if self.bg_mask == "current":
            masks = [self.mask_generator(frame, training=training)]
            bg_mask = masks[0]
        else:
            # One call of M over both frames of every pair.
            both = self.mask_generator(
                ops.concatenate([frame, next_frame], axis=0), training=training
            )
            masks = ops.split(both, 2, axis=0)
            bg_mask = losses.combine_masks(masks[0], masks[1], self.bg_mask)
        outputs = self._predict(frame, masks[0], training)

        vq_terms, statistics = generators.codebook_terms(
            self.frame_generator, outputs, self.commitment_beta
        )
        terms = {
            "reconstruction_loss": losses.reconstruction_loss(outputs["frame"], next_frame),
            **vq_terms,
            "background_loss": losses.background_loss(bg_mask, frame, reference),
            "sparsity_loss": ops.mean(
                ops.stack(
                    [
                        losses.sparsity_loss(m, diff, two_sided=self.two_sided_sparsity)
                        for m in masks
                    ]
                )
            ),
            "binarization_loss": ops.mean(ops.stack([losses.binarization_loss(m) for m in masks])),
        }
        weights = {
            "reconstruction_loss": self.reconstruction_weight,
            "codebook_loss": self.codebook_weight,
            "commitment_loss": 1.0,
            "background_loss": self.bg_weight,
            "sparsity_loss": ops.convert_to_tensor(self.sparsity_schedule.weight),
            "binarization_loss": self.bin_weight,
        }
        total = losses.weighted_sum(terms, weights)
        statistics["mask_mean"] = ops.mean(outputs["mask"])
        statistics["diff_mean"] = ops.mean(diff)
        return total, terms, statistics, outputs

    def train_step(self, data):
        data, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            total, terms, statistics, _ = self.compute_losses(data, training=True)
            scaled = replicas.scale_loss(total)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        # The controller sees the losses of the global batch, the same on every replica.
        background_loss, sparsity_loss = replicas.mean_over_replicas(
            [terms["background_loss"], terms["sparsity_loss"]]
        )
        sparsity_weight = self.sparsity_schedule.update(
            self.optimizer.iterations, background_loss, sparsity_loss
        )
        statistics["sparsity_weight"] = sparsity_weight
        statistics["bg_spar_ratio"] = self.sparsity_schedule.ratio
        return self._update_trackers(total, {**terms, **statistics})

    def test_step(self, data):
        data, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        total, terms, statistics, outputs = self.compute_losses(data, training=False)
        values = {**terms, **statistics}
        values["psnr"] = ops.mean(metrics.psnr(outputs["frame"], data["next_frame"]))
        values["copy_last_psnr"] = ops.mean(metrics.psnr(data["frame"], data["next_frame"]))
        if "mask" in data:
            values["mask_iou"] = ops.mean(metrics.mask_iou(outputs["mask"], data["mask"]))
        return self._update_trackers(total, values)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                **self._serialized_networks(),
                "bg_mask": self.bg_mask,
                "two_sided_sparsity": self.two_sided_sparsity,
                "reconstruction_weight": self.reconstruction_weight,
                "codebook_weight": self.codebook_weight,
                "commitment_beta": self.commitment_beta,
                "bg_weight": self.bg_weight,
                "bin_weight": self.bin_weight,
                "sparsity_schedule": self.sparsity_schedule_name,
                "sparsity_schedule_config": self.sparsity_schedule_config,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**cls._deserialize_networks(config))


def build_phase_one(config):
    """The `PhaseOne` model of a `RunConfig`, with freshly built networks."""
    loss = config.loss
    return PhaseOne(
        *build_networks(config.model, moving_masks=PhaseOneTraining.moving_masks),
        bg_mask=loss.bg_mask,
        two_sided_sparsity=loss.two_sided_sparsity,
        reconstruction_weight=loss.reconstruction_weight,
        codebook_weight=loss.codebook_weight,
        commitment_beta=loss.commitment_beta,
        bg_weight=loss.bg_weight,
        bin_weight=loss.bin_weight,
        sparsity_schedule=loss.spar_schedule,
        sparsity_schedule_config=loss.sparsity_schedule_kwargs(),
        name="phase_one",
    )


class PhaseOneTraining(phases.Phase):
    """`--phase=1`: `PhaseOne` on the (f_t, f_{t+1}, d) triples of the training windows."""

    name = "1"
    help = "1: learn masks and the frame generator together."
    moving_masks = False
    uses_change_map = True
    loss_terms = LOSS_TERMS
    progress_names = ("loss", "background_loss", "sparsity_weight", "mask_mean")

    def build(self, config, sample_batch):
        optimizer = phases.adam(config, config.train.learning_rate)
        model = build_phase_one(config)
        model.compile(optimizer=optimizer, jit_compile=config.train.jit_compile)
        model(sample_batch, training=False)
        optimizer.build(model.trainable_variables)
        return model, optimizer

    def train_data(self, config, batches):
        return pipeline.pairs(
            batches, diff_mode=config.loss.diff, diff_threshold=config.loss.diff_threshold
        )


PHASE = phases.register(PhaseOneTraining())
