"""The records of an experiment's method/seed pairs: one home for table1, segment and finetune.

Each finished pair leaves one JSON record, `{"settings": ..., <its results>}`,
written atomically (`saving.write_json`) once the pair is done, so a rerun
after a kill resumes: `read_pair` returns the record of a finished pair, None
for one to (re)do, and refuses one made with other settings unless
`overwrite=True`. `summarize` turns a pair's seeds into a table cell and
`write_summary` writes the `results.md` table (docs/design.md, "Experiments").
"""

import json
import os

import numpy as np

from keras_shiftinv import report
from keras_shiftinv._renames import upgrade_results
from keras_shiftinv.errors import UsageError
from keras_shiftinv.saving import atomic_write_text
from keras_shiftinv.saving import write_json


def settings_differ(stored, settings):
    """`"key: old -> new"` for each key whose value differs (at most 3), `[]` if none.

    Example:
    >>> settings_differ({"epochs": 1, "seed": 0}, {"epochs": 2, "seed": 0})
    ['epochs: 1 -> 2']
    """
    keys = list(settings) + [k for k in stored if k not in settings]
    return [f"{k}: {stored.get(k)!r} -> {settings.get(k)!r}" for k in keys if stored.get(k) != settings.get(k)][:3]


def read_pair(path, settings, overwrite=False, upgrade=None):
    """The record of a finished pair at `path`, or None when the pair must be (re)done.

    Args:
        path: the pair's record file.
        settings: what the pair's results depend on (a JSON-able dict).
        overwrite: if True, a record made with other settings is redone
            (None); if False, it is a one-line `UsageError`. A record that
            differs only in `settings["versions"]` (other library versions)
            is always redone.
        upgrade: None, or a function that brings a record of an older
            version to today's keys.

    Example:
    >>> path = os.path.join(tmp_dir, "seed0.json")
    >>> read_pair(path, {"epochs": 1}) is None  # not run yet
    True
    >>> record = write_pair(path, {"epochs": 1}, scores={"top1": 80.0})
    >>> read_pair(path, {"epochs": 1})["scores"]
    {'top1': 80.0}
    >>> read_pair(path, {"epochs": 2})
    Traceback (most recent call last):
    ...
    keras_shiftinv.errors.UsageError: ... holds results made with other settings; pass `overwrite=True` to replace them, or choose another `out_dir` (epochs: 1 -> 2)
    """
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            stored = json.load(f)
    except (OSError, ValueError):
        return None  # written atomically, so only a foreign file gets here: redo the pair
    if upgrade is not None:
        stored = upgrade(stored)
    settings = json.loads(json.dumps(settings))  # as stored: tuples are lists
    stored_settings = stored.get("settings") if isinstance(stored, dict) else None
    if stored_settings == settings:
        return stored
    if overwrite:
        return None
    if isinstance(stored_settings, dict) and {**stored_settings, "versions": None} == {**settings, "versions": None}:
        return None  # only the library versions changed: the pair is scored again, not refused
    diffs = settings_differ(stored_settings if isinstance(stored_settings, dict) else {}, settings)
    raise UsageError(f"{path} holds results made with other settings; pass `overwrite=True` to replace them, "
                     f"or choose another `out_dir` ({'; '.join(diffs)})")


def write_pair(path, settings, **results):
    """Writes a finished pair's record `{"settings": settings, **results}` atomically; returns it."""
    record = {"settings": settings, **results}
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_json(path, record)
    return record


def summarize(values):
    """A table cell of the seeds' values: `{"mean", "std" (population), "values"}`.

    Example:
    >>> summarize([1, 2, 3])["mean"], round(summarize([1, 2, 3])["std"], 4)
    (2.0, 0.8165)
    """
    values = [float(v) for v in values]
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}


def write_summary(path, title, rows, columns):
    """Writes `results.md` atomically: `title`, a blank line, one table row per method; returns the table.

    Args:
        path: the Markdown file.
        title: one line (the dataset, preset, seeds, ...).
        rows: `{method: {key: value}}`, in order.
        columns: `(key, title, fmt)`; `fmt` is a format string (a `summarize`
            cell shows `mean ± std`) or a function of the value.
    """
    table = report.markdown_table(rows, columns=columns, first="Method")
    atomic_write_text(path, f"{title}\n\n{table}")
    return table


def load_results(path):
    """An experiment's `results.json` (table1, segment, finetune), in today's keys.

    A file written by an older version loads too: its `variants` (table1's
    old name of `methods`) is renamed.

    Args:
        path: the `results.json` file.

    Returns:
        The results dict; its rows are under `"methods"`.
    """
    with open(path, encoding="utf-8") as f:
        return upgrade_results(json.load(f))
