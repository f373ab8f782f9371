"""`--data=tfrecord:DIR`: a folder of records written by `python -m data_pipelines.convert`.

Its train split trains, with windows at random offsets in its clips; its test split evaluates
(validation uses its first clips too). Ground truth is there when the conversion kept it (the
synthetic source, BAIR's end-effector positions are not masks): `dataset.json` lists the features.
"""

import numpy as np
import tensorflow as tf

from data_pipelines import datasets, records, spec
from data_pipelines.sources import natural_key


@datasets.register
class RecordSource(datasets.DataSource):
    """A converted data set in `directory`."""

    kind = "tfrecord"
    usage = "tfrecord:DIR"
    help = "a folder written by `python -m data_pipelines.convert`"

    def __init__(self, directory):
        self.directory = directory
        self._recordings = None

    @classmethod
    def from_config(cls, location, config):
        return cls(location)

    @property
    def has_masks(self):
        return "masks" in spec.DatasetInfo.read(self.directory).features

    def check(self, frames_per_clip, clip_length=None):
        """The folder must hold a converted data set whose train and test splits have clips,
        train clips of `frames_per_clip` frames (else the training stream would never yield)
        and test clips of `clip_length` frames (else validation and evaluation have none)."""
        flag = f"--data='tfrecord:{self.directory}'"
        if not tf.io.gfile.isdir(self.directory):
            raise ValueError(f"{flag}: {self.directory!r} is not a folder.")
        info = spec.DatasetInfo.read(self.directory)
        for split in spec.SPLITS:
            records.shard_files(self.directory, split, info)
            if not info.splits[split]["clips"]:
                raise ValueError(
                    f"{flag}: the {split} split has no clips; convert again with a "
                    "--test_fraction that leaves clips in both splits."
                )
        longest = info.splits["train"].get("max_frames", frames_per_clip)
        if longest < frames_per_clip:
            raise ValueError(
                f"--frames_per_clip={frames_per_clip}: the train clips of {self.directory!r} "
                f"have at most {longest} frames."
            )
        longest = info.splits["test"]["max_frames"]
        if clip_length is not None and longest < clip_length:
            raise ValueError(
                f"--clip_length={clip_length}: the test clips of {self.directory!r}, which "
                f"validate and evaluate, have at most {longest} frames; lower it or convert "
                "longer clips."
            )

    def longest_test_clip(self):
        return spec.DatasetInfo.read(self.directory).splits["test"]["max_frames"]

    def training_windows(self, frames_per_clip, seed, start_index, background=False):
        """`records.record_windows` seeded by `(seed, start_index)`: a resumed run gets a fresh
        deterministic stream, not the continuation of the old one."""
        stream_seed = records.stream_seed(seed, start_index)
        return records.record_windows(
            self.directory, "train", frames_per_clip, seed=stream_seed, background=background
        )

    def splits_by_worker(self, num_workers):
        """Each worker reads its own shards, where the train split has one per worker or more."""
        shards = len(spec.DatasetInfo.read(self.directory).splits["train"]["files"])
        return shards >= num_workers

    def worker_windows(self, frames_per_clip, seed, start_index, worker, background=False):
        """`records.record_windows` over the train shards `index`, `index + num_workers`, ...
        of `worker = (index, num_workers)`."""
        return records.record_windows(
            self.directory,
            "train",
            frames_per_clip,
            seed=records.stream_seed(seed, start_index, worker[0]),
            background=background,
            shard=worker,
        )

    def evaluation_clips(self, split, num_clips, clip_length, seed):
        """The first `num_clips` windows of `clip_length` frames of the test split, each clip
        cut into as many as it holds (`records.first_clips`), with the recording each comes
        from (`"sources"`) and `"offsets"` from the centroids when the data set has them.

        Raises:
            ValueError: naming the folder when the split has no clip that long.
        """
        del split, seed  # the test split serves validation and evaluation, in order
        info = spec.DatasetInfo.read(self.directory)
        keys = ["frames"] + [k for k in ("masks", "centroids") if k in info.features]
        clips = records.read_clips(self.directory, "test", shuffle=False, repeat=False)
        where = f"{self.directory!r}: the test"
        out = records.first_clips(clips, num_clips, clip_length, keys + ["source"], where)
        out["sources"] = np.array([s.decode("utf-8") for s in out.pop("source")])
        if "centroids" in out:
            out["offsets"] = np.diff(out["centroids"], axis=1)
        return out

    def recording_frames(self, recording):
        """The frames of `recording`'s train clips (else its test clips), joined in the order
        of their clip ids: the order of the recording for videos and frame folders."""
        if self._recordings is None:
            self._recordings = {}
            for split in reversed(spec.SPLITS):  # train, read last, wins
                clips = records.read_clips(self.directory, split, shuffle=False, repeat=False)
                found = {}
                for clip in clips:
                    key = natural_key(clip["clip_id"].numpy().decode("utf-8"))
                    found.setdefault(clip["source"].numpy().decode("utf-8"), []).append(
                        (key, clip["frames"].numpy())
                    )
                for source, parts in found.items():
                    parts.sort(key=lambda part: part[0])
                    self._recordings[source] = np.concatenate([part[1] for part in parts])
        return self._recordings.get(recording)
