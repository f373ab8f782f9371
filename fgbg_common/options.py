"""How a component declares its settings: a dataclass of `option()` fields, an `Options` group.

Each component that has settings (the mask network, each frame generator, the losses, the
change map, the sparsity schedules, the augmentations, ...) declares them beside its code, as an
`Options` subclass whose fields carry their default, the help of their flag and their allowed
values. `fgbg_keras.config` assembles the run's sections from these groups, and every field is
a flag of train.py of the same name (`fgbg_keras.flags`), so a setting cannot exist without its
help and a validation error names the flag to fix.
"""

import dataclasses
import math


def option(default, help, choices=None, moving_masks_only=False, network=False):
    """A config field: its default, the help text of its flag and, if any, its allowed values.

    `moving_masks_only` marks a setting that only changes what the networks do with moving
    masks (Phase II and generation), with no weights of its own or with weights that start at
    zero (`runs.restore_fgbg_networks`): a Phase II run may set it otherwise than the Phase I run
    it starts from. `network` marks a setting outside the network sections that shapes weights
    all the same: a run cannot resume with another value.
    """
    metadata = {
        "help": help,
        "choices": tuple(choices) if choices is not None else None,
        "moving_masks_only": moving_masks_only,
        "network": network,
    }
    return dataclasses.field(default=default, metadata=metadata)


def fail(name, value, requirement):
    """Raises the ValueError of a bad setting, naming its flag."""
    raise ValueError(f"--{name}={value!r}: {requirement}")


class Options:
    """Base of the option groups and of the sections assembled from them: each field is
    declared with `option()`, or the class is refused when it is defined.

    `validate` checks every field's choices, then runs the `check` that each class of the
    section defines itself (a group's own checks, then those of the section across its groups).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in cls.__dict__.get("__annotations__", {}):
            value = cls.__dict__.get(name)
            if not (isinstance(value, dataclasses.Field) and value.metadata.get("help")):
                raise TypeError(
                    f"{cls.__name__}.{name} has no help text: declare it with option(default, "
                    "help), which is what its flag's --help shows."
                )

    def validate(self, config):
        """Raises a ValueError naming the flag of the first bad field; `config` is the whole
        run's configuration, for checks across sections."""
        for field in dataclasses.fields(self):
            choices = field.metadata["choices"]
            if choices is not None and getattr(self, field.name) not in choices:
                fail(field.name, getattr(self, field.name), f"must be one of {choices}")
        for cls in reversed(type(self).__mro__):
            check = cls.__dict__.get("check")
            if check is not None:
                check(self, config)

    def at_least(self, minimum, *names):
        """Fails for the first of the fields `names` below `minimum`."""
        for name in names:
            if getattr(self, name) < minimum:
                fail(name, getattr(self, name), f"must be >= {minimum}")

    def finite_non_negative(self, *names):
        """Fails for the first of the fields `names` that is negative or not finite."""
        for name in names:
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                fail(name, value, "must be a finite number >= 0")
