r"""Converts videos, frame folders, BAIR records, or renders the synthetic or pushing set, to
sharded TFRecords.

    python -m data_pipelines.convert --source=videos --input=DIR --output=OUT --image_size=64
    python -m data_pipelines.convert --source=pushing --num_clips=N --output=OUT --image_size=64

writes `OUT/train-SSSSS-of-NNNNN.tfrecord` and `OUT/test-...` (`tf.train.SequenceExample`s of
`data_pipelines.spec`) and `OUT/dataset.json`: the feature spec, counts (clips, frames, per
class) per split, every skipped input with its reason (`data_pipelines.conversion`), and for
videos and frame folders the camera check of each recording (`data_pipelines.camera_check`),
with a one-line warning naming those whose camera moves or in which almost nothing moves.
`--split=time` holds out the last `--test_fraction` of each recording for the test split, so
one long video gives both.

The conversion is an Apache Beam pipeline. It runs on the DirectRunner by default; flags this
program does not define are Beam pipeline options, passed on unchanged, e.g.
`--direct_running_mode=multi_processing --direct_num_workers=4`, or another runner's options.
`--output` may be a `gs://` path; inputs must be on a file system that every worker mounts at
the same path.
"""

import os
import sys

from absl import app, flags
from apache_beam.options.pipeline_options import PipelineOptions

from data_pipelines import conversion, pushing, sources, spec

FLAGS = flags.FLAGS


def define_flags():
    """This program's flags; defined when it runs, so that importing the module never collides
    with `train.py`'s flags of the same name."""
    flags.DEFINE_enum("source", None, sources.names(), "What --input holds.")
    flags.DEFINE_string(
        "input",
        None,
        "Folder of the inputs (not read for the rendered sets, --source=synthetic or pushing).",
    )
    flags.DEFINE_string("output", None, "Folder to write the shards and dataset.json to.")
    flags.DEFINE_integer(
        "image_size", 64, "Side of the square frames written (train.py's --image_size)."
    )
    flags.DEFINE_alias("size", "image_size")
    flags.DEFINE_enum(
        "resize",
        "crop",
        sources.RESIZE_MODES,
        "crop: scale the short side to --image_size and cut the centre; pad: scale the long side "
        "and pad with black.",
    )
    flags.DEFINE_float("fps", 0.0, "Resample videos to this frame rate; 0 keeps every frame.")
    flags.DEFINE_integer("max_frames", 0, "Read at most this many frames of each video; 0: all.")
    flags.DEFINE_integer(
        "clip_length",
        0,
        "Cut videos and frame folders into clips of this many frames (0: one clip per input; "
        "the synthetic set: 16, the pushing set: 30).",
    )
    flags.DEFINE_integer(
        "frames_per_clip", 2, "Skip clips with fewer frames than this (training's setting)."
    )
    flags.DEFINE_enum(
        "split",
        "recording",
        sources.SPLIT_MODES,
        "recording: each recording (every clip cut from one video or frame folder) goes wholly "
        "to train or to test, chosen by a hash of its name. time: the last --test_fraction of "
        "each recording's frames is test and the rest train, no clip straddling the cut, so one "
        "long video gives both splits (videos and frame folders).",
    )
    flags.DEFINE_float(
        "test_fraction",
        0.1,
        "Fraction of the recordings (--split=recording) or of each recording's frames "
        "(--split=time) written to the test split.",
    )
    flags.DEFINE_enum("encoding", "png", spec.ENCODINGS, "How frames are encoded.")
    flags.DEFINE_integer("jpeg_quality", 95, "JPEG quality, with --encoding=jpeg.")
    flags.DEFINE_integer(
        "num_shards",
        8,
        "Shards of the train split; the test split has 1/4. Under --strategy=multi_worker each "
        "worker reads its own train shards: convert at least one per worker.",
    )
    flags.DEFINE_integer("num_clips", 1000, "--source=synthetic or pushing: clips to render.")
    flags.DEFINE_integer("seed", 0, "--source=synthetic or pushing: the seed of the clips.")
    pushing.define_flags()
    flags.DEFINE_bool(
        "overwrite", False, "Replace the records of an earlier conversion in --output."
    )


def _parse_flags(argv):
    """absl flags for this program; the other arguments are Beam pipeline options."""
    return FLAGS(argv, known_only=True)


def main(argv):
    beam_args = argv[1:]
    stray = [a for a in beam_args if not a.startswith("--")]
    if stray:
        raise app.UsageError(f"Unexpected arguments: {stray}")
    beam_options = PipelineOptions(beam_args)
    unknown = set(beam_options.get_all_options(retain_unknown_options=True)) - set(
        beam_options.get_all_options()
    )
    if unknown:
        raise app.UsageError(
            f"Unknown flags {sorted('--' + u for u in unknown)}: neither a flag of this program "
            "(see --help) nor a Beam pipeline option."
        )
    if FLAGS.source is None:
        raise app.UsageError("--source is required: one of " + ", ".join(sources.names()))
    options = sources.Options(
        size=FLAGS.image_size,
        resize=FLAGS.resize,
        fps=FLAGS.fps,
        max_frames=FLAGS.max_frames,
        clip_length=FLAGS.clip_length,
        min_frames=FLAGS.frames_per_clip,
        split=FLAGS.split,
        test_fraction=FLAGS.test_fraction,
        num_clips=FLAGS.num_clips,
        seed=FLAGS.seed,
        pushing=pushing.PushingOptions.from_flags(FLAGS.flag_values_dict()),
    )
    try:
        info = conversion.convert(
            FLAGS.source,
            FLAGS.input,
            FLAGS.output,
            options,
            encoding=FLAGS.encoding,
            jpeg_quality=FLAGS.jpeg_quality,
            num_shards=FLAGS.num_shards,
            overwrite=FLAGS.overwrite,
            beam_args=beam_args,
        )
    except ValueError as error:
        sys.exit(f"Error: {error}")
    sys.stdout.write(
        f"{info.splits['train']['clips']} train / {info.splits['test']['clips']} test clips, "
        f"{len(info.skipped)} skipped: {os.path.join(FLAGS.output, spec.INFO_FILE)}\n"
    )


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=_parse_flags)
