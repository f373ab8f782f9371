"""Building blocks shared by the fgbg networks.

Blocks are `apply_*` functions over Keras tensors with deterministic layer names, so that two
networks built with the same arguments have the same weight names (checkpoints stay portable).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="fgbg_keras")
def silu(x):
    """SiLU, `x * sigmoid(x)` (the VQ-VAE's activation, as taming-transformers' swish).

    Keras' `silu` is TensorFlow's `tf.nn.silu`, which computes the sigmoid again in the
    backward pass, multiplies by its `beta` parameter (the constant 1) each way and computes
    beta's gradient, a reduction over the whole tensor after four multiplications. Here the
    sigmoid is computed once, in float32 (under bfloat16, TensorFlow's bfloat16 sigmoid is
    slower than casting to float32 and back), and kept for the gradient
    `sigmoid(x) * (1 + x * (1 - sigmoid(x)))`. The values are the float32 SiLU's (rounded once
    under bfloat16), with less work each training step. Other backends use `keras.ops.silu`.
    """
    if keras.backend.backend() != "tensorflow":
        return ops.silu(x)
    import tensorflow as tf

    @tf.custom_gradient
    def forward(x):
        wide = tf.cast(x, tf.float32)
        sigmoid = tf.sigmoid(wide)

        def backward(dy):
            slope = sigmoid * (1.0 + wide * (1.0 - sigmoid))
            return dy * tf.cast(slope, dy.dtype)

        return tf.cast(wide * sigmoid, x.dtype), backward

    return forward(x)


@keras.saving.register_keras_serializable(package="fgbg_keras")
class ReflectionPadding2D(keras.layers.Layer):
    """Pads the two spatial axes of an NHWC tensor by reflection.

    Reflection padding keeps borders free of the dark rim that zero padding paints into
    generated frames and masks (the CycleGAN ResNet generator uses it for the same reason).

    In training, with the TensorFlow backend and a static frame size of at least
    `2 * padding + 2`, the padding is two slices and a concat per axis, and its gradient the
    same with the reflected rows added back: 1.4 to 2.7 times as fast as TensorFlow's
    `MirrorPad`/`MirrorPadGrad` each way (whose bfloat16 kernels are no faster than float32),
    with the same values. Elsewhere (inference, exports, other backends) it is `ops.pad`.

    Args:
        padding: int, the number of pixels added on each side of both spatial axes.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: a tensor of shape `[B, H, W, C]` with `H, W > padding`.
        training: whether the call is a training step's.

    Returns:
        A tensor of shape `[B, H + 2 * padding, W + 2 * padding, C]`.
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(
                f"`padding` must be a non-negative integer. Received: padding={padding}"
            )
        self.padding = padding

    def call(self, inputs, training=None):
        p = self.padding
        if training and _sliced_reflection_fits(inputs, p):
            return _sliced_reflection(inputs, p)
        return ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        def grow(size):
            return None if size is None else size + 2 * self.padding

        return (input_shape[0], grow(input_shape[1]), grow(input_shape[2]), input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update({"padding": self.padding})
        return config


def _axis_slice(x, axis, start, stop):
    index = [slice(None)] * 4
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def _reversed(x, axis):
    import tensorflow as tf

    return x if x.shape[axis] == 1 else tf.reverse(x, [axis])


def _reflect_axis(x, p, axis):
    """`x` padded by `p` reflected rows on both sides of `axis`: two slices and a concat."""
    import tensorflow as tf

    n = x.shape[axis]
    before = _reversed(_axis_slice(x, axis, 1, p + 1), axis)
    after = _reversed(_axis_slice(x, axis, n - 1 - p, n - 1), axis)
    return tf.concat([before, x, after], axis)


def _fold_axis(g, p, axis, n):
    """The gradient of `_reflect_axis` for an axis of length `n`: `g`'s middle `n` rows with
    the reflected rows added where they came from (rows 1..p and n-1-p..n-2)."""
    import tensorflow as tf

    before = _reversed(_axis_slice(g, axis, 0, p), axis)
    after = _reversed(_axis_slice(g, axis, n + p, n + 2 * p), axis)
    return tf.concat(
        [
            _axis_slice(g, axis, p, p + 1),
            _axis_slice(g, axis, p + 1, 2 * p + 1) + before,
            _axis_slice(g, axis, 2 * p + 1, n - 1),
            _axis_slice(g, axis, n - 1, n - 1 + p) + after,
            _axis_slice(g, axis, n - 1 + p, n + p),
        ],
        axis,
    )


def _sliced_reflection_fits(x, p):
    if keras.backend.backend() != "tensorflow" or p < 1:
        return False
    height, width = x.shape[1], x.shape[2]
    return height is not None and width is not None and min(height, width) >= 2 * p + 2


def _sliced_reflection(x, p):
    import tensorflow as tf

    height, width = x.shape[1], x.shape[2]

    @tf.custom_gradient
    def pad(x):
        def backward(dy):
            return _fold_axis(_fold_axis(dy, p, 2, width), p, 1, height)

        return _reflect_axis(_reflect_axis(x, p, 1), p, 2), backward

    return pad(x)


# The smallest epsilon TensorFlow's fused batch norm takes: with a variance of 1 - epsilon, the
# kernel divides by 1.
_UNIT_EPSILON = 1.001e-5


@keras.saving.register_keras_serializable(package="fgbg_keras")
class FusedGroupNormalization(keras.layers.GroupNormalization):
    """`GroupNormalization`, computed faster with the TensorFlow backend.

    Group normalisation is batch normalisation of a view of the input in which every
    (sample, group) pair is a channel: `[B, H, W, C]` with G groups of `C / G` channels is seen
    as `[1, H, W * C / G, B * G]`, and TensorFlow's fused batch-norm kernel normalises it in one
    pass forward and one backward (float32 statistics for bfloat16 inputs), where
    `GroupNormalization` runs about ten elementwise and reduction ops over the whole tensor
    each way. The per-channel scale and offset follow: with one channel per group (instance
    normalisation) they are the kernel's own; with several, the same kernel in inference mode
    applies them to the input's own layout. The weights, their names and the output (to
    float rounding) are those of `GroupNormalization`, so checkpoints of either load into the
    other. Other backends use `GroupNormalization`'s computation.

    Args:
        **kwargs: `GroupNormalization`'s arguments.
    """

    def call(self, inputs):
        if (
            keras.backend.backend() != "tensorflow"
            or not (self.scale and self.center)
            or self.axis not in (-1, 3)
        ):
            return super().call(inputs)
        import tensorflow as tf

        batch, height, width = tf.unstack(tf.shape(inputs)[:3])
        groups = self.groups
        per_group = inputs.shape[-1] // groups
        # [B, H, W, G, C/G] -> [H, W, C/G, B, G] -> [1, H, W * C/G, B * G].
        grouped = tf.reshape(inputs, [batch, height, width, groups, per_group])
        view = tf.reshape(
            tf.transpose(grouped, [1, 2, 4, 0, 3]), [1, height, width * per_group, batch * groups]
        )
        if per_group == 1:  # the scale and offset are the kernel's, one per (sample, channel)
            scale = tf.tile(tf.cast(self.gamma, tf.float32), [batch])
            offset = tf.tile(tf.cast(self.beta, tf.float32), [batch])
        else:
            scale = tf.ones([batch * groups], tf.float32)
            offset = tf.zeros([batch * groups], tf.float32)
        normalized, _, _ = tf.compat.v1.nn.fused_batch_norm(
            view, scale, offset, epsilon=self.epsilon, is_training=True
        )
        outputs = tf.reshape(
            tf.transpose(
                tf.reshape(normalized, [height, width, per_group, batch, groups]), [3, 0, 1, 4, 2]
            ),
            tf.shape(inputs),
        )
        outputs = tf.ensure_shape(outputs, inputs.shape)
        if per_group > 1:
            # The per-channel scale and offset by the same kernel in inference mode, with a
            # mean of 0 and a variance of 1: one pass each way, in float32 inside the kernel
            # (as `GroupNormalization` computes under bfloat16), where a multiply and an add
            # with their casts and gradients take about ten passes over the tensor.
            channels = inputs.shape[-1]
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                outputs,
                tf.cast(self.gamma, tf.float32),
                tf.cast(self.beta, tf.float32),
                mean=tf.zeros([channels], tf.float32),
                variance=tf.fill([channels], 1.0 - _UNIT_EPSILON),
                epsilon=_UNIT_EPSILON,
                is_training=False,
            )
        return tf.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="fgbg_keras")
class InstanceNormalization(FusedGroupNormalization):
    """`FusedGroupNormalization` with one group per channel: `GroupNormalization(groups=-1)`.

    Args:
        **kwargs: `GroupNormalization`'s arguments; `groups` must be -1 (the default here).
    """

    def __init__(self, groups=-1, **kwargs):
        if groups != -1:
            raise ValueError(f"`groups` must be -1 (one group per channel). Received: {groups}")
        super().__init__(groups=-1, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["groups"]  # the channel count once built; always one group per channel
        return config


@keras.saving.register_keras_serializable(package="fgbg_keras")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`BatchNormalization` on TensorFlow's fused batch-norm kernel.

    Keras' layer computes the batch moments and the normalisation as separate ops (about ten
    passes over the tensor each way); TensorFlow's fused kernel takes one pass forward and one
    backward, with float32 statistics for bfloat16 and float16 inputs. The weights, the moving
    statistics' update (`momentum`, the biased batch variance) and the inference-mode output are
    `BatchNormalization`'s, so checkpoints of either load into the other. Other backends, and
    masks, renormalisation or an axis other than the last, use `BatchNormalization`'s
    computation.

    Args:
        **kwargs: `BatchNormalization`'s arguments.
    """

    def call(self, inputs, training=None, mask=None):
        if (
            keras.backend.backend() != "tensorflow"
            or mask is not None
            or self.renorm
            or not (self.scale and self.center)
            or self.axis not in (-1, len(inputs.shape) - 1)
        ):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        gamma = tf.cast(self.gamma, tf.float32)
        beta = tf.cast(self.beta, tf.float32)
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, is_training=True
            )
            # The kernel returns the unbiased variance; Keras' moving variance tracks the biased
            # one (the variance the batch was normalised with).
            count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
            variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
            for moving, value in ((self.moving_mean, mean), (self.moving_variance, variance)):
                moving.assign(moving * self.momentum + value * (1.0 - self.momentum))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs,
                gamma,
                beta,
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon,
                is_training=False,
            )
        return tf.cast(outputs, self.compute_dtype)


# `apply_norm`'s `groups` for batch normalisation.
BATCH = "batch"


def apply_norm(x, groups, name):
    """Group normalisation (`FusedGroupNormalization`); `groups=-1` is instance normalisation
    (`InstanceNormalization`), `groups=BATCH` batch normalisation (`FusedBatchNormalization`,
    PyTorch's momentum)."""
    if groups == BATCH:
        return FusedBatchNormalization(momentum=0.9, epsilon=1e-5, name=name)(x)
    if groups == -1:
        return InstanceNormalization(epsilon=1e-5, name=name)(x)
    return FusedGroupNormalization(groups=groups, epsilon=1e-5, name=name)(x)


PADDINGS = ("reflect", "zero")


def apply_conv(
    x,
    filters,
    kernel_size,
    name,
    strides=1,
    reflect=True,
    use_bias=True,
    kernel_initializer="glorot_uniform",
    bias_initializer="zeros",
):
    """A convolution that keeps `H / strides` exactly, reflection-padded if `reflect`, else
    zero-padded (`"same"`: one kernel, no padding op of its own)."""
    if reflect and kernel_size > 1:
        x = ReflectionPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer,
        name=f"{name}_conv",
    )(x)


def apply_conv_norm_act(
    x, filters, kernel_size, name, strides=1, groups=-1, activation="relu", reflect=True
):
    """Convolution, normalisation and activation: the unit of the ResNet generators."""
    x = apply_conv(x, filters, kernel_size, name, strides=strides, reflect=reflect)
    x = apply_norm(x, groups, name=f"{name}_norm")
    return keras.layers.Activation(activation, name=f"{name}_act")(x)


def apply_residual_block(x, filters, name, groups=-1, activation="relu", reflect=True):
    """Two 3x3 conv-norm stages with an identity (or 1x1 projection) shortcut.

    Args:
        x: a tensor `[B, H, W, C]`.
        filters: output channels; a 1x1 convolution projects the shortcut when `C != filters`.
        name: prefix of every layer name in the block.
        groups: group count of the normalisation; -1 is instance normalisation.
        activation: activation after the first stage.
        reflect: reflection padding of the 3x3 convolutions; zero padding if False.

    Returns:
        A tensor `[B, H, W, filters]`.
    """
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, name=f"{name}_proj")(x)
    y = apply_conv_norm_act(
        x, filters, 3, f"{name}_a", groups=groups, activation=activation, reflect=reflect
    )
    y = apply_conv(y, filters, 3, f"{name}_b", reflect=reflect)
    y = apply_norm(y, groups, name=f"{name}_b_norm")
    return keras.layers.Add(name=f"{name}_add")([shortcut, y])


def apply_upsample(x, filters, name, groups=-1, activation="relu", reflect=True):
    """Nearest-neighbour x2 upsampling then a 3x3 conv-norm-act stage.

    Resize-then-convolve avoids the checkerboard artefacts of strided transposed convolutions.
    """
    x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(x)
    return apply_conv_norm_act(
        x, filters, 3, name, groups=groups, activation=activation, reflect=reflect
    )


def apply_transposed_upsample(x, filters, name, groups=-1, activation="relu"):
    """A 3x3 stride-2 transposed convolution (x2), normalisation and activation: CycleGAN's
    upsampling stage. Less work than `apply_upsample` (it convolves at the input's resolution),
    at the risk of checkerboard artefacts."""
    x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=f"{name}_conv")(x)
    x = apply_norm(x, groups, name=f"{name}_norm")
    return keras.layers.Activation(activation, name=f"{name}_act")(x)
