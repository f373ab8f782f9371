"""The conversion sources (`--source`), one module each. Importing the package registers them
(`data_pipelines.sources`), in the order `--help` lists them."""

# isort: off
from data_pipelines.inputs import videos, frames, bair, synthetic, pushing  # noqa: F401

# isort: on
