import keras
import numpy as np
import pytest

from fgbg_keras.models.mask_generator import MaskGenerator
from tests.harness import check_layer

TINY = {"ngf": 4, "num_res_blocks": 1, "num_downsampling": 2}


@pytest.mark.parametrize("size", [(32, 32), (16, 48), (64, 64)])
def test_output_shape_for_several_frame_sizes(size):
    frames = np.random.default_rng(0).uniform(-1, 1, (2, *size, 3)).astype("float32")
    mask = check_layer(MaskGenerator, TINY, frames, (2, *size, 1))
    mask = np.asarray(mask)
    assert mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0


def test_weight_count():
    model = MaskGenerator(**TINY)
    # stem conv+norm (4) + 2 down (8) + res block: 2 conv + 2 norm (8) + 2 up (8) + head conv (2).
    assert len(model.trainable_weights) == 4 + 8 + 8 + 8 + 2


def test_output_is_sigmoid_of_twice_the_logits():
    model = MaskGenerator(**TINY)
    frames = np.random.default_rng(1).uniform(-1, 1, (1, 16, 16, 3)).astype("float32")
    probe = keras.Model(model.inputs[0], model.get_layer("head_conv").output)
    z = np.asarray(probe(frames))
    np.testing.assert_allclose(np.asarray(model(frames)), (np.tanh(z) + 1) / 2, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"ngf": 0}, "ngf"),
        ({"num_res_blocks": -1}, "num_res_blocks"),
        ({"num_downsampling": 1.5}, "num_downsampling"),
    ],
)
def test_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        MaskGenerator(**{**TINY, **kwargs})
