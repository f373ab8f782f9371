"""Images in, frames drawn for display, files out."""

import numpy as np
import pytest
from PIL import Image

from fgbg_keras import media


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "I;16"])
def test_images_of_any_mode_load_as_rgb(tmp_path, mode):
    path = tmp_path / "image.png"
    Image.new("RGB", (7, 5), (200, 100, 50)).convert(mode).save(path)
    image = media.load_image(str(path))
    assert image.shape == (5, 7, 3) and image.dtype == np.uint8


def test_transparent_pixels_are_composited_over_white(tmp_path):
    path = tmp_path / "image.png"
    Image.new("RGBA", (3, 2), (10, 20, 30, 0)).save(path)
    np.testing.assert_array_equal(media.load_image(str(path)), np.full((2, 3, 3), 255))


def test_bad_images_and_outputs_are_named(tmp_path):
    path = tmp_path / "not_an_image.png"
    path.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="--image=.*not_an_image.png.* cannot be read"):
        media.load_image(str(path))
    with pytest.raises(ValueError, match="unknown extension '.jpg'"):
        media.check_output(str(tmp_path / "out.jpg"))
    with pytest.raises(ValueError, match="the folder .* does not exist"):
        media.check_output(str(tmp_path / "missing" / "out.gif"))
    assert media.check_output(str(tmp_path / "OUT.GIF")) == ".gif"


def test_overlay_tints_only_the_mask():
    frames = np.zeros((1, 2, 1, 3), "float32")
    masks = np.array([[[[1.0]], [[0.0]]]], "float32")
    out = np.asarray(media.overlay(frames, masks, color=(1.0, 0.0, 0.0), alpha=0.5))
    np.testing.assert_allclose(out[0, 0, 0], [0.75, 0.25, 0.25])
    np.testing.assert_allclose(out[0, 1, 0], [0.5, 0.5, 0.5])
