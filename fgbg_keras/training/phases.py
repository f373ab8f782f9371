"""The registry of training phases: what each `--phase` of train.py trains.

Each phase is a `Phase` registered under its `--phase` value by its own module (`phase_one`,
`phase_two`, `baseline`), which `fgbg_keras/training/__init__.py` imports. `loop.train_and_evaluate`
runs every phase the same way: validate the config, check the data, build the model, resume it or
start it (from `--init_from` where the phase needs it), stream the training windows, and fit with
the shared callbacks (NaN guard, checkpoints, TensorBoard, progress) and the phase's own. A new
phase is one module with its `Phase` subclass, registered with `register`, and an import in
`fgbg_keras/training/__init__.py`.
"""

from fgbg_common.registry import Registry
from fgbg_keras.schedules import LinearDecaySchedule
from fgbg_keras.training.optimizers import FusedAdam


class Phase:
    """One `--phase` of train.py; subclasses set the attributes and implement the methods.

    Attributes:
        name: the `--phase` value (config.json records it, `runs.recorded_phase`).
        help: its sentence in the help of `--phase`.
        sections: the config sections it validates besides model, loss and train.
        fgbg_networks: its checkpoint holds the mask network and frame generator
            (`runs.restore_networks` loads them; train.py evaluates them after training).
        convlstm_network: its checkpoint holds the ConvLSTM baseline (`runs.restore_convlstm`,
            the evaluation's `--convlstm_dir`).
        moving_masks: its frame generator is built for target masks that move
            (`generators.Generator`).
        needs_init_from: a fresh run starts from the networks of the run `--init_from` names.
        loss_terms: the terms the NaN guard checks, in the order they are reported.
        progress_names: the running values on the progress bar.
        validates: it evaluates `--num_val_clips` validation clips every `--checkpoint_every`
            steps and writes images of a validation batch to TensorBoard.
        uses_change_map: it trains on the change map d and L_bg, so its windows carry their
            clip's background where `--bg_reference=clip_median` asks.
    """

    name = None
    help = ""
    sections = ()
    fgbg_networks = True
    convlstm_network = False
    moving_masks = True
    needs_init_from = False
    loss_terms = ()
    progress_names = ("loss",)
    validates = True
    uses_change_map = False

    def validate(self, config):
        """Validates the sections of `config` that this phase uses; returns `config`."""
        return config.validate(self.sections)

    def build(self, config, sample_batch):
        """The phase's compiled model and the optimizer of its checkpoint, both built (every
        variable exists). `sample_batch` is a validation batch of pair dicts, or None for a
        phase that does not validate."""
        raise NotImplementedError

    def checkpoint_state(self, model, optimizer):
        """What its checkpoints hold, by name: the model (whose networks are "model/...") and
        the optimizer that counts the steps."""
        return {"model": model, "optimizer": optimizer}

    def start(self, model, config):
        """Prepares a fresh run's model after the networks of `--init_from` are loaded."""

    def keeps_offsets(self, config):
        """Whether its training batches keep the windows' true offsets (the controls)."""
        return False

    def check_source(self, config, source):
        """Raises ValueError, naming the flag, where `config` asks of the data `source` what it
        does not have; called before anything is written to the run's directory."""

    def train_data(self, config, batches):
        """The training stream `fit` gets, from `pipeline.batch_windows`' batches."""
        raise NotImplementedError

    def callbacks(self, config, model_dir, validation, writes=True):
        """The phase's own callbacks (`validation` is the run's `loop.Validation`, or None).
        With `writes=False` (a multi-worker task other than the chief) only those that change
        training, none that write files."""
        return []

    def next_steps(self, model_dir):
        """Text printed after training, for phases that are not evaluated then."""
        return ""


_PHASES = Registry("phase", "--phase")
# The registered `--phase` values, in the order they were registered.
names = _PHASES.names


def register(phase):
    """Registers a `Phase` instance under its `name`; returns it."""
    return _PHASES.register(phase.name, phase)


def get(name):
    """The `Phase` registered as `name` (1 and "1" are the same phase).

    Raises:
        ValueError: naming `--phase` and the registered values.
    """
    return _PHASES.get(str(name))


def adam(config, learning_rate):
    """Adam (`FusedAdam`) with the run's betas and its linearly decaying learning rate."""
    schedule = LinearDecaySchedule(
        learning_rate,
        config.train.train_steps,
        decay_start_fraction=config.train.decay_start_fraction,
    )
    return FusedAdam(schedule, beta_1=config.train.beta_1, beta_2=config.train.beta_2)
