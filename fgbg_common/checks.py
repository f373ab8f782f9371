"""The one argument check that every package of fgbg shares.

It lives in `fgbg_common`, the bottom of the import layers, which imports no other fgbg package.
"""


def check_int(name, value, minimum=1, flag=False):
    """Returns `value` if it is an int (not a bool) >= `minimum`; else raises a ValueError.

    Args:
        name: the argument's name, quoted in the message.
        value: the value to check.
        minimum: the smallest value allowed.
        flag: name it as the command-line flag `--name` rather than as an argument.

    Raises:
        ValueError: "`name` must be an integer." or "`name` must be at least minimum.", then
            "Received: name=value"; with `flag`, "--name=value: must be ...".
    """
    if isinstance(value, bool) or not isinstance(value, int):
        requirement = "must be an integer"
    elif value < minimum:
        requirement = f"must be at least {minimum}"
    else:
        return value
    if flag:
        raise ValueError(f"--{name}={value!r}: {requirement}.")
    raise ValueError(f"`{name}` {requirement}. Received: {name}={value!r}")
