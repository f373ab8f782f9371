"""A tiny Phase I configuration that trains in seconds on a CPU, for tests."""

from fgbg_keras.config import LossConfig, ModelConfig, RunConfig, TrainConfig

# train.py's flags for a run of `tiny_config`'s networks: two steps of a short synthetic run.
TINY_FLAGS = (
    "--image_size=32",
    "--mask_ngf=4",
    "--mask_res_blocks=1",
    "--generator_filters=8,16",
    "--num_embeddings=16",
    "--embedding_dim=8",
    "--train_steps=2",
    "--log_every=1",
    "--checkpoint_every=2",
    "--image_every=2",
    "--clips_per_batch=1",
    "--frames_per_clip=3",
    "--clip_length=6",
    "--num_train_clips=4",
    "--num_val_clips=1",
    "--num_test_clips=1",
)


def tiny_config(**train_overrides):
    train = dict(
        train_steps=4,
        clips_per_batch=1,
        frames_per_clip=3,
        log_every=2,
        checkpoint_every=2,
        image_every=2,
        num_train_clips=8,
        num_val_clips=2,
        num_test_clips=2,
        clip_length=6,
        learning_rate=1e-3,
    )
    train.update(train_overrides)
    return RunConfig(
        model=ModelConfig(
            image_size=32,
            mask_ngf=4,
            mask_res_blocks=1,
            generator="vqvae",
            generator_filters=(8, 16),
            generator_res_blocks=1,
            num_embeddings=16,
            embedding_dim=8,
        ),
        loss=LossConfig(),
        train=TrainConfig(**train),
    )


def synthetic_split(config, split, num_clips):
    """`num_clips` clips of a synthetic split at a `RunConfig`'s frame size and clip length."""
    from data_pipelines import synthetic

    data_config = synthetic.scaled_config(config.model.image_size, config.train.clip_length)
    return synthetic.make_split(split, num_clips, data_config, seed=0)


def save_linear(path, channels, rng):
    """An LPIPS linear-layer file: `lin0` ... as the official `[1, C, 1, 1]` tensors."""
    import numpy as np

    np.savez(path, **{f"lin{i}": rng.uniform(0, 1, (1, c, 1, 1)) for i, c in enumerate(channels)})


def save_video_network(folder):
    """A stand-in for I3D saved as a SavedModel: 3-D convolution, ReLU, global average ->
    `{"features": [B, 8]}`. Returns its path."""
    import tensorflow as tf

    class TinyVideoNet(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(tf.random.stateless_normal([3, 3, 3, 3, 8], seed=[0, 1]))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, None, 3], tf.float32)])
        def __call__(self, videos):
            out = tf.nn.relu(tf.nn.conv3d(videos, self.kernel, [1, 1, 2, 2, 1], "SAME"))
            return {"features": tf.reduce_mean(out, axis=[1, 2, 3])}

    path = str(folder / "i3d")
    module = TinyVideoNet()
    tf.saved_model.save(module, path, signatures={"serving_default": module.__call__})
    return path
