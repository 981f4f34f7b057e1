"""`RunCheckpoint`: the callback that keeps a `RunDir` (docs/design.md, "Run directory")."""

import math

import keras

from keras_shiftinv.errors import UsageError


def initial_state():
    """The run state before the first epoch."""
    return {"epoch": 0, "rows": [], "best": None, "best_epoch": None}


class RunCheckpoint(keras.callbacks.Callback):
    """After each epoch: checkpoint, then `best.keras`, `last.keras`, `training_log.csv`.

    The checkpoint (`checkpoints/epoch-N.keras`: weights, optimizer with its
    step counter, and the run state: epochs done, every CSV row, the best
    monitored value) is written first and is the commit point. The other files
    are derived from it, so `publish` can redo them after a kill.

    Args:
        run: the `RunDir`.
        metadata: dict stored in every `.keras` written (class names, config...).
        monitor: the logs key that picks `best.keras` (higher is better).
        state: the restored run state, or `initial_state()`.
    """

    def __init__(self, run, metadata, monitor, state):
        super().__init__()
        self.run = run
        self.metadata = metadata
        self.monitor = monitor
        self.state = state

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        if not math.isfinite(logs.get("loss", 0.0)):
            raise UsageError(f"the loss became {logs['loss']} in epoch {epoch + 1}: training diverged "
                             "(nothing of this epoch was saved); lower --learning-rate")
        value = logs.get(self.monitor)
        best = self.state["best"]
        improved = value is not None and math.isfinite(value) and (best is None or value > best)
        self.state = {
            **self.state,
            "epoch": epoch + 1,
            "rows": [r for r in self.state["rows"] if r["epoch"] < epoch] + [{"epoch": epoch, **logs}],
            "best": value if improved else best,
            "best_epoch": epoch + 1 if improved else self.state["best_epoch"],
        }
        self.run.save_checkpoint(self.model, self.metadata, self.state)
        self.publish()

    def publish(self):
        """Brings best/last.keras and the CSV up to the committed state."""
        done = self.state["epoch"]
        if done == 0:
            self.run.write_log([])
            return
        if self.state["best_epoch"] == done and self.run.saved_epoch("best.keras") != done:
            self.run.save("best.keras", self.model, self.metadata, done)
        if self.run.saved_epoch("last.keras") != done:
            self.run.save("last.keras", self.model, self.metadata, done)
        self.run.write_log(self.state["rows"])
