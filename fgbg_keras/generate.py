"""Generates a video from one image and a trajectory of controls.

    python -m fgbg_keras.generate --model_dir=runs/synthetic --image=in.png \
        --trajectory="2,0;2,0;0,-1" --steps=30 --output=out.gif [--mask_mode=carry|reestimate] \
        [--overlay] [--scale=4]
    python -m fgbg_keras.generate --model_dir=runs/synthetic --image=in.jpg \
        --affine_file=controls.txt --steps=12 --output=out.mp4

The image (png, jpeg, gif, bmp, ...; grayscale, palette and RGBA are converted to RGB, alpha
composited over white) is resized to the model's frame size by the training preprocessing. Controls
are given in pixels of the input image and converted to model pixels; a trajectory shorter than
`--steps` repeats its last control. `--trajectory` is "dx,dy" per step, separated by ";".
`--affine_file` holds one control per line, "a11 a12 tx a21 a22 ty": the object's pixels p move to
`c + L (p - c) + t` about its centroid c, with (x, y) = (column, row) and y pointing down (see
`fgbg_keras.rollout`).

Writes `.gif` (10 fps, looping), `.mp4` (H.264, yuv420p) or `.png` (all frames side by side); frame
0 is the input frame, then one frame per step. If the object leaves the frame, a warning names the
step and the following frames show the background only. Prints the path written and the time per
generated frame.
"""

import sys
import time

import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from data_pipelines.preprocess import preprocess_frames, to_uint8
from fgbg_keras import mask_ops, metrics, rollout
from fgbg_keras.media import check_output, load_image, write_frames
from fgbg_keras.training import loop


def parse_trajectory(text):
    """Parses "dx,dy;dx,dy;..." into offsets `[N, 2]` float32, in input-image pixels."""
    tokens = [token.strip() for token in (text or "").split(";")]
    if not any(tokens):
        raise ValueError(f'--trajectory={text!r}: give at least one step "dx,dy".')
    offsets = []
    for index, token in enumerate(tokens, start=1):
        parts = token.split(",")
        try:
            values = [float(part) for part in parts]
        except ValueError:
            values = []
        if len(values) != 2 or not np.all(np.isfinite(values)):
            raise ValueError(
                f'--trajectory={text!r}: step {index} is {token!r}, not "dx,dy" (two numbers).'
            )
        offsets.append(values)
    return np.asarray(offsets, np.float32)


def read_affine_file(path):
    """Reads one control per line, "a11 a12 tx a21 a22 ty", into `[N, 2, 3]` float32.

    Blank lines and lines starting with "#" are skipped.
    """
    try:
        with open(path) as f:
            lines = f.readlines()
    except OSError as error:
        raise ValueError(f"--affine_file={path!r} cannot be read: {error.strerror}.") from None
    controls = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            values = [float(v) for v in line.replace(",", " ").split()]
        except ValueError:
            values = []
        if len(values) != 6 or not np.all(np.isfinite(values)):
            raise ValueError(
                f"--affine_file={path!r}, line {number}: {line!r} is not six numbers "
                '"a11 a12 tx a21 a22 ty".'
            )
        controls.append(np.reshape(values, (2, 3)))
    if not controls:
        raise ValueError(f"--affine_file={path!r} holds no controls.")
    return np.asarray(controls, np.float32)


def repeat_last(controls, steps):
    """The first `steps` controls, the last one repeated as often as needed."""
    if steps < 1:
        raise ValueError(f"--steps={steps}: must be at least 1.")
    index = np.minimum(np.arange(steps), len(controls) - 1)
    return controls[index]


def to_model_pixels(controls, input_size, model_size):
    """Converts controls `[N, 2, 3]` from input-image pixels to model pixels.

    With S = diag(model_w / input_w, model_h / input_h), `[L | t]` becomes `[S L S^-1 | S t]`, so
    a translation is scaled per axis and a rotation stays a rotation of the input image's content.

    Args:
        controls: `[N, 2, 3]` affine controls in input pixels.
        input_size: `(height, width)` of the input image.
        model_size: `(height, width)` of the model's frames.
    """
    scale = np.array([model_size[1] / input_size[1], model_size[0] / input_size[0]], np.float32)
    linear = controls[:, :, :2] * scale[:, None] / scale[None, :]
    translation = controls[:, :, 2:] * scale[:, None]
    return np.concatenate([linear, translation], axis=-1).astype(np.float32)


def display_frames(frames, masks, overlay, scale):
    """Frames in [-1, 1] `[N, H, W, 3]` as uint8, tinted by `masks` if asked, upscaled."""
    if overlay:
        tinted = metrics.overlay(frames, masks)
        pixels = np.round(np.clip(np.asarray(tinted), 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        pixels = np.asarray(to_uint8(frames))
    return pixels.repeat(scale, axis=1).repeat(scale, axis=2)


def generate(
    model_dir,
    image_path,
    controls,
    steps,
    output,
    mask_mode=rollout.DEFAULT_MASK_MODE,
    overlay=False,
    scale=1,
):
    """Generates `steps` frames from an image file and writes them with the input frame first.

    Args:
        model_dir: a run directory of `train.py` (its latest checkpoint is used).
        image_path: the input image file.
        controls: `[N, 2, 3]` affine controls in input-image pixels (`mask_ops.translation_controls`
            turns offsets into controls); the last one repeats up to `steps`.
        steps: generated frames, >= 1.
        output: a `.gif`, `.mp4` or `.png` path.
        mask_mode: `"carry"` or `"reestimate"` (see `rollout.rollout`).
        overlay: tint each frame by its mask.
        scale: integer nearest-neighbour upscaling of the written frames.

    Returns:
        A dict: `"output"`, `"ms_per_frame"` (the compiled rollout's time after tracing, divided
        by `steps`), `"left_frame_at"` (the first step whose target mask is empty, or None).
    """
    if mask_mode not in rollout.MASK_MODES:
        raise ValueError(f"--mask_mode={mask_mode!r}: must be one of {rollout.MASK_MODES}.")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"--scale={scale!r}: must be a positive integer.")
    check_output(output)
    controls = repeat_last(np.asarray(controls, np.float32), steps)
    image = load_image(image_path)

    run = loop.restore_networks(model_dir)
    size = run.config.model.image_size
    controls = to_model_pixels(controls, image.shape[:2], (size, size))
    frame = preprocess_frames(image[None], size=size)
    rollout_fn = rollout.make_rollout_fn(
        run.mask_generator, run.frame_generator, mask_mode=mask_mode, image_size=size
    )
    rollout_fn.get_concrete_function()
    start = time.perf_counter()
    result = rollout_fn(frame, tf.constant(controls[None]))
    generated = result["frames"].numpy()[0]
    ms_per_frame = 1000.0 * (time.perf_counter() - start) / steps

    empty = result["empty"].numpy()[0]
    left_frame_at = int(np.argmax(empty)) + 1 if empty.any() else None
    if not np.any(result["initial_mask"].numpy()):
        logging.warning(
            "The mask network finds no object in %s: every frame shows the background only.",
            image_path,
        )
    elif left_frame_at is not None:
        logging.warning(
            "The object leaves the frame at step %d of %d: from there on the frames show the "
            "background only.",
            left_frame_at,
            steps,
        )
    frames = np.concatenate([frame.numpy(), generated])
    masks = np.concatenate([result["initial_mask"].numpy(), result["masks"].numpy()[0]])
    write_frames(output, display_frames(frames, masks, overlay, scale))
    return {"output": output, "ms_per_frame": ms_per_frame, "left_frame_at": left_frame_at}


FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        if (FLAGS.trajectory is None) == (FLAGS.affine_file is None):
            raise ValueError("Give exactly one of --trajectory and --affine_file.")
        if FLAGS.trajectory is not None:
            controls = np.asarray(mask_ops.translation_controls(parse_trajectory(FLAGS.trajectory)))
        else:
            controls = read_affine_file(FLAGS.affine_file)
        result = generate(
            FLAGS.model_dir,
            FLAGS.image,
            controls,
            FLAGS.steps,
            FLAGS.output,
            mask_mode=FLAGS.mask_mode,
            overlay=FLAGS.overlay,
            scale=FLAGS.scale,
        )
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    # The path and the timing are this command's output, not log messages.
    sys.stdout.write(
        f"Wrote {result['output']} ({FLAGS.steps} generated frames, "
        f"{result['ms_per_frame']:.1f} ms per frame)\n"
    )


if __name__ == "__main__":
    flags.DEFINE_string("model_dir", None, "The run directory of train.py.")
    flags.DEFINE_string("image", None, "The first frame: an image file of any size.")
    flags.DEFINE_string(
        "trajectory",
        None,
        'Offsets "dx,dy;dx,dy;..." in input-image pixels, one per step; the last repeats.',
    )
    flags.DEFINE_string(
        "affine_file",
        None,
        'A text file with one control "a11 a12 tx a21 a22 ty" per line (translation in '
        "input-image pixels); the last repeats. Instead of --trajectory.",
    )
    flags.DEFINE_integer("steps", 30, "Frames to generate.")
    flags.DEFINE_string("output", None, "Output file: .gif, .mp4 or .png (a strip of frames).")
    flags.DEFINE_enum(
        "mask_mode",
        rollout.DEFAULT_MASK_MODE,
        list(rollout.MASK_MODES),
        "carry: move the first mask by the controls; reestimate: re-run the mask network on "
        "each generated frame.",
    )
    flags.DEFINE_bool("overlay", False, "Tint each frame by its mask.")
    flags.DEFINE_integer("scale", 1, "Nearest-neighbour upscaling of the written frames.")
    flags.mark_flags_as_required(["model_dir", "image", "output"])
    app.run(main)
