import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

from fgbg_keras import distribute  # noqa: E402

# Two logical CPU devices, so that --strategy=mirrored has two replicas in the tests
# (test_distribute.py); TensorFlow's devices can only be split before it starts them.
distribute.split_cpu(2)

UNET = {"generator": "unet", "unet_filters": 8, "unet_max_filters": 16}


@pytest.fixture(scope="session")
def unet_run_dir(tmp_path_factory):
    """A tiny U-Net run trained once for the export tests (Phase I, 4 steps)."""
    from fgbg_keras.training import loop
    from tests.tiny import tiny_config

    config = tiny_config()
    for name, value in UNET.items():
        setattr(config.model, name, value)
    model_dir = str(tmp_path_factory.mktemp("unet") / "run")
    loop.train_and_evaluate(config, model_dir, verbose=False)
    return model_dir
