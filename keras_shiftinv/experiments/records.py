"""The files of an experiment's method/seed pairs (docs/design.md, "One word: method")."""

import json

from keras_shiftinv._renames import upgrade_results


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
