"""Generates a video from one image and a trajectory of controls.

    python -m fgbg_keras.generate --model_dir=runs/synthetic --image=in.png \
        --trajectory="2,0;2,0;0,-1" --steps=30 --output=out.gif [--mask_mode=carry|reestimate] \
        [--overlay] [--scale=4]
    python -m fgbg_keras.generate --model_dir=runs/synthetic --image=in.jpg \
        --affine_file=controls.txt --steps=12 --output=out.mp4

The image (png, jpeg, gif, bmp, ...; grayscale, palette and RGBA are converted to RGB, alpha
composited over white) is resized to the model's frame size by the training preprocessing. Controls
are given in pixels of the input image and converted to model pixels (`fgbg_keras.controls` says
how `--trajectory` and `--affine_file` are written); a trajectory shorter than `--steps` repeats
its last control.

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

from data_pipelines.checks import check_int
from data_pipelines.preprocess import preprocess_frames
from fgbg_keras import controls as user_controls
from fgbg_keras import flags as fgbg_flags
from fgbg_keras import mask_ops, rollout, runs
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


FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        if (FLAGS.trajectory is None) == (FLAGS.affine_file is None):
            raise ValueError("Give exactly one of --trajectory and --affine_file.")
        if FLAGS.trajectory is not None:
            offsets = user_controls.parse_trajectory(FLAGS.trajectory)
            controls = np.asarray(mask_ops.translation_controls(offsets))
        else:
            controls = user_controls.read_affine_file(FLAGS.affine_file)
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
    fgbg_flags.define_generate_flags()
    flags.adopt_module_key_flags(fgbg_flags)
    app.run(main)
