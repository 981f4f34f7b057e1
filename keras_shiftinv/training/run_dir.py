"""`RunDir`: the files of one training run and the rerun/resume decision.

The contract (docs/design.md, "Run directory"), the same for single-host and
multi-worker training:

    config.json              settings + data facts (class names), written first
    training_log.csv         one row per finished epoch, rewritten atomically
    logs/                    TensorBoard event files
    checkpoints/epoch-N.keras  model + optimizer + run state after N epochs (newest 2 kept)
    best.keras, last.keras   best epoch by the monitored metric, newest epoch
    final.keras              the finished model; its presence means "finished"
    .lock                    held by the training process

Every file is written to a temporary name and renamed into place, so a kill at
any moment leaves the previous version or the new one, never a torn file.
"""

import csv
import glob
import io
import json
import os
import re
import shutil
import sys

from keras_shiftinv._renames import upgrade_keys
from keras_shiftinv.errors import UsageError
from keras_shiftinv.saving import atomic_write_text
from keras_shiftinv.saving import read_metadata
from keras_shiftinv.saving import save_model
from keras_shiftinv.saving import write_json
from keras_shiftinv.training.lock import RunLock

KEEP_CHECKPOINTS = 2
RUN_FILES = ("config.json", "training_log.csv", "logs", "checkpoints", "best.keras", "last.keras",
             "final.keras", "backup")


class RunDir:
    """The model dir of one run.

    Args:
        path: the model dir.

    Example:
    >>> run = RunDir(os.path.join(tmp_dir, "run"))
    >>> run.decide({"method": "group"}, overwrite=False)
    'new'
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def file(self, name):
        return os.path.join(self.path, name)

    def lock(self):
        os.makedirs(self.path, exist_ok=True)
        return RunLock(self.file(".lock"))

    # --- the decision -------------------------------------------------------

    def decide(self, settings, overwrite):
        """`"new"`, `"resume"` or `"finished"` for a run with `settings` (a dict).

        A dir holding another run's files is a one-line `UsageError` unless
        `overwrite` (then the caller clears it with `clear`).
        """
        stored = self.read_config()
        present = [n for n in RUN_FILES if os.path.exists(self.file(n))]
        if stored is None:
            if present and not overwrite:
                raise UsageError(f"{self.path} holds run files ({', '.join(present)}) but no config.json; "
                                 "pick another `model_dir` or pass `overwrite=True` to start over")
            return "new"
        diffs = [f"{k}: {stored.get(k)!r} -> {v!r}" for k, v in settings.items() if stored.get(k) != v]
        if diffs and not overwrite:
            raise UsageError(f"{self.path} holds a run with other settings ({'; '.join(diffs[:3])}); rerun "
                             "with its settings to resume, pick another `model_dir`, or pass `overwrite=True`")
        if diffs:
            return "new"
        return "finished" if os.path.exists(self.file("final.keras")) else "resume"

    def read_config(self):
        path = self.file("config.json")
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                return upgrade_keys(json.load(f), {"model": "method"})  # `model`: its old name
        except (OSError, ValueError) as e:
            raise UsageError(f"{path} is unreadable ({type(e).__name__}); pass `overwrite=True` to start over") from None

    def clear(self):
        """Removes the run files (only those of the contract) and stale temporaries."""
        for name in RUN_FILES:
            path = self.file(name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
        self.remove_temporaries()

    def remove_temporaries(self):
        """Deletes temporary files left by a process killed while writing."""
        for pattern in (".*.tmp-*", "checkpoints/.*.tmp-*"):
            for path in glob.glob(os.path.join(glob.escape(self.path), pattern)):
                os.remove(path)

    def write_config(self, config_dict):
        os.makedirs(self.path, exist_ok=True)
        write_json(self.file("config.json"), config_dict)

    # --- checkpoints ----------------------------------------------------------

    def checkpoints(self):
        """Checkpoint paths, newest first."""
        found = []
        for path in glob.glob(os.path.join(glob.escape(self.file("checkpoints")), "epoch-*.keras")):
            match = re.fullmatch(r"epoch-(\d+)\.keras", os.path.basename(path))
            if match:
                found.append((int(match.group(1)), path))
        return [path for _, path in sorted(found, reverse=True)]

    def save_checkpoint(self, model, metadata, state):
        os.makedirs(self.file("checkpoints"), exist_ok=True)
        path = os.path.join(self.file("checkpoints"), f"epoch-{state['epoch']:04d}.keras")
        save_model(model, path, {**metadata, "epoch": state["epoch"], "state": state})
        for old in self.checkpoints()[KEEP_CHECKPOINTS:]:
            os.remove(old)
        return path

    def restore(self, model):
        """Loads the newest readable checkpoint into `model` (built, compiled).

        A checkpoint that does not load is skipped with a one-line warning on
        stderr, falling back to the previous one.

        Returns:
            The run state stored with it, or None when there is none.
        """
        for path in self.checkpoints():
            try:
                state = read_metadata(path)["state"]
                if not model.optimizer.built:
                    model.optimizer.build(model.trainable_variables)
                model.load_weights(path)
                return state
            except Exception as e:  # noqa: BLE001 - any failure means: not usable
                reason = str(e).splitlines()[0][:120] if str(e) else ""
                print(f"shiftinv: warning: skipping unreadable checkpoint {path} ({type(e).__name__}: {reason}); "
                      "falling back to the previous one", file=sys.stderr, flush=True)
        return None

    # --- the other files ------------------------------------------------------

    def save(self, name, model, metadata, epoch):
        return save_model(model, self.file(name), {**metadata, "epoch": epoch})

    def saved_epoch(self, name):
        """The `epoch` in a saved model's metadata (None if missing or unreadable)."""
        try:
            return read_metadata(self.file(name)).get("epoch")
        except UsageError:
            return None

    def write_log(self, rows):
        """Rewrites `training_log.csv` from `rows` (dicts with an `epoch` key)."""
        path = self.file("training_log.csv")
        if not rows:
            if os.path.exists(path):
                os.remove(path)
            return
        keys = ["epoch"] + sorted({k for row in rows for k in row} - {"epoch"})
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(path, text.getvalue())
