"""Data for fgbg: the built-in sets, the conversion of user videos to records, and the `tf.data`
pipelines. Importing the package registers the `--data` kinds (`data_pipelines.datasets`) and the
conversion's `--source`s (`data_pipelines.sources`), in the order `--help` lists them."""

# isort: off
from data_pipelines import synthetic_source, pushing_source, tfrecord_source, tfds_source  # noqa: F401
from data_pipelines import inputs  # noqa: F401 (the --source registry of the conversion)

# isort: on
