"""The networks of fgbg. Importing the package registers the frame generators
(`fgbg_keras.models.generators`)."""

from fgbg_keras.models import unet_diff_generator, vq_frame_generator  # noqa: F401
