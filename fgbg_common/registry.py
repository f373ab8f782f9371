"""The registry type of fgbg's pluggable concepts: what `--data`, `--generator`, `--phase` and the
evaluation's rollout methods choose from.

It lives in `fgbg_common`, the bottom of the import layers, which imports no other fgbg package.
"""


class Registry:
    """Entries by name, in the order they were registered.

    Args:
        what: what an entry is, for the errors ("frame generator").
        flag: the flag whose values are the names ("--generator"), for the error of an unknown
            name.

    `registry[name] = entry`, `registry[name]` and `del registry[name]` work as on a dict (tests
    register an entry for their duration with `monkeypatch.setitem`).
    """

    def __init__(self, what, flag):
        self.what = what
        self.flag = flag
        self._entries = {}

    def register(self, name, entry):
        """Adds `entry` under `name`; returns it.

        Raises:
            ValueError: when `name` is registered already.
        """
        if name in self._entries:
            raise ValueError(f"A {self.what} named {name!r} is already registered.")
        self._entries[name] = entry
        return entry

    def names(self):
        """The registered names, in the order they were registered."""
        return tuple(self._entries)

    def get(self, name, *default):
        """The entry registered as `name`; for an unknown name, `default` if one is given (as
        `dict.get`).

        Raises:
            ValueError: for an unknown name and no default, naming the flag, the value given and
                the registered names.
        """
        if name in self._entries:
            return self._entries[name]
        if default:
            return default[0]
        raise ValueError(f"{self.flag}={name!r}: must be one of {self.names()}")

    def __contains__(self, name):
        return name in self._entries

    def __getitem__(self, name):
        return self._entries[name]

    def __setitem__(self, name, entry):
        self._entries[name] = entry

    def __delitem__(self, name):
        del self._entries[name]
