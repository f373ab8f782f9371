"""The TFLite step model of `export.step_model` in the LiteRT interpreter, driven as a phone drives
it (the library of `python -m export.preview`).

The interpreter (XNNPACK for float kernels) runs the one-step model in a loop: the first call gets
the image and an empty mask, so the model finds the object with its mask network; every later call
gets the frame and mask the previous call returned and the next control. Nothing else runs between
calls but the bookkeeping a phone app does. The model moves masks by whole model pixels, so the
loop sends the whole-pixel steps of the rounded cumulative trajectory: sub-pixel steps add up
instead of being lost.
"""

import statistics
import time

import numpy as np
from absl import logging

NAMES = ("frame", "mask", "control")


class StepModel:
    """The one-step model of `export.tflite` in a LiteRT interpreter.

    Args:
        model: the path of a `.tflite` file, or its bytes.
        num_threads: interpreter threads (None: LiteRT's default).

    Raises:
        ValueError: when the file is not a TFLite model, or not one of `export.tflite` (its
            inputs and outputs are named in the message).
    """

    def __init__(self, model, num_threads=None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ValueError(
                'The preview runs TFLite files with LiteRT: pip install -e ".[preview]" '
                "(the ai-edge-litert package)."
            ) from None

        self.name = "the model" if isinstance(model, bytes) else repr(model)
        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": model}
        try:
            self.interpreter = Interpreter(num_threads=num_threads, **source)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"--model={self.name} is not a TFLite model: {error}") from None
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        self.inputs = {k: d for d in inputs for k in NAMES if k in d["name"]}
        frame_shape = list(self.inputs["frame"]["shape"]) if "frame" in self.inputs else []
        size = int(frame_shape[1]) if len(frame_shape) == 4 else 0
        expected = {
            "frame": [1, size, size, 3],
            "mask": [1, size, size, 1],
            "control": [1, 2],
        }
        self.outputs = {int(d["shape"][-1]): d["index"] for d in outputs}
        found = {k: list(d["shape"]) for k, d in self.inputs.items()}
        if (
            size < 1
            or found != expected
            or sorted(self.outputs) != [1, 3]
            or len(outputs) != 2
            or any(d["dtype"] != np.float32 for d in inputs)
        ):
            described = ", ".join(f"{d['name']} {list(d['shape'])}" for d in inputs)
            raise ValueError(
                f"--model={self.name} is not a one-step model of export.tflite: it takes "
                f"{described or 'no inputs'}; expected float32 frame [1, S, S, 3], mask "
                "[1, S, S, 1] and control [1, 2], returning the next frame and mask."
            )
        self.image_size = size

    def __call__(self, frame, mask, control):
        """One step: float32 `frame` `[1, S, S, 3]` in [-1, 1], `mask` `[1, S, S, 1]` (all
        zeros: the model finds the object) and `control` `[1, 2]` in whole model pixels ->
        `(next_frame, next_mask)`."""
        values = {"frame": frame, "mask": mask, "control": control}
        for key, detail in self.inputs.items():
            self.interpreter.set_tensor(detail["index"], np.asarray(values[key], np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.outputs[3]), self.interpreter.get_tensor(
            self.outputs[1]
        )


def whole_pixel_steps(offsets):
    """Per-step whole-pixel controls `[T, 2]` whose running sum is the rounded running sum of
    `offsets` `[T, 2]` (model pixels): fractions carry over to later steps."""
    positions = np.round(np.cumsum(np.asarray(offsets, np.float64), axis=0))
    return np.diff(positions, axis=0, prepend=0.0).astype(np.float32)


def run_loop(model, frame, offsets):
    """Drives `model` (a `StepModel`) from `frame` `[1, S, S, 3]` for each of `offsets` `[T, 2]`
    (model pixels), feeding every output back in.

    Returns:
        A dict: `"frames"` `[T, S, S, 3]`, `"masks"` `[T, S, S, 1]`, `"controls"` (the whole-pixel
        steps sent) and `"seconds"`, the wall time of each call (set inputs, invoke, read
        outputs), the first one including the mask network.
    """
    controls = whole_pixel_steps(offsets)
    mask = np.zeros(frame.shape[:-1] + (1,), np.float32)
    frames, masks, seconds = [], [], []
    for control in controls:
        start = time.perf_counter()
        frame, mask = model(frame, mask, control[None])
        seconds.append(time.perf_counter() - start)
        frames.append(frame[0])
        masks.append(mask[0])
    return {
        "frames": np.stack(frames),
        "masks": np.stack(masks),
        "controls": controls,
        "seconds": seconds,
    }


def median_step_ms(model, threads=None, steps=30, repeats=5):
    """Median milliseconds per step of `repeats` loops of `steps` steps of `model` (a path or the
    bytes of a `.tflite` file) from a random frame, moving 1 px right and down per step; the
    first step of each loop, which runs the mask network, is left out. One untimed loop first."""
    model = StepModel(model, num_threads=threads)
    size = model.image_size
    frame = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    offsets = np.ones([steps, 2], np.float32)
    run_loop(model, frame, offsets[:2])
    seconds = []
    for _ in range(repeats):
        seconds += run_loop(model, frame, offsets)["seconds"][1:]
    return 1000 * statistics.median(seconds)


def preview(model_path, image_path, offsets, steps, output, overlay=False, scale=4, threads=None):
    """Runs the loop from an image file and writes the frames, the input first.

    Args:
        model_path: a `.tflite` file of `export.tflite`.
        image_path: the first frame, an image file of any size.
        offsets: `[N, 2]` (dx, dy) in pixels of the image; the last repeats up to `steps`.
        steps: generated frames, >= 1.
        output: a `.gif`, `.mp4` or `.png` path.
        overlay: tint each frame by its mask.
        scale: integer nearest-neighbour upscaling of the written frames.
        threads: LiteRT interpreter threads.

    Returns:
        A dict: `"output"`, `"image_size"` (the model's), `"resized_from"` (the image's (H, W)
        when it was resized, else None), `"first_ms"` (the first step, with the mask network),
        `"ms_per_frame"` (median of the later steps; the first if there is only one) and
        `"left_frame_at"` (the first step whose mask is empty, or None).
    """
    from data_pipelines.preprocess import preprocess_frames
    from fgbg_common.checks import check_int
    from fgbg_keras import mask_ops
    from fgbg_keras.controls import repeat_last
    from fgbg_keras.media import check_output, display_frames, load_image, write_frames

    check_int("scale", scale, flag=True)
    if threads is not None and threads < 1:
        raise ValueError(f"--threads={threads}: must be at least 1.")
    check_output(output)
    offsets = repeat_last(np.asarray(offsets, np.float32), steps)
    image = load_image(image_path)
    model = StepModel(model_path, num_threads=threads)
    size = model.image_size
    resized_from = None
    if image.shape[:2] != (size, size):
        resized_from = image.shape[:2]
        logging.info(
            "%s is %dx%d (WxH); the model takes %dx%d frames: resized to its input size.",
            image_path,
            image.shape[1],
            image.shape[0],
            size,
            size,
        )
    frame = np.asarray(preprocess_frames(image[None], size))
    offsets = offsets * np.array([size / image.shape[1], size / image.shape[0]], np.float32)
    result = run_loop(model, frame, offsets)

    empty = ~result["masks"].any(axis=(1, 2, 3))
    left_frame_at = int(np.argmax(empty)) + 1 if empty.any() else None
    if left_frame_at == 1:
        logging.warning("The model finds no object in %s.", image_path)
    elif left_frame_at is not None:
        logging.warning(
            "The object leaves the frame at step %d of %d; the model then looks for one again.",
            left_frame_at,
            steps,
        )
    # The mask of the input frame: the first step's mask moved back by its control.
    first_mask = mask_ops.shift_whole_pixels(result["masks"][:1], -result["controls"][:1])
    frames = np.concatenate([frame, result["frames"]])
    masks = np.concatenate([np.asarray(first_mask), result["masks"]])
    write_frames(output, display_frames(frames, masks, overlay, scale))
    later = result["seconds"][1:] or result["seconds"]
    return {
        "output": output,
        "image_size": size,
        "resized_from": resized_from,
        "first_ms": 1000.0 * result["seconds"][0],
        "ms_per_frame": 1000.0 * statistics.median(later),
        "left_frame_at": left_frame_at,
    }
