"""`--source=bair`: the original BAIR robot-pushing softmotion TFRecords, with actions and
end-effector positions."""

import os

import numpy as np

from data_pipelines import sources, spec
from data_pipelines.sources import Skipped, fit_frame, relative

BAIR_FRAMES = 30
BAIR_SIZE = 64


@sources.register("bair")
class BairRecords(sources.Source):
    """Every file under `--input` whose name contains `.tfrecord`."""

    wanted = "files named *.tfrecord*"

    def find(self, root):
        return sources.walk_files(root, lambda name: ".tfrecord" in name)

    def read(self, item, root, options):
        yield from read_bair(item, root, options)


def _bair_clip(example, path, index, options):
    context = example.context.feature
    frames, actions, positions = [], [], []
    for i in range(BAIR_FRAMES):
        key = f"{i}/image_main/encoded"
        if key not in context:
            break
        raw = context[key].bytes_list.value[0]
        if len(raw) != BAIR_SIZE * BAIR_SIZE * 3:
            return Skipped(f"{path}#{index}", f"{key} holds {len(raw)} bytes, not 64x64x3")
        frame = np.frombuffer(raw, np.uint8).reshape(BAIR_SIZE, BAIR_SIZE, 3)
        frames.append(fit_frame(frame, options.size, options.resize))
        actions.append(list(context[f"{i}/action"].float_list.value))
        positions.append(list(context[f"{i}/endeffector_pos"].float_list.value))
    if len(frames) < options.min_frames:
        return Skipped(f"{path}#{index}", f"{len(frames)} frames, fewer than --frames_per_clip")
    try:
        actions = np.asarray(actions, np.float32).reshape(len(frames), 4)
        positions = np.asarray(positions, np.float32).reshape(len(frames), 3)
    except ValueError:
        return Skipped(f"{path}#{index}", "actions or end-effector positions of the wrong size")
    return frames, actions, positions


def read_bair(path, root, options):
    """The videos of one original BAIR softmotion TFRecord file (30 frames each).

    Each record is a `tf.train.Example` whose features hold, for frame i,
    `{i}/image_main/encoded` (raw 64x64x3 uint8 bytes), `{i}/action` (4 floats) and
    `{i}/endeffector_pos` (3 floats); it is parsed as a `SequenceExample`, whose context has the
    same wire format, so records written either way read the same. The official split is kept:
    files under a `test` folder go to the test split, the others to train. A record file cut
    short keeps the videos before the cut.
    """
    import tensorflow as tf

    group = relative(path, root)
    split = "test" if "test" in os.path.normpath(group).split(os.sep)[:-1] else "train"
    index, consumed = 0, 0
    try:
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            consumed += len(record) + 16  # length, its CRC, the data, its CRC
            try:
                example = tf.train.SequenceExample.FromString(record)
            except Exception as error:  # protobuf's DecodeError, whose module varies
                yield Skipped(f"{path}#{index}", f"not a SequenceExample: {error}")
                index += 1
                continue
            result = _bair_clip(example, path, index, options)
            if isinstance(result, Skipped):
                yield result
            else:
                frames, actions, positions = result
                yield spec.Clip(
                    f"{group}#{index}",
                    path,
                    np.stack(frames),
                    actions=actions,
                    endeffector_pos=positions,
                    split=split,
                )
            index += 1
    except tf.errors.OpError as error:
        yield Skipped(path, f"record file unreadable after {index} videos: {error.message}")
        return
    # tf.data ends quietly at a record cut off by the end of the file; say so.
    size = tf.io.gfile.stat(path).length
    if consumed != size:
        yield Skipped(
            path,
            f"record file unreadable after {index} videos: it ends inside a record "
            f"({size - consumed} bytes left over); the videos before were kept",
        )
