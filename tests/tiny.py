"""A tiny Phase I configuration that trains in seconds on a CPU, for tests."""

from fgbg_keras.config import LossConfig, ModelConfig, RunConfig, TrainConfig


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
