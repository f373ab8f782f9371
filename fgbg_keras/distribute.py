"""Training on several devices or machines: the `--strategy` registry, sharding, the chief.

A strategy is one entry of `_STRATEGIES` (`--strategy`): `default` (one device), `mirrored`
(every GPU of this machine, or every logical CPU device that `--logical_cpus` made) and
`multi_worker` (several machines, from the `TF_CONFIG` environment variable as TensorFlow
documents it; the chief, worker 0 where there is no chief, writes checkpoints, TensorBoard and
the evaluation). What keeps a step on N replicas equal to the same step on one device with the
whole batch is `fgbg_keras.replicas`, which model code imports without this registry.

Reference: the TensorFlow guide "Distributed training with Keras".
"""

import dataclasses
import json
import os

import tensorflow as tf

from fgbg_common.options import Options, fail, option
from fgbg_common.registry import Registry


def _default():
    return tf.distribute.get_strategy()


def _mirrored():
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
    # Ring all-reduce needs NCCL (GPUs only); on CPU devices the reduction is done in memory.
    cross_device_ops = None if gpus else tf.distribute.ReductionToOneDevice()
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=cross_device_ops)


def _multi_worker():
    if "TF_CONFIG" not in os.environ:
        raise ValueError(
            "--strategy=multi_worker needs the TF_CONFIG environment variable on every worker: "
            '{"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type": "worker", '
            '"index": I}} (README, "Training on several devices").'
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


_STRATEGIES = Registry("distribution strategy", "--strategy")
_STRATEGIES.register("default", _default)
_STRATEGIES.register("mirrored", _mirrored)
_STRATEGIES.register("multi_worker", _multi_worker)
names = _STRATEGIES.names

HELP = (
    "How training is spread over devices: default (one device), mirrored (every GPU of this "
    "machine, or the --logical_cpus CPU devices; the batch is split between them) or "
    "multi_worker (every machine named in TF_CONFIG, each with its GPUs)."
)


def split_cpu(logical_cpus):
    """Splits the CPU into `logical_cpus` logical devices (what `--strategy=mirrored` spreads
    over on a machine with no GPU: it proves the path, it does not add cores). Must run before
    TensorFlow initialises its devices, unless they are already split so.

    Raises:
        ValueError: the devices were initialised already with another number of CPU devices.
    """
    if logical_cpus <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == logical_cpus:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus
        )
    except RuntimeError as error:
        raise ValueError(
            f"--logical_cpus={logical_cpus}: TensorFlow's devices were initialised before the "
            "CPU could be split; set it in a fresh process."
        ) from error


def make_strategy(name, logical_cpus=1):
    """The `tf.distribute.Strategy` of `--strategy=name` (`split_cpu` first)."""
    factory = _STRATEGIES.get(name)
    split_cpu(logical_cpus)
    return factory()


def _tf_config():
    return json.loads(os.environ.get("TF_CONFIG") or "{}")


def is_chief(strategy_name):
    """Whether this process writes the run's files (config, flags, checkpoints, TensorBoard, the
    evaluation): always, except under `--strategy=multi_worker` on a task other than the chief,
    or than worker 0 where the cluster has no chief."""
    if strategy_name != "multi_worker":
        return True
    config = _tf_config()
    task = config.get("task")
    if not task or task.get("type") == "chief":
        return True
    return (
        task.get("type") == "worker"
        and int(task.get("index", 0)) == 0
        and ("chief" not in config.get("cluster", {}))
    )


def task_name():
    """`type_index` of this task of a multi-worker cluster, from `TF_CONFIG`."""
    task = _tf_config().get("task", {})
    return f"{task.get('type', 'worker')}_{task.get('index', 0)}"


def shard_by_batch(dataset, strategy_name):
    """The training stream as `fit` should split it when the workers cannot read parts of the
    data of their own (`stream_per_worker`): under `--strategy=multi_worker` every worker reads
    the same seeded stream and keeps its share of each global batch (TensorFlow's DATA
    auto-sharding), so that the steps, and a resumed run's position in the stream, are those of
    one device; elsewhere `dataset` unchanged."""
    if strategy_name != "multi_worker":
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def num_workers(strategy):
    """The workers (machines, or processes) that `strategy` spans: 1 but for `multi_worker`."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    jobs = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(jobs.get(job, ())) for job in ("chief", "worker"))


def _multi_worker_mode(strategy):
    """Whether `strategy` spans several workers (Keras reduces `fit`'s logs differently then)."""
    return num_workers(strategy) > 1


def stream_per_worker(strategy, make, clips_per_batch):
    """A training stream that each worker of `strategy` builds for itself:
    `make((index, num_workers), clips)` gives worker `index`'s batches of `clips` clips, one
    replica's share of the global `clips_per_batch` (`distribute_datasets_from_function`)."""

    def worker_stream(context):
        worker = (context.input_pipeline_id, context.num_input_pipelines)
        return make(worker, context.get_per_replica_batch_size(clips_per_batch))

    return strategy.distribute_datasets_from_function(worker_stream)


def check_same_step(strategy, step, model_dir):
    """Under a multi-worker strategy, checks that every worker resumed at the same `step`: one
    that cannot see the chief's checkpoints under `model_dir` would start again from step 0
    with other weights, and the workers would then train apart until they hang.

    Raises:
        ValueError: on every worker, when the workers' steps differ.
    """
    if not _multi_worker_mode(strategy):
        return
    mine = tf.constant([step], tf.int64)
    steps = strategy.gather(strategy.run(lambda: tf.identity(mine)), axis=0).numpy()
    if steps.min() != steps.max():
        raise ValueError(
            f"--model_dir={model_dir!r}: the workers resumed at steps {sorted(set(steps))}. "
            "Every worker must see the chief's checkpoints there: put --model_dir on a file "
            "system they all share."
        )


def adapt_to_multi_worker(model, strategy):
    """Works around two faults of Keras 3's `fit` under `MultiWorkerMirroredStrategy` across
    several workers, on this model only:

    - keras-team/keras#20329 (open): `fit` first reduces a batch across workers to build the
      model symbolically, and that fails on a batch that is a dict (every fgbg batch is). Each
      phase builds every variable of its model and optimizers before `fit` (`Phase.build`), so
      that build has nothing to do and is skipped.
    - Keras averages each step's logs with `strategy.reduce("MEAN", value, axis=0)`, which
      fails on a scalar; the steps' logs are given a batch axis of one, which that reduction
      removes again.
    """
    if not _multi_worker_mode(strategy):
        return
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

    def with_batch_axis(step):
        def wrapped(data):
            return {name: tf.reshape(value, [1]) for name, value in step(data).items()}

        return wrapped

    model.train_step = with_batch_axis(model.train_step)
    model.test_step = with_batch_axis(model.test_step)


@dataclasses.dataclass
class DistributionOptions(Options):
    """How training is spread over devices (`--strategy`)."""

    strategy: str = option("default", HELP, choices=names())
    logical_cpus: int = option(
        1,
        "With --strategy=mirrored on a machine with no GPU: split the CPU into this many logical "
        "devices and train one replica on each (it proves the multi-device path; it adds no "
        "cores).",
    )

    def check(self, config):
        self.at_least(1, "logical_cpus")
        if self.logical_cpus > 1 and self.strategy != "mirrored":
            fail("logical_cpus", self.logical_cpus, "needs --strategy=mirrored")
