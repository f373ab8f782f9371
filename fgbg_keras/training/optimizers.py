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
        beta_1, beta_2 = (tf.constant(beta, tf.float32) for beta in (self.beta_1, self.beta_2))
        # The kernel's scalar inputs, made once per step for every variable's update
        # (`update_step` receives them in place of the learning rate).
        scalars = {
            "beta1_power": tf.pow(beta_1, step),
            "beta2_power": tf.pow(beta_2, step),
            "lr": tf.cast(learning_rate, tf.float32),
            "beta1": beta_1,
            "beta2": beta_2,
            "epsilon": tf.constant(self.epsilon, tf.float32),
        }
        return super()._backend_update_step(grads, trainable_variables, scalars)

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(learning_rate, dict):
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        index = self._get_variable_index(variable)
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
            **{name: tf.cast(value, dtype) for name, value in learning_rate.items()},
        )


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable (on a replica's device, in a
    distributed update)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle
