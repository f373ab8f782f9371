"""The serving graph of a trained run: named signatures over raw uint8 images, in input pixels.

- `generate` (also `serving_default`): `image` uint8 `[H, W, 3]` of any size and `controls`
  float32 `[T, 2]` ((dx, dy) per step, in pixels of the image) -> `frames` uint8
  `[T, H, W, 3]` and `masks` uint8 `[T, H, W, 1]` in {0, 1}. One `tf.while_loop` rollout
  (`fgbg_keras.rollout`, mask carried): T is dynamic and memory does not grow with it.
- `generate_encoded`: the same from `image_bytes`, one encoded image (PNG, JPEG, GIF, BMP or WebP;
  grayscale and RGBA become RGB), for clients that send files (REST: `{"b64": ...}`).
- `mask`: `image` -> `mask` uint8 `[H, W, 1]` in {0, 1}, binarize(M(image)).
- `step`: `frame` uint8 `[H, W, 3]`, its `mask` uint8 `[H, W, 1]` and one `control` `[2]` ->
  the next `frame` and `mask`, for clients that drive the loop themselves. Each step moves the
  mask it is given by the control rounded to whole model pixels; `generate` instead composes
  the controls exactly from the first mask, so sub-pixel steps add up there. Left out for a
  generator that reads the rollout's memory (`--unet_first_frame`, `--unet_previous_frame`).

The networks work at the run's frame size S: inputs are resized by `preprocess_frames`, the
very function training uses, and outputs are resized back to H x W (frames bilinearly, masks by
nearest neighbour). Bad inputs (a wrong rank or shape, not 3 channels, an empty image, bytes
that are not an image, controls that are not finite, no step, more output than
`MAX_OUTPUT_PIXELS`) stop the call with an InvalidArgument error that says what is wrong.
"""

import tensorflow as tf

from data_pipelines.preprocess import preprocess_frames, to_uint8
from fgbg_keras import mask_ops, rollout
from fgbg_keras.models import generators

IMAGE = tf.TensorSpec([None, None, None], tf.uint8, name="image")
CONTROLS = tf.TensorSpec([None, 2], tf.float32, name="controls")
# T x H x W of one `generate` answer, at most: 2**28 is T = 1000 frames at 512 x 512. Longer
# videos are several calls (`step`, or `generate` again from the last frame).
MAX_OUTPUT_PIXELS = 2**28


def _checked_image(image, name="image"):
    """Asserts a uint8 image is `[H, W, 3]` with H, W >= 1; returns `(image, (H, W))`."""
    # A loaded signature does not check the ranks of what it is fed: EnsureShape does, at run
    # time, with an error that names the input and both shapes.
    image = tf.ensure_shape(image, [None, None, None], name=name)
    shape = tf.shape(image)
    checks = [
        tf.debugging.assert_equal(
            shape[2], 3, message=f"`{name}` must have 3 channels (RGB), [H, W, 3]"
        ),
        tf.debugging.assert_positive(shape[:2], message=f"`{name}` must not be empty"),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(image), shape[:2]


def _resize(images, size, method):
    return tf.image.resize(images, size, method=method)


class Exported(tf.Module):
    """The signatures of one trained run (see the module docstring).

    Args:
        mask_generator: M.
        frame_generator: G (the Phase II one for a Phase II run).
        image_size: the run's frame size S.
    """

    def __init__(self, mask_generator, frame_generator, image_size):
        super().__init__(name="fgbg")
        self.mask_generator = mask_generator
        self.frame_generator = frame_generator
        self.image_size = int(image_size)
        if generators.reads_memory(frame_generator):
            # Not saved at all: a loaded module keeps every tf.function it holds, signature or not.
            self.step = None

    @tf.function(input_signature=[IMAGE])
    def preprocess(self, image):
        """`[H, W, 3]` uint8 -> the network input `[1, S, S, 3]`: `preprocess_frames`, the function
        training uses. Saved with the module (not a signature), so that a test can compare it
        with the training pipeline after `tf.saved_model.load`."""
        return preprocess_frames(image[None], self.image_size)

    def _to_model_pixels(self, offsets, input_size):
        size = tf.cast(input_size, tf.float32)
        scale = tf.stack([self.image_size / size[1], self.image_size / size[0]])
        return tf.cast(offsets, tf.float32) * scale

    def _masks_out(self, masks, input_size):
        return tf.cast(_resize(masks, input_size, "nearest") > 0.5, tf.uint8)

    @tf.function(input_signature=[IMAGE])
    def mask(self, image):
        image, input_size = _checked_image(image)
        masks = mask_ops.binarize(self.mask_generator(self.preprocess(image), training=False))
        return {"mask": self._masks_out(masks, input_size)[0]}

    @tf.function(input_signature=[IMAGE, CONTROLS])
    def generate(self, image, controls):
        image, input_size = _checked_image(image)
        controls = tf.ensure_shape(controls, [None, 2], name="controls")
        steps = tf.shape(controls, out_type=tf.int64)[0]
        checks = [
            tf.debugging.assert_positive(
                steps, message="`controls` must hold at least one step [T, 2]"
            ),
            tf.debugging.assert_less_equal(
                steps * tf.reduce_prod(tf.cast(input_size, tf.int64)),
                tf.constant(MAX_OUTPUT_PIXELS, tf.int64),
                message=f"T x H x W must be at most {MAX_OUTPUT_PIXELS} (e.g. T = 1000 at "
                "512 x 512): ask for fewer steps per call",
            ),
            tf.debugging.assert_all_finite(controls, "`controls` must be finite numbers"),
        ]
        with tf.control_dependencies(checks):
            offsets = self._to_model_pixels(controls, input_size)
        out = rollout.rollout(
            self.mask_generator,
            self.frame_generator,
            self.preprocess(image),
            mask_ops.translation_controls(offsets)[None],
            mask_mode="carry",
        )
        frames = to_uint8(_resize(out["frames"][0], input_size, "bilinear"))
        return {"frames": frames, "masks": self._masks_out(out["masks"][0], input_size)}

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="image_bytes"), CONTROLS])
    def generate_encoded(self, image_bytes, controls):
        # decode_image's own error names the accepted formats ("Unknown image file format. One of
        # JPEG, JPEG XL, PNG, GIF, BMP, WebP required."); an animation gives its first frame.
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        return self.generate(image, controls)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None], tf.uint8, name="frame"),
            tf.TensorSpec([None, None, 1], tf.uint8, name="mask"),
            tf.TensorSpec([2], tf.float32, name="control"),
        ]
    )
    def step(self, frame, mask, control):
        frame, input_size = _checked_image(frame, "frame")
        mask = tf.ensure_shape(mask, [None, None, 1], name="mask")
        control = tf.ensure_shape(control, [2], name="control")
        checks = [
            tf.debugging.assert_equal(
                tf.shape(mask)[:2],
                input_size,
                message="`mask` must have the same H and W as `frame`",
            ),
            tf.debugging.assert_all_finite(control, "`control` must be finite numbers"),
        ]
        with tf.control_dependencies(checks):
            size = [self.image_size, self.image_size]
            current = _resize(tf.cast(mask[None], tf.float32), size, "nearest")
            offset = tf.round(self._to_model_pixels(control[None], input_size))
        current = mask_ops.binarize(current)
        target = mask_ops.warp_masks(current, mask_ops.translation_controls(offset))
        inputs = {"frame": self.preprocess(frame), "mask": current, "target_mask": target}
        generated = self.frame_generator(inputs, training=False)["frame"]
        return {
            "frame": to_uint8(_resize(generated, input_size, "bilinear"))[0],
            "mask": self._masks_out(target, input_size)[0],
        }

    def signatures(self):
        """The concrete functions to save, by signature name: every one of the module
        docstring, but `step` for a frame generator that reads the rollout's memory
        (`generators.MEMORY`), which a client driving the loop would have to keep."""
        generate = self.generate.get_concrete_function()
        signatures = {
            "serving_default": generate,
            "generate": generate,
            "generate_encoded": self.generate_encoded.get_concrete_function(),
            "mask": self.mask.get_concrete_function(),
        }
        if self.step is not None:
            signatures["step"] = self.step.get_concrete_function()
        return signatures


def export(run, output):
    """Writes the SavedModel of a `runs.RestoredRun` to `output`; returns the module."""
    module = Exported(run.mask_generator, run.frame_generator, run.config.model.image_size)
    tf.saved_model.save(module, output, signatures=module.signatures())
    return module
