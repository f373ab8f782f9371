"""The conversion of videos, frame folders, BAIR records or the synthetic set to sharded
TFRecords, as an Apache Beam pipeline (`python -m data_pipelines.convert` is its command).

`convert` writes `OUT/train-SSSSS-of-NNNNN.tfrecord` and `OUT/test-...` (`tf.train.SequenceExample`s
of `data_pipelines.spec`) and `OUT/dataset.json`: the feature spec, counts (clips, frames, per
class) per split, every skipped input with its reason, and the camera check of each recording
(`camera_check`). Outputs are written through Beam's
file sinks and `tf.io.gfile`, so the output may be a `gs://` path; inputs are read with local
file calls (PyAV, Pillow), so on a cluster they must be on a file system that every worker mounts
at the same path.
"""

import collections
import dataclasses
import hashlib
import json
import os
import re
import time

import apache_beam as beam
from absl import logging
from apache_beam.options.pipeline_options import PipelineOptions

from data_pipelines import camera_check, sources, spec

PROGRESS_EVERY = 50


def split_of(group, test_fraction):
    """`"test"` for a fixed `test_fraction` of the groups (by a hash of the name), else train."""
    digest = hashlib.sha256(group.encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2.0**64 < test_fraction else "train"


class ReadInput(beam.DoFn):
    """One input to `(split, serialized clip, stats)` and, tagged `"skipped"`, skip records."""

    def __init__(self, source, root, options, encoding, jpeg_quality):
        self.source, self.root, self.options = source, root, options
        self.encoding, self.jpeg_quality = encoding, jpeg_quality
        self.inputs = beam.metrics.Metrics.counter("convert", "inputs")
        self.clips = beam.metrics.Metrics.counter("convert", "clips")
        self.skipped = beam.metrics.Metrics.counter("convert", "skipped")

    def setup(self):
        self.done, self.started = 0, time.perf_counter()

    def _skip(self, path, reason):
        self.skipped.inc()
        logging.warning("Skipped %s: %s", path, reason)
        return beam.pvalue.TaggedOutput("skipped", {"path": path, "reason": reason})

    def process(self, item):
        results = sources.read_input(self.source, item, self.root, self.options)
        while True:
            try:
                result = next(results)
            except StopIteration:
                break
            except Exception as error:  # a reader bug must not stop the other inputs
                yield self._skip(str(item), f"unexpected {type(error).__name__}: {error}")
                break
            if isinstance(result, sources.Skipped):
                yield self._skip(result.path, result.reason)
                continue
            try:
                example = spec.clip_to_example(result, self.encoding, self.jpeg_quality)
            except ValueError as error:
                yield self._skip(result.clip_id, str(error))
                continue
            self.clips.inc()
            split = result.split or split_of(
                result.group or result.clip_id, self.options.test_fraction
            )
            stats = {
                "label": result.label,
                "frames": int(len(result.frames)),
                "features": list(result.optional_features()),
            }
            if sources.get(self.source).recorded:
                stats["recording"] = result.source
                stats["camera"] = camera_check.measure_clip(result.frames)
            yield split, example, stats
        self.inputs.inc()
        self.done += 1
        if self.done % PROGRESS_EVERY == 0:
            logging.info(
                "This worker has read %d inputs (%.1f inputs/s).",
                self.done,
                self.done / (time.perf_counter() - self.started),
            )


def _summarize(stats):
    """Counts of an iterable of `(split, stats)`: clips, frames, per class, features seen."""
    splits = {
        s: {
            "clips": 0,
            "frames": 0,
            "min_frames": 0,
            "max_frames": 0,
            "per_class": collections.Counter(),
        }
        for s in spec.SPLITS
    }
    features = collections.Counter()
    for split, item in stats:
        counts = splits[split]
        counts["min_frames"] = min(counts["min_frames"] or item["frames"], item["frames"])
        counts["max_frames"] = max(counts["max_frames"], item["frames"])
        counts["clips"] += 1
        counts["frames"] += item["frames"]
        splits[split]["per_class"][item["label"] or "(none)"] += 1
        features[tuple(item["features"])] += 1
    for value in splits.values():
        value["per_class"] = dict(sorted(value["per_class"].items()))
    return splits, features


# The files a conversion writes; only these are ever replaced by --overwrite.
_OUTPUT_NAME = re.compile(r"^((train|test)-\d{5}-of-\d{5}\.tfrecord|dataset\.json|_convert_.*)$")


def existing_outputs(output):
    """Files of an earlier conversion in `output`: its shards, dataset.json, side files."""
    import tensorflow as tf

    if not tf.io.gfile.isdir(output):
        return []
    return sorted(
        os.path.join(output, name)
        for name in tf.io.gfile.listdir(output)
        if _OUTPUT_NAME.match(name)
    )


def check_options(source, root, output, options, jpeg_quality, num_shards):
    """Every setting checked before the pipeline starts, each error naming its flag."""

    def fail(flag, value, requirement):
        raise ValueError(f"--{flag}={value!r}: {requirement}")

    if not output:
        raise ValueError("--output is required.")
    if not 0.0 <= options.test_fraction < 1.0:
        fail("test_fraction", options.test_fraction, "must be in [0, 1)")
    if options.split not in sources.SPLIT_MODES:
        fail("split", options.split, f"must be one of {sources.SPLIT_MODES}")
    entry = sources.get(source)
    if options.split == "time":
        if not entry.recorded:
            fail(
                "split",
                options.split,
                f"cuts recordings in time: --source={source} has none to cut (use it with "
                f"--source={' or '.join(sources.recorded_names())})",
            )
        if not options.test_fraction:
            fail("test_fraction", options.test_fraction, "must be > 0 with --split=time")
    if num_shards < 1:
        fail("num_shards", num_shards, "must be >= 1")
    if options.size < 1:
        fail("image_size", options.size, "must be >= 1")
    if options.resize not in sources.RESIZE_MODES:
        fail("resize", options.resize, f"must be one of {sources.RESIZE_MODES}")
    if options.min_frames < 2:
        fail("frames_per_clip", options.min_frames, "must be >= 2 (one pair of frames)")
    if options.clip_length < 0 or 0 < options.clip_length < options.min_frames:
        fail(
            "clip_length",
            options.clip_length,
            f"must be 0 (whole inputs) or >= --frames_per_clip={options.min_frames}",
        )
    if options.fps < 0:
        fail("fps", options.fps, "must be >= 0")
    if options.max_frames < 0:
        fail("max_frames", options.max_frames, "must be >= 0")
    if not 1 <= jpeg_quality <= 100:
        fail("jpeg_quality", jpeg_quality, "must be in [1, 100]")
    if options.num_clips < 1:
        fail("num_clips", options.num_clips, "must be >= 1")
    length = entry.rendered_length(options) if entry.rendered else None
    if length is not None and length < options.min_frames:
        fail("frames_per_clip", options.min_frames, f"must be <= the clips' {length} frames")
    entry.check(options, fail)
    if not entry.rendered and root and not output.startswith(("gs://", "s3://")):
        inside = os.path.realpath(output) + os.sep
        if inside.startswith(os.path.realpath(root) + os.sep):
            fail("output", output, f"must not be --input={root!r} or inside it")


def _clear_output(output, overwrite):
    """Creates `output`, removing an earlier conversion's files from it only with `overwrite`."""
    import tensorflow as tf

    old = existing_outputs(output)
    if old and not overwrite:
        raise ValueError(
            f"--output={output!r} already holds a conversion ({len(old)} files, e.g. "
            f"{os.path.basename(old[0])}). Pass --overwrite to replace it, or use a new folder."
        )
    for path in old:
        tf.io.gfile.remove(path)
    tf.io.gfile.makedirs(output)


def _run_pipeline(inputs, output, side, read_input, num_shards, beam_args):
    """The Beam pipeline: reads the inputs in parallel, writes each split's shards, and beside
    them (under the `side` prefix) the clips' statistics and the skipped inputs as JSON lines."""
    shards = {"train": num_shards, "test": max(1, num_shards // 4)}
    with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
        results = (
            pipeline
            | "Inputs" >> beam.Create(inputs)
            | "Reshuffle" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(read_input).with_outputs("skipped", main="clips")
        )
        for split in spec.SPLITS:
            (
                results.clips
                | f"Select {split}" >> beam.Filter(lambda x, s=split: x[0] == s)
                | f"Serialized {split}" >> beam.Map(lambda x: x[1])
                | f"Write {split}"
                >> beam.io.WriteToTFRecord(
                    os.path.join(output, split),
                    file_name_suffix=".tfrecord",
                    num_shards=shards[split],
                )
            )
        (
            results.clips
            | "Stats" >> beam.Map(lambda x: json.dumps([x[0], x[2]]))
            | "Write stats" >> beam.io.WriteToText(side + "_stats", file_name_suffix=".jsonl")
        )
        (
            results.skipped
            | "Skips" >> beam.Map(json.dumps)
            | "Write skips" >> beam.io.WriteToText(side + "_skipped", file_name_suffix=".jsonl")
        )


def _read_side_lines(prefix):
    """The JSON lines of the files starting with `prefix`, which are then removed."""
    import tensorflow as tf

    lines = []
    for path in sorted(tf.io.gfile.glob(prefix + "*")):
        with tf.io.gfile.GFile(path) as f:
            lines.extend(json.loads(line) for line in f if line.strip())
        tf.io.gfile.remove(path)
    return lines


def convert(
    source,
    root,
    output,
    options,
    encoding="png",
    jpeg_quality=95,
    num_shards=8,
    overwrite=False,
    beam_args=(),
):
    """Runs the conversion pipeline and writes `dataset.json`; returns its `DatasetInfo`.

    Raises:
        ValueError: naming the flag or path when a setting is out of range, the input is
            missing or empty, the output is inside the input or already holds records (without
            `overwrite`), or no clip could be converted.
    """
    import tensorflow as tf

    check_options(source, root, output, options, jpeg_quality, num_shards)
    inputs = sources.list_inputs(source, root, options)
    _clear_output(output, overwrite)
    logging.info("Converting %d inputs of --source=%s to %s.", len(inputs), source, output)
    started = time.perf_counter()
    side = os.path.join(output, "_convert")
    read_input = ReadInput(source, root, options, encoding, jpeg_quality)
    _run_pipeline(inputs, output, side, read_input, num_shards, beam_args)

    stats = _read_side_lines(side + "_stats")
    skipped = sorted(_read_side_lines(side + "_skipped"), key=lambda s: (s["path"], s["reason"]))
    splits, features = _summarize(stats)
    recordings = camera_check.summarize(
        (item["recording"], item["frames"], item["camera"]) for _, item in stats if "camera" in item
    )
    if not stats:
        raise ValueError(
            f"No clip of --input={root!r} could be converted; {len(skipped)} skipped, e.g. "
            f"{skipped[:3]}."
        )
    if len(features) > 1:
        raise ValueError(f"Clips of one data set hold different feature lists: {dict(features)}")
    for split in spec.SPLITS:
        splits[split]["files"] = sorted(
            os.path.basename(p) for p in tf.io.gfile.glob(os.path.join(output, f"{split}-*"))
        )
    info = spec.DatasetInfo(
        features=tuple(next(iter(features))),
        encoding=encoding,
        height=options.size,
        width=options.size,
        splits=splits,
        skipped=skipped,
        source=source,
        options={"input": root, **dataclasses.asdict(options)},
        recordings=recordings,
    )
    info.write(output)
    for line in camera_check.warnings(recordings):
        logging.warning(line)
    seconds = time.perf_counter() - started
    frames = sum(s["frames"] for s in splits.values())
    logging.info(
        "Wrote %d train and %d test clips (%d frames, %.1f frames/s) to %s; skipped %d.",
        splits["train"]["clips"],
        splits["test"]["clips"],
        frames,
        frames / max(seconds, 1e-9),
        output,
        len(skipped),
    )
    return info
