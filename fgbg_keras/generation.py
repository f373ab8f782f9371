"""A video from one image file and a trajectory of controls, written to a file (the library of
`python -m fgbg_keras.generate`).

The image (png, jpeg, gif, bmp, ...; grayscale, palette and RGBA are converted to RGB, alpha
composited over white) is resized to the model's frame size by the training preprocessing.
Controls are given in pixels of the input image and converted to model pixels; a trajectory
shorter than the steps asked for repeats its last control.
"""

import time

import numpy as np
import tensorflow as tf
from absl import logging

from data_pipelines.preprocess import preprocess_frames
from fgbg_common.checks import check_int
from fgbg_keras import controls as user_controls
from fgbg_keras import rollout, runs
from fgbg_keras.media import check_output, display_frames, load_image, write_frames


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
    check_int("scale", scale, flag=True)
    check_output(output)
    controls = user_controls.repeat_last(np.asarray(controls, np.float32), steps)
    image = load_image(image_path)

    run = runs.restore_networks(model_dir)
    size = run.config.model.image_size
    controls = user_controls.to_model_pixels(controls, image.shape[:2], (size, size))
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
