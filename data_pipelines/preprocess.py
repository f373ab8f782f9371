"""The one frame preprocessing shared by training, evaluation and serving.

Every path that feeds frames to a network calls `preprocess_frames`, so a model never sees pixels
scaled or resized differently from the way it was trained. Both functions are pure TensorFlow ops:
they run eagerly, inside `tf.data` and inside exported SavedModel graphs.
"""

import tensorflow as tf


def normalize_size(size):
    """`None`, or `(height, width)` from an int or a pair of positive ints."""
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise ValueError(
            "`size` must be None, a positive int or a (height, width) pair of positive ints. "
            f"Received: size={size!r}"
        )
    return tuple(size)


def _resize(images, size):
    """Resizes float images [..., H, W, C] to `size`, keeping the leading dimensions."""
    shape = tf.shape(images)
    batch_shape = shape[:-3]
    flat = tf.reshape(images, tf.concat([[-1], shape[-3:]], axis=0))
    resized = tf.image.resize(flat, size, method="bilinear", antialias=True)
    out_shape = tf.concat([batch_shape, tf.constant(size, tf.int32), shape[-1:]], axis=0)
    return tf.reshape(resized, out_shape)


def _maybe_resize(images, size):
    static_hw = tuple(images.shape[-3:-1])
    if static_hw == size:
        return images
    if None not in static_hw:
        return _resize(images, size)
    # Unknown spatial size (e.g. a serving signature): decide at run time.
    hw = tf.shape(images)[-3:-1]
    same = tf.reduce_all(tf.equal(hw, tf.constant(size, hw.dtype)))
    out = tf.cond(same, lambda: images, lambda: _resize(images, size))
    out.set_shape(images.shape[:-3].concatenate([size[0], size[1], images.shape[-1]]))
    return out


def preprocess_frames(frames, size=None):
    """Scales uint8 RGB frames to float32 in [-1, 1], resizing them first if asked.

    Args:
        frames: uint8 tensor or numpy array of shape `[..., H, W, 3]`.
        size: `None` to keep the frame size, an int for a square `size x size` output, or a
            `(height, width)` pair. Frames of another size are resized with antialiased bilinear
            interpolation before scaling.

    Returns:
        A float32 tensor of shape `[..., H, W, 3]` (or `[..., height, width, 3]` when `size` is
        given) holding `x * (1 / 127.5) - 1`, clipped to [-1, 1].
    """
    size = normalize_size(size)
    frames = tf.convert_to_tensor(frames)
    if frames.dtype != tf.uint8:
        raise ValueError(f"`frames` must be uint8. Received: frames.dtype={frames.dtype.name}")
    if frames.shape.rank is not None and frames.shape.rank < 3:
        raise ValueError(
            f"`frames` must have shape [..., H, W, 3]. Received: frames.shape={frames.shape}"
        )
    images = tf.cast(frames, tf.float32)
    if size is not None:
        images = _maybe_resize(images, size)
    # A multiplication, not a division: graph optimizers may turn `x / c` into `x * (1 / c)` in
    # one graph (a SavedModel) and not in another (tf.data), which differ in the last bit.
    return tf.clip_by_value(images * (1.0 / 127.5) - 1.0, -1.0, 1.0)


def to_uint8(frames):
    """Inverts `preprocess_frames`' scaling: float frames in [-1, 1] back to uint8.

    Args:
        frames: float tensor or numpy array of shape `[..., H, W, 3]`, nominally in [-1, 1].

    Returns:
        A uint8 tensor of the same shape holding `round((x + 1) * 127.5)` clipped to [0, 255].
    """
    frames = tf.cast(tf.convert_to_tensor(frames), tf.float32)
    pixels = tf.clip_by_value(tf.round((frames + 1.0) * 127.5), 0.0, 255.0)
    return tf.cast(pixels, tf.uint8)
