"""`--data=synthetic`: the built-in set of textured sprites over photos, generated on the fly.

Its clips carry every ground truth: masks, centroids and the sprite's offsets (the true
controls). The sprites' sizes and speeds scale with `--image_size`; `--num_train_clips` clips of
`--clip_length` frames train, and the validation and test splits are generated alike.
"""

from data_pipelines import datasets, pipeline, synthetic


@datasets.register
class SyntheticSource(datasets.DataSource):
    """The built-in synthetic set at a frame size.

    Args:
        image_size: the frames' height and width.
        clip_length: frames per clip.
        num_train_clips: clips in the training split.
    """

    kind = "synthetic"
    usage = "synthetic"
    help = "the built-in set, generated on the fly"

    def __init__(self, image_size, clip_length, num_train_clips):
        self.config = synthetic.scaled_config(image_size, clip_length)
        self.num_train_clips = num_train_clips

    @classmethod
    def from_config(cls, location, config):
        return cls(config.model.image_size, config.train.clip_length, config.train.num_train_clips)

    @property
    def has_controls(self):
        return True

    @property
    def has_masks(self):
        return True

    def training_windows(self, frames_per_clip, seed, start_index, background=False):
        """`pipeline.clip_windows` over the training split: element k depends on `(seed, k)`
        alone, so a resumed run sees exactly the stream an uninterrupted one does."""
        clips = synthetic.make_split("train", self.num_train_clips, self.config, seed=seed)
        return pipeline.clip_windows(
            clips, frames_per_clip, seed, start_index, background=background
        )

    def evaluation_clips(self, split, num_clips, clip_length, seed):
        config = synthetic.scaled_config(self.config.image_size, clip_length)
        return synthetic.make_split(split, num_clips, config, seed=seed)
