"""Controls as users give them: trajectories of (dx, dy), files of 2x3 affine maps, in the
pixels of the user's image.

`--trajectory` is "dx,dy" per step, separated by ";". `--affine_file` holds one control per line,
"a11 a12 tx a21 a22 ty": the object's pixels p move to `c + L (p - c) + t` about its centroid c,
with (x, y) = (column, row) and y pointing down (see `fgbg_keras.rollout`). A trajectory shorter
than the steps asked for repeats its last control.
"""

import numpy as np

from fgbg_common.checks import check_int


def parse_trajectory(text):
    """Parses "dx,dy;dx,dy;..." into offsets `[N, 2]` float32, in input-image pixels."""
    tokens = [token.strip() for token in (text or "").split(";")]
    if not any(tokens):
        raise ValueError(f'--trajectory={text!r}: give at least one step "dx,dy".')
    offsets = []
    for index, token in enumerate(tokens, start=1):
        parts = token.split(",")
        try:
            values = [float(part) for part in parts]
        except ValueError:
            values = []
        if len(values) != 2 or not np.all(np.isfinite(values)):
            raise ValueError(
                f'--trajectory={text!r}: step {index} is {token!r}, not "dx,dy" (two numbers).'
            )
        offsets.append(values)
    return np.asarray(offsets, np.float32)


def read_affine_file(path):
    """Reads one control per line, "a11 a12 tx a21 a22 ty", into `[N, 2, 3]` float32.

    Blank lines and lines starting with "#" are skipped.
    """
    try:
        with open(path) as f:
            lines = f.readlines()
    except OSError as error:
        raise ValueError(f"--affine_file={path!r} cannot be read: {error.strerror}.") from None
    controls = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            values = [float(v) for v in line.replace(",", " ").split()]
        except ValueError:
            values = []
        if len(values) != 6 or not np.all(np.isfinite(values)):
            raise ValueError(
                f"--affine_file={path!r}, line {number}: {line!r} is not six numbers "
                '"a11 a12 tx a21 a22 ty".'
            )
        controls.append(np.reshape(values, (2, 3)))
    if not controls:
        raise ValueError(f"--affine_file={path!r} holds no controls.")
    return np.asarray(controls, np.float32)


def repeat_last(controls, steps):
    """The first `steps` controls, the last one repeated as often as needed."""
    check_int("steps", steps, flag=True)
    index = np.minimum(np.arange(steps), len(controls) - 1)
    return controls[index]


def to_model_pixels(controls, input_size, model_size):
    """Converts controls `[N, 2, 3]` from input-image pixels to model pixels.

    With S = diag(model_w / input_w, model_h / input_h), `[L | t]` becomes `[S L S^-1 | S t]`, so
    a translation is scaled per axis and a rotation stays a rotation of the input image's content.

    Args:
        controls: `[N, 2, 3]` affine controls in input pixels.
        input_size: `(height, width)` of the input image.
        model_size: `(height, width)` of the model's frames.
    """
    scale = np.array([model_size[1] / input_size[1], model_size[0] / input_size[0]], np.float32)
    linear = controls[:, :, :2] * scale[:, None] / scale[None, :]
    translation = controls[:, :, 2:] * scale[:, None]
    return np.concatenate([linear, translation], axis=-1).astype(np.float32)
