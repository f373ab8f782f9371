"""Training throughput: pairs/s, FLOPs per pair (counted from the graph), GFLOP/s.

    python benchmarks/train_step.py                      # float32, the synthetic.flags model
    python benchmarks/train_step.py --precision=mixed_bfloat16
    python benchmarks/train_step.py --flagfile=configs/synthetic.flags --steps=30
    python benchmarks/train_step.py --flagfile=configs/synthetic_phase2.flags --phase=2

`--phase=2` times the Phase II step with the discriminators and scheduled sampling on (the
step after `--disc_start` and `--ss_start`).

FLOPs are counted by TensorFlow's profiler on the traced `train_step` graph (forward, backward
and optimizer update of one batch), so they follow the model actually built, not an estimate.
Timings are wall-clock over `--steps` steps after `--warmup` steps.
"""

import sys
import time

import tensorflow as tf
from absl import app, flags

from data_pipelines import pipeline, synthetic
from fgbg_keras import flags as fgbg_flags
from fgbg_keras.training import loop, phases

FLAGS = flags.FLAGS


def define_flags():
    # train.py's flags, so that the benchmark measures exactly what a flagfile trains.
    fgbg_flags.define_train_flags()
    flags.adopt_module_key_flags(fgbg_flags)
    flags.DEFINE_integer("steps", 20, "Timed training steps.")
    flags.DEFINE_integer("warmup", 3, "Untimed steps before timing (tracing, caches).")


def count_flops(concrete_function):
    """Floating-point operations of one call of a traced function, by TF's profiler."""
    graph = concrete_function.graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph, options=options)
    return profile.total_float_ops


def main(argv):
    del argv
    phase = phases.get(FLAGS.phase)
    if phase.networks != "fgbg":
        raise app.UsageError(f"--phase={FLAGS.phase}: this benchmark times Phase 1 or 2.")
    try:
        config = phase.validate(fgbg_flags.config_from_flags())
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    loop.setup_runtime(config)
    data_config = synthetic.scaled_config(config.model.image_size, config.train.clip_length)
    clips = synthetic.make_split("train", 32, data_config, seed=config.train.seed)
    windows = pipeline.clip_windows(clips, config.train.frames_per_clip, seed=0)
    data = phase.train_data(config, pipeline.batch_windows(windows, config.train.clips_per_batch))
    batches = [next(iter(data.skip(i).take(1))) for i in range(4)]
    sample = pipeline.eval_triples(clips, batch_size=config.train.pairs_per_batch)
    model, _ = phase.build(config, next(iter(sample)))
    # Phase II's step after --disc_start and --ss_start: both players, scheduled sampling on.
    for switch in ("adversarial", "scheduled_sampling"):
        if hasattr(model, switch):
            setattr(model, switch, True)

    step_fn = tf.function(model.train_step, jit_compile=config.train.jit_compile)
    flops = count_flops(step_fn.get_concrete_function(batches[0]))
    for i in range(FLAGS.warmup):
        step_fn(batches[i % len(batches)])
    start = time.perf_counter()
    for i in range(FLAGS.steps):
        logs = step_fn(batches[i % len(batches)])
    float(logs["loss"])
    seconds = time.perf_counter() - start

    pairs = config.train.pairs_per_batch
    pairs_per_second = FLAGS.steps * pairs / seconds
    flops_per_pair = flops / pairs
    lines = [
        f"phase             {phase.name}",
        f"generator         {config.model.generator}",
        f"precision         {config.train.precision}",
        f"jit_compile       {config.train.jit_compile}",
        f"image size        {config.model.image_size}",
        f"pairs per batch   {pairs}",
        f"step time         {1000 * seconds / FLAGS.steps:.1f} ms",
        f"throughput        {pairs_per_second:.1f} pairs/s",
        f"FLOPs per pair    {flops_per_pair / 1e9:.3f} GFLOP (train step: fwd + bwd + update)",
        f"achieved          {pairs_per_second * flops_per_pair / 1e9:.1f} GFLOP/s",
        f"parameters        M {model.mask_generator.count_params():,}  "
        f"G {model.frame_generator.count_params():,}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    define_flags()
    app.run(main)
