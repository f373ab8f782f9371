"""Training: one `keras.Model` per phase and the loop that runs any of them. Importing the
package registers the phases (`fgbg_keras.training.phases`), in the order `--phase` lists them."""

# isort: off
from fgbg_keras.training import phase_one, phase_two, baseline  # noqa: F401

# isort: on
