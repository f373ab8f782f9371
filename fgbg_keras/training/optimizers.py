"""Adam on TensorFlow's fused update kernel."""

import keras


@keras.saving.register_keras_serializable(package="fgbg_keras")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam`, each variable's update one TensorFlow op.

    Keras' Adam updates a variable with about 27 ops (the casts, the bias corrections, the two
    moments, the step, each a separate op reading and writing its tensor); `ResourceApplyAdam`
    does the same arithmetic in one kernel, and the bias corrections are computed once per step
    for all variables. On a CPU the executor's cost per op is most of an update of a small
    variable, and a network has a hundred or more. The slots, their names, the formula and so
    the checkpoints are `Adam`'s. AMSGrad, and backends other than TensorFlow, use `Adam`'s
    computation.

    Args:
        **kwargs: `keras.optimizers.Adam`'s arguments.
    """

    def _fused(self):
        return keras.backend.backend() == "tensorflow" and not self.amsgrad

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if not self._fused():
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        import tensorflow as tf

        step = tf.cast(self.iterations + 1, tf.float32)
        # The learning rate and the two bias-correction powers, shared by every variable's
        # update (`update_step` receives them in place of the learning rate).
        scalars = (
            tf.cast(learning_rate, tf.float32),
            tf.pow(tf.cast(self.beta_1, tf.float32), step),
            tf.pow(tf.cast(self.beta_2, tf.float32), step),
        )
        return super()._backend_update_step(grads, trainable_variables, scalars)

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(learning_rate, tuple):
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        index = self._get_variable_index(variable)
        dtype = variable.dtype
        lr, beta_1_power, beta_2_power = (tf.cast(s, dtype) for s in learning_rate)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=beta_1_power,
            beta2_power=beta_2_power,
            lr=lr,
            beta1=tf.constant(self.beta_1, dtype),
            beta2=tf.constant(self.beta_2, dtype),
            epsilon=tf.constant(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable (on a replica's device, in a
    distributed update)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle
