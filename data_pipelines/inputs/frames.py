"""`--source=frames`: folders of frames, `ROOT/<class>/<clip>/<frame>.png|jpg` (the class kept
as the label) or `ROOT/<clip>/<frame>.png|jpg`."""

import os

from PIL import Image, UnidentifiedImageError

from data_pipelines import sources
from data_pipelines.sources import Skipped, files, fit_frame, recording_clips, relative, to_rgb

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


@sources.register("frames")
class FrameFolders(sources.Source):
    """Each folder of images is one recording."""

    recorded = True
    wanted = "frame folders ROOT/<class>/<clip>/<frame>.png|jpg"

    def find(self, root):
        found = []
        for first in sorted(os.listdir(root), key=sources.natural_key):
            path = os.path.join(root, first)
            if not os.path.isdir(path):
                continue
            if files(path, IMAGE_EXTENSIONS):
                found.append(path)
            for second in sorted(os.listdir(path), key=sources.natural_key):
                clip = os.path.join(path, second)
                if os.path.isdir(clip) and files(clip, IMAGE_EXTENSIONS):
                    found.append(clip)
        return found

    def read(self, item, root, options):
        yield from read_frame_folder(item, root, options)


def read_frame_folder(path, root, options):
    """Clips of one frame folder; an unreadable frame splits the clip and is skipped."""
    group = relative(path, root)
    label = os.path.basename(os.path.dirname(path)) if os.path.dirname(group) else ""
    frames = []
    for name in files(path, IMAGE_EXTENSIONS):
        frame_path = os.path.join(path, name)
        try:
            with Image.open(frame_path) as image:
                frames.append(fit_frame(to_rgb(image), options.size, options.resize))
        except (UnidentifiedImageError, OSError, ValueError) as error:
            yield Skipped(frame_path, f"unreadable image: {type(error).__name__}: {error}")
            frames.append(None)
    yield from recording_clips(frames, group, path, options, label=label)
