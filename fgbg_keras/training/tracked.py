"""The base of each phase's model: named Mean trackers that fit() reports and resets, and the
(de)serialization of the networks every phase holds."""

import keras

# The networks every phase model holds, under these attribute and config names.
NETWORKS = ("mask_generator", "frame_generator")


class TrackedModel(keras.Model):
    """A `keras.Model` whose steps report running means of named values, as the Keras
    custom-train-step guide does: one `keras.metrics.Mean` per name plus `"loss"`, listed by
    `metrics` so that `fit()` resets them every epoch."""

    def _create_trackers(self, names):
        self.total_tracker = keras.metrics.Mean(name="loss")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    @property
    def metrics(self):
        return [self.total_tracker, *self.trackers.values()]

    def _update_trackers(self, total, values):
        """Adds `total` and `values` (a dict of scalars) to their means; returns the means of
        the loss and of the names given."""
        self.total_tracker.update_state(total)
        for name, value in values.items():
            self.trackers[name].update_state(value)
        results = {"loss": self.total_tracker.result()}
        results.update({name: self.trackers[name].result() for name in values})
        return results

    def _serialized_networks(self):
        """The mask network and frame generator of a phase, serialized (for `get_config`)."""
        return {key: keras.saving.serialize_keras_object(getattr(self, key)) for key in NETWORKS}

    @staticmethod
    def _deserialize_networks(config):
        """A copy of a phase's config with its mask network and frame generator deserialized
        (for `from_config`)."""
        config = dict(config)
        for key in NETWORKS:
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return config
