import keras
import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import datasets, pipeline
from fgbg_keras import losses, mask_ops, rollout, schedules
from fgbg_keras.mask_ops import binarize
from fgbg_keras.models import generators
from fgbg_keras.training import feeding, phases
from fgbg_keras.training.adversary import Adversary
from fgbg_keras.training.phase_two import LOSS_TERMS, PhaseTwo, build_phase_two
from tests.harness import config_round_trip
from tests.tiny import synthetic_split, tiny_config


def clip_batch(config, clips_per_batch=2, frames_per_clip=3):
    clips = synthetic_split(config, "train", 4)
    data = pipeline.clip_batches(clips, frames_per_clip, clips_per_batch, seed=0)
    return next(iter(data))


def pair_batch(config):
    clips = synthetic_split(config, "validation", 1)
    return next(iter(pipeline.eval_triples(clips, batch_size=3)))


def phase_two_config(**overrides):
    config = tiny_config()
    config.phase_two.disc_filters = 8
    config.phase_two.local_crop_size = 32
    for name, value in overrides.items():
        setattr(config.phase_two, name, value)
    return phases.get(2).validate(config)


def built_model(config):
    keras.utils.set_random_seed(0)
    model, _ = phases.get(2).build(config, pair_batch(config))
    return model


def values(variables):
    return [np.array(v.numpy()) for v in variables]


def changed(before, variables):
    """Which of `variables` differ from their values in `before`."""
    return [not np.array_equal(a, b) for a, b in zip(before, values(variables))]


@pytest.fixture(scope="module")
def config():
    return phase_two_config()


def test_config_round_trip(config):
    model = build_phase_two(config)
    batch = pair_batch(config)
    model(batch)
    restored = config_round_trip(model)
    restored(batch)
    restored.set_weights(model.get_weights())
    np.testing.assert_allclose(restored(batch)["frame"], model(batch)["frame"], atol=1e-6)
    assert set(restored.discriminators) == {"global", "local"}


def test_call_uses_the_binarised_mask_of_the_next_frame(config):
    model = build_phase_two(config)
    batch = pair_batch(config)
    outputs = model(batch)
    expected = binarize(model.mask_generator(batch["next_frame"]))
    np.testing.assert_array_equal(outputs["mask"], expected)
    assert outputs["frame"].shape == batch["frame"].shape


@pytest.mark.parametrize("adversarial", [False, True])
def test_generator_and_discriminators_train_only_when_they_should(config, adversarial):
    model = built_model(config)
    model.adversarial = adversarial
    model.scheduled_sampling = True
    masks = values(model.mask_generator.weights)
    generator = values(model.frame_generator.trainable_variables)
    discriminators = values(model.adversary.variables)
    batch = clip_batch(config)
    for _ in range(3):
        logs = model.train_on_batch(batch, return_dict=True)

    # The mask network is frozen: every one of its weights is exactly as it was.
    assert not any(changed(masks, model.mask_generator.weights))
    assert model.mask_generator.trainable_variables == []
    # The generator always trains (the codebook too: its loss pulls it to the latents).
    assert all(changed(generator, model.frame_generator.trainable_variables))
    # The discriminators train only once they have joined, and then every weight moves.
    moved = changed(discriminators, model.adversary.variables)
    assert all(moved) if adversarial else not any(moved)
    assert ("discriminator_loss" in logs) == adversarial
    assert ("generator_gan_loss" in logs) == adversarial
    assert ("gan_weight" in logs) == adversarial
    assert all(np.isfinite(logs[name]) for name in LOSS_TERMS if name in logs)


def test_adaptive_weight_is_logged_and_fixed_weight_is_the_flag(config):
    model = built_model(phase_two_config(adaptive_gan_weight=False, gan_weight=0.3))
    model.adversarial = True
    logs = model.train_on_batch(clip_batch(config), return_dict=True)
    assert logs["gan_weight"] == pytest.approx(0.3)
    model = built_model(config)
    model.adversarial = True
    logs = model.train_on_batch(clip_batch(config), return_dict=True)
    assert logs["gan_weight"] > 0 and logs["gan_weight"] != pytest.approx(
        config.phase_two.gan_weight
    )


@pytest.mark.parametrize(
    "step, expected",
    [(0, 0.0), (99, 0.0), (100, 0.1), (119, 0.1), (120, 0.35), (159, 0.6), (160, 0.85), (999, 1.0)],
)
def test_scheduled_sampling_probability(step, expected):
    # Start 100 at 0.1, +0.25 every 20 steps, capped at 1.
    p = schedules.scheduled_sampling_probability(step, 100, 0.1, 0.25, 20)
    assert float(p) == pytest.approx(expected)


def test_scheduled_sampling_is_logged_as_its_schedule(config):
    model = built_model(
        phase_two_config(ss_start=2, ss_initial=0.2, ss_increment=0.3, ss_interval=1)
    )
    model.scheduled_sampling = True
    batch = clip_batch(config)
    logged = [model.train_on_batch(batch, return_dict=True)["ss_probability"] for _ in range(5)]
    # train_on_batch resets the trackers, so each value is p at that step: 0 before step 2,
    # then 0.2 rising by 0.3 per step.
    np.testing.assert_allclose(logged, [0.0, 0.0, 0.2, 0.5, 0.8], atol=1e-6)


@pytest.mark.parametrize("probability", [0.0, 1.0])
def test_scheduled_sampling_feeds_the_previous_output(config, probability):
    model = built_model(phase_two_config(ss_start=0, ss_initial=probability, ss_increment=0.0))
    frames = clip_batch(config, clips_per_batch=2, frames_per_clip=4)["frames"]
    inputs, targets, mask, target_mask = feeding.flat_pairs(frames, model.window_masks(frames))
    sampled, p = model.feeding.sampled_inputs(model, frames, inputs, mask, target_mask)
    assert float(p) == probability
    own = model.frame_generator(
        {"frame": inputs, "mask": mask, "target_mask": target_mask}, training=False
    )["frame"]
    sampled, inputs, own = (np.reshape(x, (2, 3, 32, 32, 3)) for x in (sampled, inputs, own))
    # The first pair of each clip always starts from the real frame.
    np.testing.assert_array_equal(sampled[:, 0], inputs[:, 0])
    # Pair k > 0 starts from the real f_k, or (p = 1) from G's output for pair k - 1.
    expected = own[:, :-1] if probability == 1.0 else inputs[:, 1:]
    np.testing.assert_allclose(sampled[:, 1:], expected, atol=1e-6)


def rollout_config(memory=False, train_controls="fitted"):
    config = tiny_config()
    config.model.unet_first_frame = config.model.unet_previous_frame = memory
    config.phase_two.disc_filters = 8
    config.phase_two.train_rollout = True
    config.phase_two.train_controls = train_controls
    config.model.generator = "unet"
    config.model.unet_filters = 8
    config.model.unet_max_filters = 16
    return phases.get(2).validate(config)


def labelled_batch(config, clips_per_batch=2, frames_per_clip=4):
    """A batch of windows with labelled offsets that are not how M's masks move."""
    batch = clip_batch(config, clips_per_batch, frames_per_clip)
    batch["offsets"] = tf.constant([[[3.0, -2.0]] * (frames_per_clip - 1)] * clips_per_batch)
    return batch


@pytest.mark.parametrize(
    "memory, train_controls", [(False, "fitted"), (True, "fitted"), (False, "true")]
)
def test_rollout_training_generates_as_a_test_rollout_does(config, memory, train_controls):
    # With memory, G's freshly initialised weights read the first and previous frames, so the
    # two rollouts agree only if they feed G the same ones.
    model = built_model(rollout_config(memory, train_controls))
    assert model.frame_generator.memory == (("first", "previous") if memory else ())
    batch = labelled_batch(config)
    frames = tf.cast(batch["frames"], "float32")
    masks = model.window_masks(frames)
    fitted = mask_ops.fitted_controls(masks)
    controls = {"fitted": fitted, "true": mask_ops.translation_controls(batch["offsets"])}
    controls = controls[train_controls]
    assert not np.allclose(controls, fitted) or train_controls == "fitted"
    prepared = model.feeding.prepare(model, batch, frames, masks)
    fed, targets, fed_masks, target_masks, outputs, _ = model.feeding.generate(
        model, prepared, training=False
    )
    expected = rollout.rollout(model.mask_generator, model.frame_generator, frames[:, 0], controls)

    def by_step(x):  # [(F - 1) * C, ...] step by step -> [C, F - 1, ...]
        return np.swapaxes(np.reshape(x, (3, 2, *x.shape[1:])), 0, 1)

    np.testing.assert_allclose(by_step(outputs["frame"]), expected["frames"], atol=1e-5)
    np.testing.assert_array_equal(by_step(target_masks), expected["masks"])
    np.testing.assert_array_equal(by_step(targets), frames[:, 1:])
    # Step k > 0 is fed step k - 1's output and target mask; step 0 the true first frame.
    np.testing.assert_array_equal(by_step(fed)[:, 0], frames[:, 0])
    np.testing.assert_allclose(by_step(fed)[:, 1:], expected["frames"][:, :-1], atol=1e-5)
    np.testing.assert_array_equal(by_step(fed_masks)[:, 1:], expected["masks"][:, :-1])
    # The windows' objects move, so the carried targets are not all the first mask.
    assert not np.array_equal(by_step(target_masks)[:, -1], masks[:, 0])


def test_rollout_training_reaches_the_first_step_from_the_last(config):
    model = built_model(rollout_config())
    frames = tf.cast(clip_batch(config, clips_per_batch=2, frames_per_clip=4)["frames"], "float32")
    masks = model.window_masks(frames)
    with tf.GradientTape() as tape:
        tape.watch(frames)
        controls = mask_ops.fitted_controls(masks)
        outputs = feeding.rolled_out(model.frame_generator, frames, masks, controls, True)[-1]
        last_step = tf.reduce_sum(outputs["frame"][-2:])
    # The true frames enter the last step only through the first one's output (M is frozen and
    # the targets are not in the graph of the prediction).
    gradient = tape.gradient(last_step, frames).numpy()
    assert np.abs(gradient[:, 0]).sum() > 0
    np.testing.assert_array_equal(gradient[:, 1:], 0.0)


def test_rollout_training_step_trains_and_never_samples(config):
    model = built_model(rollout_config())
    model.adversarial = True
    model.scheduled_sampling = True  # ignored: a rollout feeds G its own outputs anyway
    generator = values(model.frame_generator.trainable_variables)
    logs = model.train_on_batch(clip_batch(config, frames_per_clip=4), return_dict=True)
    assert all(changed(generator, model.frame_generator.trainable_variables))
    assert all(np.isfinite(logs[name]) for name in LOSS_TERMS)
    assert "ss_probability" not in logs  # the sampling pass did not run


def test_true_pairs_are_fed_after_the_rollout_as_the_next_frame_is_tested(config):
    settings = rollout_config(memory=True)  # a pair's memory is its own frame
    settings.phase_two.train_true_pairs = True
    model = built_model(settings)
    frames = tf.cast(clip_batch(config, frames_per_clip=4)["frames"], "float32")
    masks = model.window_masks(frames)
    prepared = model.feeding.prepare(model, {}, frames, masks)
    fed, targets, fed_masks, target_masks, outputs, _ = model.feeding.generate(
        model, prepared, training=False
    )
    rolled = feeding.rolled_out(model.frame_generator, *prepared, False)
    steps = len(rolled[0])  # the rollout's part comes first, unchanged
    assert len(fed) == 2 * steps
    np.testing.assert_allclose(outputs["frame"][:steps], rolled[-1]["frame"], atol=1e-6)
    inputs, next_frames, mask, next_mask = feeding.flat_pairs(frames, masks)
    np.testing.assert_array_equal(fed[steps:], inputs)
    np.testing.assert_array_equal(targets[steps:], next_frames)
    np.testing.assert_array_equal(fed_masks[steps:], mask)
    np.testing.assert_array_equal(target_masks[steps:], next_mask)
    # Each pair as the next-frame evaluation predicts it: f_t with M's masks of f_t and f_{t+1}.
    pairs = model.frame_generator(
        generators.rollout_inputs(inputs, mask, next_mask, (inputs, mask), (inputs, mask))
    )
    np.testing.assert_allclose(outputs["frame"][steps:], pairs["frame"], atol=1e-5)
    logs = model.train_on_batch(clip_batch(config, frames_per_clip=4), return_dict=True)
    assert np.isfinite(logs["reconstruction_loss"])
    with pytest.raises(ValueError, match="--train_true_pairs=True: needs --train_rollout"):
        phase_two_config(train_true_pairs=True)


def test_true_training_controls_need_labelled_offsets(config):
    model = built_model(rollout_config(train_controls="true"))
    model.train_on_batch(labelled_batch(config), return_dict=True)
    with pytest.raises(ValueError, match='needs batches with the windows\' "offsets"'):
        model.train_on_batch(clip_batch(config, frames_per_clip=4), return_dict=True)
    records = tiny_config(data="tfrecord:/nowhere")
    records.phase_two.train_controls = "true"
    phases.get(2).check_source(records, datasets.source(tiny_config()))  # synthetic has them
    with pytest.raises(ValueError, match="--data=tfrecord:/nowhere has no labelled controls"):
        phases.get(2).check_source(records, datasets.source(records))
    with pytest.raises(ValueError, match="--train_controls='true': needs --train_rollout"):
        phases.get(2).validate(records)


def test_test_step_reports_psnr_without_changing_weights(config):
    model = built_model(config)
    weights = values(model.weights)
    logs = model.evaluate(pair_batch(config), verbose=0, return_dict=True, steps=1)
    assert np.isfinite(logs["psnr"]) and np.isfinite(logs["copy_last_psnr"])
    assert not any(changed(weights, model.weights))


@pytest.mark.parametrize("gan_weight, switched_on", [(0.1, True), (0.0, False)])
def test_a_zero_gan_weight_never_switches_the_discriminators_on(config, gan_weight, switched_on):
    config.phase_two.gan_weight = gan_weight
    config.phase_two.disc_start = 0
    model = built_model(phases.get(2).validate(config))
    switches = phases.get(2).callbacks(config, None, None, writes=False)[0]
    switches.set_model(model)
    switches.on_train_begin()
    assert model.adversarial is switched_on


@pytest.mark.parametrize("norm", ["l1", "l2", "log_l2"])
def test_pixel_loss_sets_the_distance_of_the_reconstruction_term(config, norm):
    config.phase_two.pixel_loss = norm
    model = built_model(phases.get(2).validate(config))
    batch = pair_batch(config)
    logs = model.evaluate(batch, verbose=0, return_dict=True, steps=1)
    error = np.asarray(model(batch)["frame"]) - np.asarray(batch["next_frame"])
    if norm == "log_l2":
        per_frame = np.mean(np.square(error), axis=(1, 2, 3)) + losses.LOG_L2_FLOOR
        expected = np.mean(np.log(per_frame))
    else:
        expected = np.mean(np.abs(error) if norm == "l1" else np.square(error))
    assert logs["reconstruction_loss"] == pytest.approx(expected, rel=1e-4)


def test_unet_generator_trains_in_phase_two():
    config = phase_two_config(local_disc=False, disc_conditional=False)
    config.model.generator = "unet"
    config.model.unet_filters = 8
    config.model.unet_max_filters = 16
    model = built_model(config)
    model.adversarial = True
    generator = values(model.frame_generator.trainable_variables)
    logs = model.train_on_batch(clip_batch(config), return_dict=True)
    assert set(model.discriminators) == {"global"}
    assert all(changed(generator, model.frame_generator.trainable_variables))
    assert logs["codebook_loss"] == 0.0 and "perplexity" not in logs


def test_rejects_bad_arguments(config):
    model = build_phase_two(config)
    networks = (model.mask_generator, model.frame_generator)
    with pytest.raises(ValueError, match="Received: gan_loss='wasserstein'"):
        Adversary(model.discriminators, gan_loss="wasserstein")
    with pytest.raises(ValueError, match="Received: keys=\\['local'\\]"):
        Adversary({"local": model.discriminators["local"]})
    with pytest.raises(ValueError, match="Received: fg_region_weight=-1"):
        PhaseTwo(*networks, model.adversary, model.feeding, fg_region_weight=-1)
    with pytest.raises(ValueError, match="Received: ss_interval=0"):
        feeding.PairFeeding(ss_interval=0)
    with pytest.raises(ValueError, match="Received: controls='labels'"):
        feeding.RolloutFeeding("labels")


def test_mixed_bfloat16_step_is_finite(config):
    try:
        keras.config.set_dtype_policy("mixed_bfloat16")
        model = built_model(config)
        model.adversarial = model.scheduled_sampling = True
        logs = model.train_on_batch(clip_batch(config), return_dict=True)
        assert all(np.isfinite(logs[name]) for name in LOSS_TERMS)
        assert tf.as_dtype(model(pair_batch(config))["frame"].dtype) == tf.float32
    finally:
        keras.config.set_dtype_policy("float32")
