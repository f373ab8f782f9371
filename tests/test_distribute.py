"""Training under tf.distribute: a step on two replicas equals the step on one device.

conftest.py splits the CPU into two logical devices before TensorFlow starts, so
`--strategy=mirrored` has two replicas here. The comparisons are on the optimizer's first
moments, which after one Adam step are (1 - beta_1) times the gradient (the weights themselves
move by about the learning rate whatever the gradient's size, so they would not show a gradient
twice too large), and on every non-trainable state a step updates (the sparsity controller, the
VQ codebook's EMA and usage).

Tolerance: the two replicas' partial gradients are summed in another order than one device
sums the whole batch's, so the first moments agree to rtol 1e-3 plus an atol of 1e-5 times the
variable's largest moment (at least 1e-6). Measured: at most 2e-7 apart in Phase I, on the biases
that feed a normalisation (their true gradient is zero and the computed one rounding noise), and
1.1e-6 on moments of size 1 in Phase II, where the sampled inputs are the generator's own
outputs. A gradient twice too large, or inputs sampled for the wrong clips, is far outside.
"""

import json
import os
import re
import socket

import keras
import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import conversion, datasets, pipeline, sources
from fgbg_keras import distribute
from fgbg_keras.training import baseline, loop, phases
from tests.harness import checkpoint_values, start_train, wait_ok
from tests.tiny import tiny_config


@pytest.fixture(scope="module")
def mirrored():
    strategy = distribute.make_strategy("mirrored", logical_cpus=2)
    assert strategy.num_replicas_in_sync == 2, "conftest.py splits the CPU in two"
    return strategy


def windows_batch(config, keep_offsets=False):
    """The first training batch of windows of the tiny synthetic set."""
    source = datasets.source(config)
    windows = source.training_windows(config.train.frames_per_clip, 0, start_index=0)
    batches = pipeline.batch_windows(
        windows, config.train.clips_per_batch, config.model.image_size, keep_offsets=keep_offsets
    )
    return next(iter(batches))


def one_step(phase, config, batch, strategy, prepare=None):
    """`phase`'s model built under `strategy` from seed 0 and fitted on `batch` for one step."""
    keras.utils.set_random_seed(0)
    source = datasets.source(config)
    sample = loop.validation_data(config, source).sample if phase.validates else None
    with strategy.scope():
        model, _ = phase.build(config, sample)
    if prepare:
        prepare(model)
    model.fit(
        tf.data.Dataset.from_tensors(batch), epochs=1, steps_per_epoch=1, verbose=0, shuffle=False
    )
    return model


def assert_same_step(single, mirrored, optimizers, states):
    for name in optimizers:
        a, b = getattr(single, name), getattr(mirrored, name)
        assert int(a.iterations.numpy()) == int(b.iterations.numpy()) == 1
        moments = [(x, y) for x, y in zip(a.variables, b.variables) if "momentum" in x.path]
        assert moments, name
        for x, y in moments:
            expected = x.numpy()
            atol = max(1e-5 * float(np.abs(expected).max()), 1e-6)
            np.testing.assert_allclose(y.numpy(), expected, rtol=1e-3, atol=atol, err_msg=x.path)
    for x, y in zip(states(single), states(mirrored)):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-5, atol=1e-6)


def test_phase_one_step_on_two_replicas_equals_one_device(mirrored):
    config = tiny_config(clips_per_batch=2)
    # The EMA codebook and its dead-code restarts update from the whole batch's counts.
    config.model.vq_ema = True
    config.model.dead_code_threshold = 0.5
    phase = phases.get(1)
    batch = next(
        iter(phase.train_data(config, tf.data.Dataset.from_tensors(windows_batch(config))))
    )

    def states(model):
        schedule, quantizer = model.sparsity_schedule, model.frame_generator.quantizer
        return [schedule.weight, schedule.ratio] + [w for w in quantizer.weights if not w.trainable]

    single = one_step(phase, config, batch, tf.distribute.get_strategy())
    two = one_step(phase, config, batch, mirrored)
    assert_same_step(single, two, ["optimizer"], states)


def test_phase_two_step_with_discriminators_and_sampling_equals_one_device(mirrored):
    config = tiny_config(clips_per_batch=4)
    config.phase_two.disc_filters = 8
    config.phase_two.local_crop_size = 32
    config.phase_two.ss_start = 0  # sampling from the first step, with p = 0.5
    config.phase_two.ss_initial = 0.5
    phase = phases.get(2)
    phase.validate(config)
    batch = windows_batch(config)

    def switch_on(model):
        model.adversarial = True
        model.scheduled_sampling = True

    single = one_step(phase, config, batch, tf.distribute.get_strategy(), switch_on)
    two = one_step(phase, config, batch, mirrored, switch_on)
    assert_same_step(single, two, ["optimizer", "discriminator_optimizer"], lambda model: [])


def test_convlstm_baseline_step_equals_one_device(mirrored):
    config = tiny_config(clips_per_batch=2)
    phase = phases.get(baseline.ConvLSTMBaseline.name)
    batch = baseline.inputs_and_targets(windows_batch(config, keep_offsets=True))
    single = one_step(phase, config, batch, tf.distribute.get_strategy())
    two = one_step(phase, config, batch, mirrored)
    assert_same_step(single, two, ["optimizer"], lambda model: [])


def test_mirrored_run_resumes_exactly_and_validates(tmp_path):
    # 3 validation clips of 6 frames: 15 pairs in batches of 4, of which the 3 whole ones run.
    config = {
        "clips_per_batch": 2,
        "num_val_clips": 3,
        "strategy": "mirrored",
        "logical_cpus": 2,
        "log_every": 1,
        "checkpoint_every": 1,
        "image_every": 1,
    }
    whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
    logs = loop.train_and_evaluate(tiny_config(train_steps=2, **config), whole, verbose=False)
    assert np.isfinite(logs["val_loss"])
    loop.train_and_evaluate(tiny_config(train_steps=1, **config), split, verbose=False)
    loop.train_and_evaluate(tiny_config(train_steps=2, **config), split, verbose=False)
    a, b = checkpoint_values(whole), checkpoint_values(split)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_validation_on_two_replicas_keeps_whole_batches_only():
    config = tiny_config(clips_per_batch=2, num_val_clips=3)
    source = datasets.source(config)

    def sizes(replicas):
        data = loop.validation_data(config, source, replicas).data
        return [int(batch["frame"].shape[0]) for batch in data]

    assert sizes(1) == [4, 4, 4, 3]
    assert sizes(2) == [4, 4, 4]
    few = tiny_config(clips_per_batch=4, num_val_clips=1)  # 5 pairs, batches of 8
    with pytest.raises(ValueError, match="--num_val_clips=1: its 5 validation pairs do not fill"):
        loop.validation_data(few, datasets.source(few), 2)


def test_a_batch_that_does_not_split_over_the_replicas_is_refused(tmp_path):
    config = tiny_config(clips_per_batch=3, strategy="mirrored", logical_cpus=2)
    with pytest.raises(ValueError, match="--clips_per_batch=3: must be a multiple of the 2"):
        loop.train_and_evaluate(config, str(tmp_path / "run"), verbose=False)
    with pytest.raises(ValueError, match="--logical_cpus=2: needs --strategy=mirrored"):
        tiny_config(logical_cpus=2).validate(())


def test_chief_of_a_cluster(monkeypatch):
    cluster = {"worker": ["localhost:1", "localhost:2"]}
    for index, chief in ((0, True), (1, False)):
        monkeypatch.setenv(
            "TF_CONFIG",
            json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        )
        assert distribute.is_chief("multi_worker") is chief
        assert distribute.is_chief("mirrored")
    with_chief = {"chief": ["localhost:3"], **cluster}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})
    )
    assert not distribute.is_chief("multi_worker")
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(ValueError, match="--strategy=multi_worker needs the TF_CONFIG"):
        distribute.make_strategy("multi_worker")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


TINY_FLAGS = [
    "--image_size=32",
    "--mask_ngf=4",
    "--mask_res_blocks=1",
    "--generator=vqvae",
    "--generator_filters=8,16",
    "--generator_res_blocks=1",
    "--num_embeddings=16",
    "--embedding_dim=8",
    "--train_steps=4",
    "--clips_per_batch=2",
    "--frames_per_clip=3",
    "--log_every=2",
    "--checkpoint_every=2",
    "--image_every=2",
    "--num_train_clips=8",
    "--num_val_clips=2",
    "--num_test_clips=2",
    "--clip_length=6",
    "--noevaluate",
]


def start_workers(cluster, *args):
    """`train.py ARGS` started once per worker of `cluster`, each with its `TF_CONFIG`."""
    return [
        start_train(
            "--strategy=multi_worker",
            *args,
            env={
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": i}}
                )
            },
        )
        for i in range(len(cluster["worker"]))
    ]


def test_two_workers_start_phase_two_on_their_own_shards_resume_and_the_chief_alone_writes(
    tmp_path,
):
    data = str(tmp_path / "records")
    options = sources.Options(size=32, clip_length=6, num_clips=10, seed=2, test_fraction=0.3)
    conversion.convert("synthetic", None, data, options, num_shards=2)
    # Phase I in this process (the same networks as TINY_FLAGS'), which every worker loads.
    phase_one, phase_two = tmp_path / "p1", tmp_path / "p2"
    loop.train_and_evaluate(tiny_config(train_steps=2), str(phase_one), verbose=False)
    # Phase II with the discriminators from step 2, stopped after step 2 and resumed by a new
    # cluster (each cluster exits when its training ends).
    phase_two_flags = [
        "--phase=2",
        f"--init_from={phase_one}",
        "--disc_start=2",
        "--ss_start=2",  # the default, half of --train_steps, would move at the resume
        "--disc_filters=8",
        f"--model_dir={phase_two}",
        f"--data=tfrecord:{data}",
        *TINY_FLAGS,
    ]
    for steps, resumed in ((2, False), (4, True)):
        cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
        outputs = wait_ok(start_workers(cluster, *phase_two_flags, f"--train_steps={steps}"))
        for output in outputs:  # each worker trained one of two replicas, on half of each batch
            assert "--strategy=multi_worker: 2 replicas, 1 clips each per step." in output
            assert "Each of the 2 workers reads its own part of --data." in output
            # Every worker loads the Phase I run, then restores the chief's checkpoint.
            assert ("Initialised the mask network" in output) is not resumed, output[-3000:]
            assert bool(re.search(r"Resumed from \S*ckpt-2\b", output)) is resumed, output[-3000:]
    checkpoints = tf.train.get_checkpoint_state(str(phase_two / "checkpoints"))
    assert [os.path.basename(p) for p in checkpoints.all_model_checkpoint_paths] == [
        "ckpt-2",
        "ckpt-4",
    ]
    assert not (phase_two / "workers").exists()
    assert (phase_two / "config.json").exists() and (phase_two / "flags.json").exists()
    assert json.loads((phase_two / "flags.json").read_text())["strategy"] == "multi_worker"
    values = checkpoint_values(str(phase_two))
    discriminator = [v for n, v in values.items() if "discriminator_optimizer" in n and "iter" in n]
    assert discriminator and all(int(v) == 2 for v in discriminator)  # steps 3 and 4
    assert all(np.all(np.isfinite(v)) for v in values.values() if v.dtype.kind == "f")
