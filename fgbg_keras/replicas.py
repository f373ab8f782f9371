"""What keeps a step on N replicas equal to the same step on one device with the whole batch.

`tf.distribute` runs a Keras `train_step` once per replica on its share of the global batch
(`--clips_per_batch` is global: each replica gets `clips_per_batch / N` clips; on one machine in
order, the first share to replica 0) and sums the replicas' gradients in `optimizer.apply`. So a
hand-written loss that is a mean over the replica's batch must be divided by N before its
gradient is taken (`scale_loss`), and anything a step computes from the batch as a whole (the
sparsity controller's losses, the VQ codebook's counts, the adaptive GAN weight, the draws of
scheduled sampling) must be combined across replicas first (`mean_over_replicas`,
`sum_over_replicas`, `gather_over_replicas`, `replica_rows`). Each helper is the identity outside
a strategy of more than one replica, so model code calls them unconditionally. (Across several
workers with several devices each, TensorFlow interleaves the shares among the replicas, so the
draws of scheduled sampling and of dead-code restarts fall on other clips than on one device:
as random, not the same.) The strategies themselves are `fgbg_keras.distribute`.

Reference: the TensorFlow guide "Custom training with tf.distribute.Strategy";
keras/src/losses/loss.py (`scale_loss_for_distribution`).
"""

import tensorflow as tf


def _context():
    """The replica context when a step runs on more than one replica, else None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync <= 1:
        return None
    return context


def num_replicas():
    """How many replicas share the global batch of the step running now (1 outside a step
    under a strategy of several replicas)."""
    context = _context()
    return 1 if context is None else context.num_replicas_in_sync


def scale_loss(loss):
    """A replica's mean loss divided by the number of replicas, so that the gradients the
    optimizer sums over replicas are those of the mean over the global batch."""
    replicas = num_replicas()
    return loss if replicas == 1 else loss * tf.cast(1.0 / replicas, loss.dtype)


def mean_over_replicas(values):
    """The mean over replicas of each tensor of `values` (a tensor or a list), on every replica."""
    context = _context()
    return values if context is None else context.all_reduce(tf.distribute.ReduceOp.MEAN, values)


def sum_over_replicas(values):
    """The sum over replicas of each tensor of `values`, on every replica."""
    context = _context()
    return values if context is None else context.all_reduce(tf.distribute.ReduceOp.SUM, values)


def gather_over_replicas(value):
    """Every replica's `value` joined along axis 0 in replica order: the global batch."""
    context = _context()
    return value if context is None else context.all_gather(value, axis=0)


def replica_rows(global_values, rows):
    """This replica's `rows` rows of a tensor drawn for the global batch (`rows * N` rows), the
    ones that match its share of the batch."""
    context = _context()
    if context is None:
        return global_values
    start = tf.cast(context.replica_id_in_sync_group, tf.int32) * rows
    return global_values[start : start + rows]
