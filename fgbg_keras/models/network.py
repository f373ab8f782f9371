"""The base class of fgbg's functional networks."""

import keras


class Network(keras.Model):
    """A functional `keras.Model` rebuilt from its constructor arguments.

    Subclasses build their graph in `__init__` and return their own arguments from
    `get_config`; this base adds the standard `name`/`trainable` keys and rebuilds by calling
    the constructor, as keras-hub's backbones do. Spatial dimensions are left as `None`, so one
    network serves every frame size divisible by its `downsampling_factor`.
    """

    downsampling_factor = 1

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
