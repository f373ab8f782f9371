"""Input speed: conversion frames/s, and the (f_t, f_{t+1}, d) triples/s the reader delivers.

    python benchmarks/input_pipeline.py
    python benchmarks/input_pipeline.py --sizes=64,256 --encodings=png,jpeg --clips=200
    python benchmarks/input_pipeline.py --encodings=png \
        --beam_args=--direct_running_mode=multi_processing,--direct_num_workers=2

For each size and encoding, converts `--clips` synthetic clips on Beam's DirectRunner into a
temporary folder (timing the whole conversion: generation, resizing, encoding, writing), then
times the reader: `records.record_windows` -> `pipeline.batch_windows` -> `pipeline.pairs`
with Phase I's batch shape (`--clips_per_batch` windows of `--frames_per_clip` frames), after
`--warmup` untimed batches. Compare the triples/s with what the train step consumes
(`benchmarks/train_step.py` prints pairs/s): the reader must not be the bottleneck.
"""

import os
import tempfile
import time

from absl import app, flags, logging

from data_pipelines import conversion, pipeline, records, sources

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_list("sizes", ["64", "256"], "Frame sizes to convert and read.")
    flags.DEFINE_list("encodings", ["png", "jpeg"], "Frame encodings to compare.")
    flags.DEFINE_integer("clips", 200, "Synthetic clips to convert per row.")
    flags.DEFINE_integer("clip_length", 16, "Frames per converted clip.")
    flags.DEFINE_integer("clips_per_batch", 6, "Windows per batch (Phase I: 6).")
    flags.DEFINE_integer("frames_per_clip", 4, "Frames per window (Phase I: 4).")
    flags.DEFINE_integer("batches", 100, "Timed batches per row.")
    flags.DEFINE_integer("warmup", 10, "Untimed batches before timing.")
    flags.DEFINE_list(
        "beam_args",
        [],
        "Beam pipeline options for the conversion, e.g. the multi-process runner.",
    )


def time_reader(directory):
    """Triples per second of the Phase I stream over a converted data set."""
    windows = records.record_windows(directory, "train", FLAGS.frames_per_clip, seed=0)
    batches = pipeline.pairs(pipeline.batch_windows(windows, FLAGS.clips_per_batch))
    iterator = iter(batches)
    for _ in range(FLAGS.warmup):
        next(iterator)
    start = time.perf_counter()
    triples = 0
    for _ in range(FLAGS.batches):
        triples += int(next(iterator)["frame"].shape[0])
    return triples / (time.perf_counter() - start)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for size in map(int, FLAGS.sizes):
            for encoding in FLAGS.encodings:
                output = os.path.join(root, f"{size}_{encoding}")
                options = sources.Options(
                    size=size,
                    clip_length=FLAGS.clip_length,
                    num_clips=FLAGS.clips,
                    test_fraction=0.0,
                )
                start = time.perf_counter()
                info = conversion.convert(
                    "synthetic",
                    None,
                    output,
                    options,
                    encoding=encoding,
                    beam_args=FLAGS.beam_args,
                )
                seconds = time.perf_counter() - start
                frames = info.splits["train"]["frames"]
                megabytes = (
                    sum(
                        os.path.getsize(os.path.join(output, f))
                        for f in info.splits["train"]["files"]
                    )
                    / 2**20
                )
                rows.append((size, encoding, frames / seconds, megabytes, time_reader(output)))
                print(
                    f"{size}x{size} {encoding}: converted {frames} frames in {seconds:.1f} s, "
                    f"read {rows[-1][-1]:.0f} triples/s",
                    flush=True,
                )
    print(
        f"\n{os.cpu_count()} CPUs; batches of {FLAGS.clips_per_batch} windows x "
        f"{FLAGS.frames_per_clip} frames; Beam options: {' '.join(FLAGS.beam_args) or 'none'}"
    )
    print(f"{'size':>9} {'encoding':>8} {'convert frames/s':>17} {'MiB':>7} {'read triples/s':>15}")
    for size, encoding, fps, megabytes, triples in rows:
        print(f"{size:>4}x{size:<4} {encoding:>8} {fps:>17.1f} {megabytes:>7.1f} {triples:>15.0f}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
