"""`--source=pushing`: the built-in robot-pushing set, rendered here with all its ground
truth."""

import numpy as np

from data_pipelines import pushing, sources, spec


@sources.register("pushing")
class PushingClips(sources.Source):
    """`--num_clips` clips of the arm pushing objects (30 frames unless `--clip_length`)."""

    rendered = True
    clip_length = pushing.CLIP_LENGTH

    def read(self, item, root, options):
        yield from read_pushing(item, options, self.rendered_length(options))

    def check(self, options, fail):
        pushing.check_size(options.size)
        options.pushing.check()


def read_pushing(index, options, length):
    """Pushing clip `index` of `length` frames, with all its ground truth. A model that fails
    to load or a render that fails raises; `conversion` skips the clip and names it."""
    values = pushing.generate_clip(
        np.random.SeedSequence([options.seed, 4, index]), options.size, length, options.pushing
    )
    yield spec.Clip(
        f"pushing/{index:06d}",
        "pushing",
        values["frames"],
        fps=10.0,
        masks=values["masks"],
        centroids=values["centroids"],
        actions=values["actions"],
        endeffector_pos=values["endeffector_pos"],
        agent_masks=values["agent_masks"],
        endeffector_xy=values["endeffector_xy"],
    )
