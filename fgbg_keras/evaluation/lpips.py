"""LPIPS, the learned perceptual distance of Zhang et al. (arXiv:1801.03924), from user weights.

fgbg never downloads weights. LPIPS needs two files:
- the backbone in Keras format: VGG16 (`keras.applications.VGG16` layout) or AlexNet (the
  torchvision layout of `alexnet_features`), as a `.keras` model or a `.weights.h5` file;
- the linear layers: a `.npz` with `lin0` ... `lin4`, one non-negative weight per channel of each
  tapped layer (the official `*.pth` tensors of shape `[1, C, 1, 1]` are accepted as they are).

Published LPIPS numbers use torchvision's ImageNet backbones with the linear layers calibrated on
them; Keras' own ImageNet VGG16 weights (trained with Caffe preprocessing) give a related but not
identical distance. The inputs go through LPIPS's scaling layer either way.
"""

import keras
import numpy as np
import tensorflow as tf

# LPIPS's ScalingLayer: inputs in [-1, 1] are shifted and scaled per RGB channel.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# The ReLU outputs LPIPS compares, per backbone: layer names and channels.
TAPS = {
    "vgg16": (
        ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"),
        (64, 128, 256, 512, 512),
    ),
    "alex": (("conv1", "conv2", "conv3", "conv4", "conv5"), (64, 192, 384, 256, 256)),
}


def alexnet_features():
    """The convolutional part of torchvision's AlexNet as a Keras model on `[B, H, W, 3]`,
    H, W >= 63, with layers `conv1` ... `conv5` (ReLU included)."""
    inputs = keras.Input((None, None, 3))
    x = inputs
    for index, (filters, kernel, stride, pad, pool) in enumerate(
        ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False)), start=1
    ):
        x = keras.layers.ZeroPadding2D(pad)(x)
        x = keras.layers.Conv2D(filters, kernel, stride, activation="relu", name=f"conv{index}")(x)
        if pool:
            x = keras.layers.MaxPooling2D(3, 2)(x)
    for index in (4, 5):
        x = keras.layers.ZeroPadding2D(1)(x)
        x = keras.layers.Conv2D(256, 3, activation="relu", name=f"conv{index}")(x)
    return keras.Model(inputs, x, name="alexnet_features")


def _backbone(network, path):
    if path.endswith(".keras"):
        return keras.saving.load_model(path, compile=False)
    model = (
        keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
        if network == "vgg16"
        else alexnet_features()
    )
    model.load_weights(path)
    return model


class LPIPS:
    """LPIPS distance between two batches of frames in [-1, 1].

    Args:
        network: `"vgg16"` or `"alex"`.
        backbone_path: the backbone's weights (`.weights.h5`) or model (`.keras`).
        linear_path: the `.npz` of the linear layers `lin0` ... `lin4`.

    Call arguments:
        a, b: float `[B, H, W, 3]` in [-1, 1].

    Returns:
        float32 `[B]`: 0 for identical frames, larger for more different ones.

    Raises:
        ValueError: naming the flag and file that do not load or do not fit the network.
    """

    def __init__(self, network, backbone_path, linear_path):
        if network not in TAPS:
            raise ValueError(f"--lpips_network={network!r}: must be one of {sorted(TAPS)}.")
        names, channels = TAPS[network]
        try:
            backbone = _backbone(network, backbone_path)
            outputs = [backbone.get_layer(name).output for name in names]
        except (OSError, ValueError) as error:
            raise ValueError(
                f"--lpips_backbone={backbone_path!r} does not load as Keras {network} weights: "
                f"{str(error).splitlines()[0]}"
            ) from None
        self.features = keras.Model(backbone.inputs, outputs)
        try:
            with np.load(linear_path) as linear:
                weights = [np.asarray(linear[f"lin{i}"], np.float32).reshape(-1) for i in range(5)]
        except (OSError, KeyError, ValueError) as error:
            raise ValueError(
                f"--lpips_linear={linear_path!r} is not an .npz with lin0 ... lin4: {error}"
            ) from None
        found = tuple(w.size for w in weights)
        if found != channels:
            raise ValueError(
                f"--lpips_linear={linear_path!r} has {found} weights per layer; {network} needs "
                f"{channels}."
            )
        self.weights = [tf.constant(w) for w in weights]

    def __call__(self, a, b):
        shift, scale = tf.constant(SHIFT), tf.constant(SCALE)
        batch = tf.concat([tf.cast(a, tf.float32), tf.cast(b, tf.float32)], axis=0)
        features = self.features((batch - shift) / scale, training=False)
        total = 0.0
        for feature, weight in zip(features, self.weights):
            feature = tf.cast(feature, tf.float32)
            norm = tf.sqrt(tf.reduce_sum(tf.square(feature), axis=-1, keepdims=True))
            first, second = tf.split(feature / (norm + 1e-10), 2, axis=0)
            total += tf.reduce_mean(tf.reduce_sum(tf.square(first - second) * weight, -1), [1, 2])
        return total
