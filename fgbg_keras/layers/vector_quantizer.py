"""The VQ-VAE vector quantizer: nearest-code lookup with a straight-through gradient."""

import keras
from keras import ops

from fgbg_common.checks import check_int
from fgbg_keras import replicas


@keras.saving.register_keras_serializable(package="fgbg_keras")
class VectorQuantizer(keras.layers.Layer):
    """Replaces each latent vector by its nearest codebook entry.

    Every vector along the last axis of the input is matched to the code with the smallest squared
    Euclidean distance. The layer returns the codes twice: once with a straight-through gradient
    for the decoder, once as plain code vectors whose gradient reaches the codebook, so the caller
    can build the codebook loss `||sg(z) - q||^2` and the commitment loss `beta * ||z - sg(q)||^2`.
    Those losses are not added here.

    The layer always computes in float32 and never autocasts its variables, so it is safe under a
    mixed precision policy: the straight-through output is cast back to the input's dtype, the
    plain codes stay float32.

    During training (`training=True`) the layer keeps an exponential moving average of how many
    input vectors each code receives per call (`usage`). With `use_ema=True` the codebook is not
    trained by the optimizer but by the EMA update of van den Oord et al. (2017, appendix A.1):
    per-code counts and sums of assigned vectors are averaged with decay `ema_decay`, the counts
    are Laplace smoothed with `epsilon`, and each code becomes sum / count. The EMA statistics start
    at a count of one per code and a sum equal to the initial codebook, so the initial code acts as
    one pseudo-observation and unused codes stay where they are. With `dead_code_threshold > 0`,
    codes whose `usage` falls below the threshold are moved to randomly drawn input vectors of the
    current batch and their state is reset as for a fresh code (`usage` to the threshold, EMA
    count to one, EMA sum to the new vector). `usage` starts at the threshold. Under a
    `tf.distribute` strategy of several replicas, the counts, sums and restart candidates are
    those of the whole global batch (an all-reduce in the training call, `fgbg_keras.replicas`),
    so every replica updates its copy of the state the same way.

    Args:
        num_embeddings: int, number of codes K.
        embedding_dim: int, size D of each code; must equal the last input dimension.
        use_ema: bool, update the codebook by exponential moving averages instead of gradients.
            The codebook is then a non-trainable weight.
        ema_decay: float in [0, 1), decay of the moving averages (`usage` and the EMA codebook).
        epsilon: float > 0, Laplace smoothing of the EMA cluster sizes.
        dead_code_threshold: float >= 0, restart codes whose `usage` (average number of assigned
            vectors per call) is below this value. 0 disables restarts.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: float tensor of shape `(..., embedding_dim)`, e.g. `(batch, h, w, embedding_dim)`.
        training: bool, whether to update `usage`, the EMA codebook and dead codes.

    Returns:
        A tuple `(quantized_st, quantized, indices)`:
        - `quantized_st`: shape `(..., embedding_dim)`, dtype of `inputs`. Equal in value to
          `quantized`; its gradient with respect to `inputs` is the upstream gradient unchanged.
        - `quantized`: shape `(..., embedding_dim)`, float32, the gathered code vectors. Its
          gradient flows to the codebook only.
        - `indices`: shape `(...)`, int32, index of the chosen code for each input vector.

    Example:

    >>> vq = VectorQuantizer(num_embeddings=512, embedding_dim=64)
    >>> z = keras.random.normal((2, 8, 8, 64))
    >>> quantized_st, quantized, indices = vq(z)
    >>> tuple(indices.shape)
    (2, 8, 8)

    Reference:
        - [van den Oord et al., 2017](https://arxiv.org/abs/1711.00937)
    """

    def __init__(
        self,
        num_embeddings,
        embedding_dim,
        use_ema=False,
        ema_decay=0.99,
        epsilon=1e-5,
        dead_code_threshold=0.0,
        **kwargs,
    ):
        # Inputs keep their dtype and are cast to float32 inside `call`; variables never autocast.
        super().__init__(autocast=False, **kwargs)
        check_int("num_embeddings", num_embeddings)
        check_int("embedding_dim", embedding_dim)
        if not isinstance(use_ema, bool):
            raise ValueError(f"`use_ema` must be a bool. Received: use_ema={use_ema}")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"`ema_decay` must be in [0, 1). Received: ema_decay={ema_decay}")
        if not epsilon > 0.0:
            raise ValueError(f"`epsilon` must be positive. Received: epsilon={epsilon}")
        if not dead_code_threshold >= 0.0:
            raise ValueError(
                "`dead_code_threshold` must be non-negative. "
                f"Received: dead_code_threshold={dead_code_threshold}"
            )
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.use_ema = use_ema
        self.ema_decay = float(ema_decay)
        self.epsilon = float(epsilon)
        self.dead_code_threshold = float(dead_code_threshold)
        self.seed_generator = keras.random.SeedGenerator(seed=None, name="restart_seed")

    def build(self, input_shape):
        if input_shape[-1] != self.embedding_dim:
            raise ValueError(
                f"The last input dimension must equal `embedding_dim={self.embedding_dim}`. "
                f"Received: input_shape={input_shape}"
            )
        limit = 1.0 / self.num_embeddings
        self.codebook = self.add_weight(
            name="codebook",
            shape=(self.num_embeddings, self.embedding_dim),
            initializer=keras.initializers.RandomUniform(-limit, limit),
            trainable=not self.use_ema,
            dtype="float32",
            autocast=False,
        )
        self.usage = self.add_weight(
            name="usage",
            shape=(self.num_embeddings,),
            initializer=keras.initializers.Constant(self.dead_code_threshold),
            trainable=False,
            dtype="float32",
            autocast=False,
        )
        if self.use_ema:
            self.ema_cluster_size = self.add_weight(
                name="ema_cluster_size",
                shape=(self.num_embeddings,),
                initializer="ones",
                trainable=False,
                dtype="float32",
                autocast=False,
            )
            initial_codebook = ops.convert_to_numpy(self.codebook.value)
            self.ema_embed_sum = self.add_weight(
                name="ema_embed_sum",
                shape=(self.num_embeddings, self.embedding_dim),
                initializer=lambda shape, dtype=None: ops.convert_to_tensor(
                    initial_codebook, dtype=dtype
                ),
                trainable=False,
                dtype="float32",
                autocast=False,
            )

    def call(self, inputs, training=None):
        z = ops.cast(inputs, "float32")
        flat_z = ops.reshape(z, (-1, self.embedding_dim))
        codebook = ops.convert_to_tensor(self.codebook)
        distances = (
            ops.sum(ops.square(flat_z), axis=1, keepdims=True)
            - 2.0 * ops.matmul(flat_z, ops.transpose(codebook))
            + ops.sum(ops.square(codebook), axis=1)[None, :]
        )
        flat_indices = ops.cast(ops.argmin(distances, axis=1), "int32")
        indices = ops.reshape(flat_indices, ops.shape(inputs)[:-1])
        quantized = ops.take(codebook, indices, axis=0)
        quantized_st = z + ops.stop_gradient(quantized - z)

        if training:
            self._update_state(ops.stop_gradient(flat_z), flat_indices)
        return ops.cast(quantized_st, inputs.dtype), quantized, indices

    def _update_state(self, flat_z, flat_indices):
        decay = self.ema_decay
        onehot = ops.one_hot(flat_indices, self.num_embeddings, dtype="float32")
        # Under a distribution strategy, the counts and sums of the whole global batch, so that
        # every replica updates the codebook the same way, as one device would.
        counts = replicas.sum_over_replicas(ops.sum(onehot, axis=0))
        self.usage.assign(decay * self.usage + (1.0 - decay) * counts)

        if self.use_ema:
            assigned_sum = replicas.sum_over_replicas(ops.matmul(ops.transpose(onehot), flat_z))
            cluster_size = decay * self.ema_cluster_size + (1.0 - decay) * counts
            embed_sum = decay * self.ema_embed_sum + (1.0 - decay) * assigned_sum
            total = ops.sum(cluster_size)
            smoothed = (
                (cluster_size + self.epsilon) / (total + self.num_embeddings * self.epsilon) * total
            )
            self.ema_cluster_size.assign(cluster_size)
            self.ema_embed_sum.assign(embed_sum)
            self.codebook.assign(embed_sum / smoothed[:, None])

        if self.dead_code_threshold > 0.0:
            self._restart_dead_codes(replicas.gather_over_replicas(flat_z))

    def _restart_dead_codes(self, flat_z):
        num_vectors = ops.shape(flat_z)[0]
        draws = keras.random.uniform((self.num_embeddings,), seed=self.seed_generator)
        rows = ops.cast(ops.floor(draws * ops.cast(num_vectors, "float32")), "int32")
        rows = ops.minimum(rows, num_vectors - 1)
        replacements = ops.take(flat_z, rows, axis=0)

        dead = self.usage < self.dead_code_threshold
        dead_rows = dead[:, None]
        self.codebook.assign(ops.where(dead_rows, replacements, self.codebook))
        self.usage.assign(ops.where(dead, self.dead_code_threshold, self.usage))
        if self.use_ema:
            self.ema_cluster_size.assign(ops.where(dead, 1.0, self.ema_cluster_size))
            self.ema_embed_sum.assign(ops.where(dead_rows, replacements, self.ema_embed_sum))

    def compute_output_spec(self, inputs, training=None):
        leading = tuple(inputs.shape[:-1])
        return (
            keras.KerasTensor(inputs.shape, dtype=inputs.dtype),
            keras.KerasTensor(inputs.shape, dtype="float32"),
            keras.KerasTensor(leading, dtype="int32"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim,
                "use_ema": self.use_ema,
                "ema_decay": self.ema_decay,
                "epsilon": self.epsilon,
                "dead_code_threshold": self.dead_code_threshold,
            }
        )
        return config


def code_usage(indices, num_embeddings):
    """Measures how evenly a batch of code indices spreads over the codebook.

    Args:
        indices: int tensor of any shape, code indices in `[0, num_embeddings)`.
        num_embeddings: int, codebook size K.

    Returns:
        A tuple `(perplexity, fraction_used)` of float32 scalars. With `p` the mean one-hot
        encoding over all positions, `perplexity = exp(-sum(p * log(p)))` (1 when one code is used,
        K when all are used equally) and `fraction_used` is the number of codes used at least once
        divided by K.
    """
    flat = ops.reshape(ops.cast(indices, "int32"), (-1,))
    probs = ops.mean(ops.one_hot(flat, num_embeddings, dtype="float32"), axis=0)
    used = probs > 0.0
    entropy = -ops.sum(ops.where(used, probs * ops.log(ops.where(used, probs, 1.0)), 0.0))
    perplexity = ops.exp(entropy)
    fraction_used = ops.sum(ops.cast(used, "float32")) / float(num_embeddings)
    return perplexity, fraction_used
