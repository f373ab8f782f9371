import numpy as np
import pytest

from fgbg_keras.layers.blocks import ReflectionPadding2D
from tests.harness import check_layer


def test_reflection_padding_contract_and_values():
    x = np.arange(2 * 3 * 4 * 1, dtype="float32").reshape(2, 3, 4, 1)
    out = check_layer(ReflectionPadding2D, {"padding": 1}, x, (2, 5, 6, 1))
    out = np.asarray(out)
    # Reflection (not symmetric): the row above row 0 is row 1, the column left of col 0 is col 1.
    np.testing.assert_array_equal(out[:, 1:-1, 1:-1], x)
    np.testing.assert_array_equal(out[:, 0, 1:-1], x[:, 1])
    np.testing.assert_array_equal(out[:, 1:-1, 0], x[:, :, 1])


@pytest.mark.parametrize("padding", [-1, 1.5, "2"])
def test_reflection_padding_rejects_bad_padding(padding):
    with pytest.raises(ValueError, match="Received: padding="):
        ReflectionPadding2D(padding)
