"""A small shared harness for layer and model tests.

Each network's test file calls `check_layer` for the contract every fgbg layer or model keeps:
its config survives a JSON round trip, it builds with the expected weight counts, and it gives the
same output shapes and dtypes when called symbolically and eagerly.
"""

import json
import os

import keras
import numpy as np


def _shapes(tree):
    return keras.tree.map_structure(lambda x: tuple(x.shape), tree)


def _dtypes(tree):
    return keras.tree.map_structure(lambda x: keras.backend.standardize_dtype(x.dtype), tree)


def _constructor_config(config):
    """A config without the build/compile state that nested serialization records."""
    if isinstance(config, dict):
        return {
            k: _constructor_config(v)
            for k, v in config.items()
            if k not in ("build_config", "compile_config")
        }
    if isinstance(config, (list, tuple)):
        return [_constructor_config(v) for v in config]
    return config


def config_round_trip(obj):
    """Returns a copy of `obj` rebuilt from its serialized config after a JSON round trip."""
    serialized = keras.saving.serialize_keras_object(obj)
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    if type(restored) is not type(obj):
        raise AssertionError(f"Round trip gave {type(restored)}, expected {type(obj)}.")
    if _constructor_config(restored.get_config()) != _constructor_config(obj.get_config()):
        raise AssertionError(
            f"Config changed in the round trip:\n{obj.get_config()}\n!=\n{restored.get_config()}"
        )
    return restored


def check_layer(
    cls,
    init_kwargs,
    inputs,
    expected_output_shape,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
    call_kwargs=None,
):
    """Runs the common contract checks and returns the eager output.

    Args:
        cls: the layer or model class.
        init_kwargs: constructor arguments.
        inputs: a numpy array or a structure of arrays to call the layer on.
        expected_output_shape: a shape tuple, or the same structure of shape tuples as the output.
        expected_num_trainable_weights: if given, checked after the eager call.
        expected_num_non_trainable_weights: if given, checked after the eager call.
        call_kwargs: extra keyword arguments for the call.
    """
    call_kwargs = call_kwargs or {}
    layer = cls(**init_kwargs)
    config_round_trip(layer)

    symbolic_inputs = keras.tree.map_structure(
        lambda x: keras.KerasTensor(x.shape, dtype=x.dtype), inputs
    )
    symbolic_out = layer.compute_output_spec(symbolic_inputs, **call_kwargs)
    eager_out = layer(inputs, **call_kwargs)

    if _shapes(eager_out) != _shapes(symbolic_out):
        raise AssertionError(
            f"Symbolic shapes {_shapes(symbolic_out)} != eager shapes {_shapes(eager_out)}."
        )
    if _dtypes(eager_out) != _dtypes(symbolic_out):
        raise AssertionError(
            f"Symbolic dtypes {_dtypes(symbolic_out)} != eager dtypes {_dtypes(eager_out)}."
        )
    got = _shapes(eager_out)
    if got != expected_output_shape:
        raise AssertionError(f"Output shape {got} != expected {expected_output_shape}.")
    if expected_num_trainable_weights is not None:
        n = len(layer.trainable_weights)
        if n != expected_num_trainable_weights:
            raise AssertionError(
                f"{n} trainable weights, expected {expected_num_trainable_weights}."
            )
    if expected_num_non_trainable_weights is not None:
        n = len(layer.non_trainable_weights)
        if n != expected_num_non_trainable_weights:
            raise AssertionError(
                f"{n} non-trainable weights, expected {expected_num_non_trainable_weights}."
            )

    restored = config_round_trip(layer)
    restored(inputs, **call_kwargs)
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.tree.flatten(restored(inputs, **call_kwargs))[0]),
        keras.ops.convert_to_numpy(keras.tree.flatten(layer(inputs, **call_kwargs))[0]),
        rtol=1e-5,
        atol=1e-5,
    )
    return eager_out


def checkpoint_values(model_dir):
    """Every saved variable of a run's latest checkpoint, by name."""
    import tensorflow as tf

    from fgbg_keras import runs

    reader = tf.train.load_checkpoint(os.path.join(model_dir, runs.CHECKPOINT_DIR))
    names = reader.get_variable_to_shape_map()
    return {n: reader.get_tensor(n) for n in names if n != "_CHECKPOINTABLE_OBJECT_GRAPH"}


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_train(*args, env=None):
    """`python train.py ARGS` started in the repository, its output piped; `env` adds to the
    environment. Returns the `subprocess.Popen`."""
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, os.path.join(REPO, "train.py"), *args],
        cwd=REPO,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_ok(processes, timeout=600):
    """Waits for each process; fails with the tail of its output if one did not succeed.
    Returns their outputs."""
    outputs = []
    for process in processes:
        output, _ = process.communicate(timeout=timeout)
        assert process.returncode == 0, output.decode()[-3000:]
        outputs.append(output.decode())
    return outputs


def read_events(model_dir, split):
    """The TensorBoard events a run wrote under `<model_dir>/<split>`, all of them loaded."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(model_dir, split), size_guidance={"tensors": 0})
    events.Reload()
    return events


def shifted(mask, dx, dy):
    """`mask` [..., H, W, C] moved by whole pixels (dx columns, dy rows), zeros filled in."""
    out = np.zeros_like(mask)
    height, width = mask.shape[-3:-1]
    if abs(dx) >= width or abs(dy) >= height:
        return out
    out[..., max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0), :] = mask[
        ..., max(-dy, 0) : height - max(dy, 0), max(-dx, 0) : width - max(dx, 0), :
    ]
    return out
