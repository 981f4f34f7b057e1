"""Old names of the downsampling choice, still accepted (docs/design.md, "One word: method").

The choice of downsampling is called `method` everywhere (builders, `convert`,
`TrainConfig`, the CLI, configs, metadata and results files). Its older names
still work: as keywords (`downsample=`, `model=`, `variants=`) with a
`DeprecationWarning`, and as keys of files written by older versions.
"""

import functools
import warnings


def renamed_argument(old, old_value, new, new_value, default, where):
    """The value of argument `new`, taking the deprecated keyword `old` when given.

    Args:
        old, old_value: the old keyword and its value (None: not given).
        new, new_value: the new argument and its value.
        default: `new`'s default (both given, `new` not at its default: a `TypeError`).
        where: the function's name, for the messages.

    Example:
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     renamed_argument("downsample", "group", "method", "stride", "stride", "resnet")
    'group'
    """
    if old_value is None:
        return new_value
    if new_value != default and new_value != old_value:
        raise TypeError(f"`{where}` got both `{new}` and its old name `{old}`; pass only `{new}`. "
                        f"Received: {new}={new_value!r}, {old}={old_value!r}")
    warnings.warn(f"`{where}({old}=...)` is deprecated; use `{new}=`", DeprecationWarning, stacklevel=3)
    return old_value


def rename_keywords(kwargs, renames, where):
    """`kwargs` with each old keyword of `renames` (old -> new) under its new name (`DeprecationWarning`)."""
    kwargs = dict(kwargs)
    for old, new in renames.items():
        if old in kwargs:
            if new in kwargs:
                raise TypeError(f"`{where}` got both `{new}` and its old name `{old}`; pass only `{new}`. "
                                f"Received: {new}={kwargs[new]!r}, {old}={kwargs[old]!r}")
            warnings.warn(f"`{where}({old}=...)` is deprecated; use `{new}=`", DeprecationWarning, stacklevel=3)
            kwargs[new] = kwargs.pop(old)
    return kwargs


def renamed_fields(**renames):
    """Class decorator for a dataclass: old field names (old=new) still work as keywords and attributes.

    Example:
    >>> import dataclasses
    >>> @renamed_fields(model="method")
    ... @dataclasses.dataclass
    ... class Config:
    ...     method: str = "stride"
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     config = Config(model="group")
    >>> config.method, caught[0].category.__name__
    ('group', 'DeprecationWarning')
    """

    def decorate(cls):
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            init(self, *args, **rename_keywords(kwargs, renames, cls.__name__))

        cls.__init__ = __init__
        for old, new in renames.items():
            setattr(cls, old, _old_attribute(cls.__name__, old, new))
        return cls

    return decorate


def _old_attribute(where, old, new):
    def warn():
        warnings.warn(f"`{where}.{old}` is deprecated; use `{new}`", DeprecationWarning, stacklevel=3)

    def get(self):
        warn()
        return getattr(self, new)

    def set(self, value):
        warn()
        setattr(self, new, value)

    return property(get, set, doc=f"The old name of `{new}` (deprecated).")


def upgrade_keys(stored, renames):
    """A dict read from a file of an older version, with its old keys (old -> new) renamed.

    A key whose new name is already there stays as it is.

    Example:
    >>> upgrade_keys({"model": "group", "epochs": 2}, {"model": "method"})
    {'epochs': 2, 'method': 'group'}
    """
    if not isinstance(stored, dict):
        return stored
    stored = dict(stored)
    for old, new in renames.items():
        if old in stored and new not in stored:
            stored[new] = stored.pop(old)
    return stored


def upgrade_results(results):
    """An experiment's `results.json` dict with the keys of older versions renamed.

    Older `table1` results held their rows under `variants` (now `methods`),
    and their config named the list `variants`.

    Example:
    >>> upgrade_results({"config": {"variants": ["group"]}, "variants": {"group": {}}})
    {'config': {'methods': ['group']}, 'methods': {'group': {}}}
    """
    results = upgrade_keys(results, {"variants": "methods"})
    if isinstance(results, dict) and "config" in results:
        results["config"] = upgrade_keys(results["config"], {"variants": "methods", "model": "method"})
    return results
