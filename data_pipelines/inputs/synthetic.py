"""`--source=synthetic`: the built-in synthetic set, rendered here with its ground truth."""

import numpy as np

from data_pipelines import sources, spec

SYNTHETIC_CLIP_LENGTH = 16


@sources.register("synthetic")
class SyntheticClips(sources.Source):
    """`--num_clips` clips of sprites over photos (16 frames unless `--clip_length`)."""

    rendered = True
    clip_length = SYNTHETIC_CLIP_LENGTH

    def read(self, item, root, options):
        yield from read_synthetic(item, root, options)

    def check(self, options, fail):
        try:
            synthetic_config(options)
        except ValueError as error:
            fail("image_size", options.size, f"too small for the synthetic set's sprites: {error}")


def synthetic_config(options):
    """The `SyntheticConfig` the synthetic source makes clips with (16 frames by default)."""
    from data_pipelines import synthetic

    return synthetic.scaled_config(options.size, options.clip_length or SYNTHETIC_CLIP_LENGTH)


def read_synthetic(index, root, options):
    """Synthetic clip `index`, with its ground-truth masks and centroids."""
    from data_pipelines import synthetic

    config = synthetic_config(options)
    values = synthetic.generate_clip(np.random.SeedSequence([options.seed, 3, index]), config)
    yield spec.Clip(
        f"synthetic/{index:06d}",
        "synthetic",
        values["frames"],
        masks=values["masks"],
        centroids=values["centroids"],
    )
