"""Training throughput: pairs/s, FLOPs per pair (counted from the graph), GFLOP/s.

    python benchmarks/train_step.py                      # float32, the synthetic.flags model
    python benchmarks/train_step.py --precision=mixed_bfloat16
    python benchmarks/train_step.py --flagfile=configs/synthetic.flags --steps=30
    python benchmarks/train_step.py --flagfile=configs/synthetic_phase2.flags --phase=2
    python benchmarks/train_step.py --flagfile=configs/synthetic.flags \
        --strategy=mirrored --logical_cpus=2       # two replicas, each on half of every batch
    python benchmarks/train_step.py --flagfile=configs/paper256.flags \
        --clips_per_batch=1 --frames_per_clip=2 --steps=3 --warmup=1    # one 256x256 pair

`--phase=2` times the Phase II step with the discriminators and scheduled sampling on (the
step after `--disc_start` and `--ss_start`).

FLOPs are counted by TensorFlow's profiler on the traced `train_step` graph (forward, backward
and optimizer update of one batch), so they follow the model actually built, not an estimate.
Timings are wall-clock over `--steps` steps after `--warmup` steps.
"""

# Before TensorFlow: fgbg_keras turns its oneDNN kernels on (fgbg_keras/__init__.py).
import fgbg_keras  # noqa: F401  # isort: skip

import collections
import glob
import os
import resource
import sys
import time

import tensorflow as tf
from absl import app, flags

from benchmarks import timed_blocks
from data_pipelines import pipeline, synthetic
from fgbg_keras import flags as fgbg_flags
from fgbg_keras import hardware
from fgbg_keras.training import loop, phases

FLAGS = flags.FLAGS


def define_flags():
    # train.py's flags, so that the benchmark measures exactly what a flagfile trains.
    fgbg_flags.define_train_flags()
    flags.adopt_module_key_flags(fgbg_flags)
    flags.DEFINE_integer("steps", 20, "Timed training steps.")
    flags.DEFINE_integer("warmup", 3, "Untimed steps before timing (tracing, caches).")
    flags.DEFINE_integer(
        "blocks",
        0,
        "With N > 0: print `ready` after the warmup, then time N blocks of --steps steps, each "
        "when a line arrives on standard input, printing `block S s` after it (side_by_side.py "
        "alternates two implementations' blocks this way); the figures cover all the blocks.",
    )
    flags.DEFINE_string(
        "profile",
        "",
        "Also trace 5 steps with TensorFlow's profiler into this folder (open it with "
        "TensorBoard's profile plugin) and print where their time went, by op type.",
    )
    flags.DEFINE_integer("top_ops", 15, "With --profile: the op types printed.")


def profiled_op_times(logdir):
    """Seconds per op type (`_MklConv2D`, `Cast`...) summed over the kernels in the newest
    profiler trace under `logdir`, from the XPlane the profiler writes."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = max(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    times = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                # Kernels are "node:OpType"; the executor's own events are "Class::method".
                if name.count(":") == 1:
                    times[name.split(":")[1]] += event.duration_ps * 1e-12
    return times


def timed_steps(step_fn, batches, steps):
    """Wall-clock seconds of `steps` calls of `step_fn` over `batches` in turn, up to the last
    step's loss."""
    start = time.perf_counter()
    for i in range(steps):
        logs = step_fn(batches[i % len(batches)])
    float(logs["loss"])
    return time.perf_counter() - start


def profile_steps(step_fn, batches, logdir, steps=5):
    """Traces `steps` calls of `step_fn` into `logdir`; returns their seconds per op type and
    their wall-clock seconds."""
    tf.profiler.experimental.start(logdir)
    seconds = timed_steps(step_fn, batches, steps)
    tf.profiler.experimental.stop()
    return profiled_op_times(logdir), seconds


def count_flops(concrete_function):
    """Floating-point operations of one call of a traced function, by TF's profiler."""
    graph = concrete_function.graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph, options=options)
    return profile.total_float_ops


def matmul_peak(dtype, size=2048, repeats=20):
    """GFLOP/s of a `size` x `size` matmul in `dtype` on this machine, timed in this process:
    the ceiling the step's achieved GFLOP/s is compared with."""
    a = tf.cast(tf.random.stateless_normal([size, size], seed=[0, 1]), dtype)
    b = tf.cast(tf.random.stateless_normal([size, size], seed=[0, 2]), dtype)
    matmul = tf.function(lambda: tf.matmul(a, b))
    for _ in range(3):
        matmul()
    start = time.perf_counter()
    for _ in range(repeats):
        result = matmul()
    float(result[0, 0])
    return 2.0 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def main(argv):
    del argv
    phase = phases.get(FLAGS.phase)
    if not phase.fgbg_networks:
        raise app.UsageError(f"--phase={FLAGS.phase}: this benchmark times Phase 1 or 2.")
    try:
        config = phase.validate(fgbg_flags.config_from_flags())
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    # The graphs training runs: with --deterministic on a CPU, Grappler's rewrites are off.
    with loop.training_graphs(config):
        benchmark(phase, config)


def benchmark(phase, config):
    """Times `phase`'s training step under `config` and prints the figures."""
    strategy = loop.setup_runtime(config)
    replicas = strategy.num_replicas_in_sync
    data_config = synthetic.scaled_config(config.model.image_size, config.train.clip_length)
    clips = synthetic.make_split("train", 32, data_config, seed=config.train.seed)
    windows = pipeline.clip_windows(clips, config.train.frames_per_clip, seed=0)
    data = phase.train_data(config, pipeline.batch_windows(windows, config.train.clips_per_batch))
    batches = [next(iter(data.skip(i).take(1))) for i in range(4)]
    sample = pipeline.eval_triples(clips, batch_size=config.train.pairs_per_batch)
    with strategy.scope():
        model, _ = phase.build(config, next(iter(sample)))
    # Phase II's step after --disc_start and --ss_start: both players, scheduled sampling on.
    for switch in ("adversarial", "scheduled_sampling"):
        if hasattr(model, switch):
            setattr(model, switch, True)

    if replicas == 1:
        step_fn = tf.function(model.train_step, jit_compile=config.train.jit_compile)
        flops = count_flops(step_fn.get_concrete_function(batches[0]))
    else:
        # Each replica runs the step on its share of every batch, as `fit` does.
        stream = tf.data.Dataset.from_tensors(batches[0])
        for batch in batches[1:]:
            stream = stream.concatenate(tf.data.Dataset.from_tensors(batch))
        batches = list(strategy.experimental_distribute_dataset(stream))
        replica_step = tf.function(model.train_step, jit_compile=config.train.jit_compile)

        @tf.function
        def step_fn(batch):
            logs = strategy.run(replica_step, args=(batch,))
            return {"loss": strategy.reduce("MEAN", logs["loss"], axis=None)}

        flops = None  # counted on one device: the same per pair
    for i in range(FLAGS.warmup):
        step_fn(batches[i % len(batches)])
    seconds = timed_blocks.run(lambda: timed_steps(step_fn, batches, FLAGS.steps), FLAGS.blocks)
    steps = FLAGS.steps * max(FLAGS.blocks, 1)

    pairs = config.train.pairs_per_batch
    pairs_per_second = steps * pairs / seconds
    lines = [
        f"cpu               {hardware.cpu().describe()}",
        f"oneDNN            {hardware.describe_onednn()}",
        f"phase             {phase.name}",
        f"strategy          {config.train.strategy} ({replicas} replica(s))",
        f"generator         {config.model.generator}",
        f"precision         {config.train.precision}",
        f"jit_compile       {config.train.jit_compile}",
        f"image size        {config.model.image_size}",
        f"pairs per batch   {pairs}",
        f"step time         {1000 * seconds / steps:.1f} ms",
        f"throughput        {pairs_per_second:.1f} pairs/s",
    ]
    if flops is not None:
        flops_per_pair = flops / pairs
        achieved = pairs_per_second * flops_per_pair / 1e9
        dtype = tf.bfloat16 if "bfloat16" in config.train.precision else tf.float32
        peak = matmul_peak(dtype)
        lines += [
            f"FLOPs per pair    {flops_per_pair / 1e9:.3f} GFLOP (train step: fwd + bwd + update)",
            f"achieved          {achieved:.1f} GFLOP/s",
            f"matmul peak       {peak:.1f} GFLOP/s ({dtype.name} 2048x2048, measured here): "
            f"the step reaches {100 * achieved / peak:.0f}%",
        ]
    lines += [
        # The process's peak resident memory: the model, its optimizer, the traced step, the
        # data; on a GPU the activations live on the device and are not counted here.
        f"peak memory       {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
        "(resident, the whole process)",
        f"parameters        M {model.mask_generator.count_params():,}  "
        f"G {model.frame_generator.count_params():,}",
    ]
    if FLAGS.profile:
        steps = 5
        times, seconds = profile_steps(step_fn, batches, FLAGS.profile, steps)
        total = sum(times.values())
        lines += [
            f"profile           {steps} steps traced into {FLAGS.profile}: "
            f"{1000 * total / steps:.1f} ms of kernels per step (summed over threads), "
            f"{1000 * seconds / steps:.1f} ms wall clock",
            "  op type                           ms/step   share",
        ]
        for name, value in times.most_common(FLAGS.top_ops):
            lines.append(f"  {name:32s} {1000 * value / steps:8.1f}  {100 * value / total:5.1f}%")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    define_flags()
    app.run(main)
