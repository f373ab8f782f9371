"""The base of each phase's model: named Mean trackers that fit() reports and resets."""

import keras


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

    @staticmethod
    def _deserialize_networks(config):
        """A copy of a phase's config with its mask network and frame generator deserialized
        (for `from_config`)."""
        config = dict(config)
        for key in ("mask_generator", "frame_generator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return config
