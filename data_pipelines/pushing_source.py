"""`--data=pushing`: the built-in robot-pushing set (`data_pipelines.pushing`), rendered on the CPU.

Its clips carry every ground truth: the moving foreground's masks, the arm's own masks
(`"agent_masks"`), the arm's centroids, and the arm's steps (the true controls). The training
split (`--num_train_clips` clips of `--clip_length` frames) renders once when the run starts, in
one process per CPU; the validation and test splits render alike. The `--pushing_*` flags set the
scene's real-video nuisances.
"""

from data_pipelines import datasets, pipeline, pushing


@datasets.register
class PushingSource(datasets.DataSource):
    """The pushing set at a frame size.

    Args:
        image_size: the frames' side, a multiple of 16.
        clip_length: frames per clip.
        num_train_clips: clips in the training split.
        options: `pushing.PushingOptions`.
        cache_dir: where rendered splits are kept between runs (`--data_cache_dir`), or "".
    """

    kind = "pushing"
    usage = "pushing"
    help = "a robot arm pushing objects in a bin, rendered with pybullet (the --pushing_* flags)"

    def __init__(self, image_size, clip_length, num_train_clips, options, cache_dir=""):
        self.image_size = image_size
        self.clip_length = clip_length
        self.num_train_clips = num_train_clips
        self.options = options
        self.cache_dir = cache_dir

    @classmethod
    def from_config(cls, location, config):
        return cls(
            config.model.image_size,
            config.train.clip_length,
            config.train.num_train_clips,
            config.pushing.options(),
            config.train.data_cache_dir,
        )

    @property
    def has_controls(self):
        return True

    @property
    def has_masks(self):
        return True

    def check(self, frames_per_clip, clip_length=None):
        pushing.check_size(self.image_size, "image_size")
        self.options.check()

    def _split(self, split, num_clips, clip_length, seed):
        return pushing.make_split(
            split,
            num_clips,
            self.image_size,
            clip_length,
            self.options,
            seed=seed,
            cache_dir=self.cache_dir,
        )

    def training_windows(self, frames_per_clip, seed, start_index, background=False):
        """`pipeline.clip_windows` over the rendered training split: element k depends on
        `(seed, k)` alone, so a resumed run sees exactly the stream an uninterrupted one does."""
        clips = self._split("train", self.num_train_clips, self.clip_length, seed)
        clips.pop("agent_masks")
        return pipeline.clip_windows(
            clips, frames_per_clip, seed, start_index, background=background
        )

    def evaluation_clips(self, split, num_clips, clip_length, seed):
        return self._split(split, num_clips, clip_length, seed)
