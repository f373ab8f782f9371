"""Reading input images, drawing frames for display, writing them as GIF, MP4 or a PNG strip."""

import os

import numpy as np
import tensorflow as tf

from data_pipelines.preprocess import to_uint8

OUTPUT_FORMATS = (".gif", ".mp4", ".png")
FRAMES_PER_SECOND = 10


def load_image(path):
    """Reads an image file as uint8 RGB `[H, W, 3]` (the first frame of an animation)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.seek(0)
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            return np.asarray(image.convert("RGB"), np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ValueError(f"--image={path!r} cannot be read as an image: {reason}") from None


def overlay(frames, masks, color=(1.0, 0.15, 0.15), alpha=0.55):
    """Frames in [-1, 1] tinted by their masks, as float images in [0, 1] for display."""
    tint = tf.constant(color, tf.float32)
    weight = alpha * tf.cast(masks, tf.float32)
    return (tf.cast(frames, tf.float32) + 1.0) / 2.0 * (1.0 - weight) + tint * weight


def display_frames(frames, masks, tinted, scale):
    """Frames in [-1, 1] `[N, H, W, 3]` as uint8, tinted by `masks` if `tinted`, upscaled by
    the integer `scale` (nearest neighbour)."""
    if tinted:
        pixels = np.asarray(overlay(frames, masks))
        pixels = np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        pixels = np.asarray(to_uint8(frames))
    return pixels.repeat(scale, axis=1).repeat(scale, axis=2)


def check_output(path):
    """The output's format (its extension); raises ValueError naming --output if unusable."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in OUTPUT_FORMATS:
        raise ValueError(
            f"--output={path!r}: unknown extension {extension or '(none)'!r}; use one of "
            f"{', '.join(OUTPUT_FORMATS)}."
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"--output={path!r}: the folder {folder} does not exist.")
    return extension


def write_frames(path, frames, fps=FRAMES_PER_SECOND):
    """Writes uint8 frames `[N, H, W, 3]` as a looping GIF, an MP4 or a horizontal PNG strip.

    A GIF shows each frame for 1/fps s; Pillow's writer merges identical consecutive frames into
    one that lasts their summed time, so what a viewer shows is unchanged. MP4 is H.264 in
    yuv420p (MPEG-4 part 2 if this FFmpeg has no H.264 encoder).
    """
    from PIL import Image

    extension = check_output(path)
    if extension == ".png":
        Image.fromarray(np.concatenate(list(frames), axis=1)).save(path)
    elif extension == ".gif":
        images = [Image.fromarray(frame) for frame in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
    else:
        _write_mp4(path, frames, fps)


def _write_mp4(path, frames, fps):
    import av

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    # yuv420p stores colour at half resolution: odd sides get their last row/column repeated.
    height, width = frames.shape[1:3]
    frames = np.pad(frames, [(0, 0), (0, height % 2), (0, width % 2), (0, 0)], mode="edge")
    height, width = frames.shape[1:3]
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
