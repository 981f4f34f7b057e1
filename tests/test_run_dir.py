"""The run-directory contract, piece by piece: lock, rerun decision, checkpoints, CSV, best/last."""

import csv
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_shiftinv.errors import UsageError
from keras_shiftinv.saving import read_metadata
from keras_shiftinv.training.lock import RunLock
from keras_shiftinv.training.recipe import one_cycle
from keras_shiftinv.training.run_checkpoint import RunCheckpoint
from keras_shiftinv.training.run_checkpoint import initial_state
from keras_shiftinv.training.run_dir import RunDir

META = {"class_names": ["a", "b", "c"], "dataset": "toy", "image_size": 4, "method": "dense", "config": {}}


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_is_exclusive_and_names_its_owner(tmp_path):
    path = str(tmp_path / ".lock")
    with RunLock(path):
        owner = json.loads(open(path).read())
        assert owner == {"host": socket.gethostname(), "pid": os.getpid()}
        with pytest.raises(UsageError, match=f"in use by another training \\(pid {os.getpid()} on "):
            RunLock(path).acquire()
    assert not os.path.exists(path)


@pytest.mark.parametrize(
    "owner, stale",
    [
        ("dead", True),  # this host, process gone: taken over
        ({"host": "some-other-host", "pid": 1}, False),  # cannot check another host's pids
        ("", False),  # empty: a process between create and write
    ],
)
def test_stale_lock_detection(owner, stale, tmp_path):
    path = tmp_path / ".lock"
    if owner == "dead":
        owner = {"host": socket.gethostname(), "pid": _dead_pid()}
    path.write_text(json.dumps(owner) if owner else "")
    if stale:
        with RunLock(str(path)):
            assert json.loads(path.read_text())["pid"] == os.getpid()
    else:
        with pytest.raises(UsageError, match="in use by another training"):
            RunLock(str(path)).acquire()
        assert path.exists()  # not ours: left alone
    if owner == "":
        old = os.path.getmtime(path) - 120  # an empty lock this old was left by a kill
        os.utime(path, (old, old))
        with RunLock(str(path)):
            pass


def test_rerun_decision(tmp_path):
    run = RunDir(tmp_path / "run")
    settings = {"method": "group", "seed": 0, "class_names": ["a", "b"]}
    assert run.decide(settings, overwrite=False) == "new"
    run.write_config({**settings, "steps_per_epoch": 8})
    assert run.decide(settings, overwrite=False) == "resume"
    with pytest.raises(UsageError, match=r"other settings \(method: 'group' -> 'stride'; seed: 0 -> 1\)"):
        run.decide({**settings, "method": "stride", "seed": 1}, overwrite=False)
    # An older version's config.json names the method `model`: the run still resumes (or is refused).
    run.write_config({"model": "group", "seed": 0, "class_names": ["a", "b"], "steps_per_epoch": 8})
    assert run.decide(settings, overwrite=False) == "resume"
    with pytest.raises(UsageError, match=r"other settings \(method: 'group' -> 'stride'\)"):
        run.decide({**settings, "method": "stride"}, overwrite=False)
    with pytest.raises(UsageError, match=r"class_names: \['a', 'b'\] -> \['a', 'c'\]"):
        run.decide({**settings, "class_names": ["a", "c"]}, overwrite=False)
    assert run.decide({**settings, "seed": 1}, overwrite=True) == "new"
    (tmp_path / "run" / "final.keras").write_bytes(b"x")
    assert run.decide(settings, overwrite=False) == "finished"
    (tmp_path / "run" / "config.json").unlink()
    with pytest.raises(UsageError, match="holds run files \\(final.keras\\) but no config.json"):
        run.decide(settings, overwrite=False)
    (tmp_path / "run" / "notes.txt").write_text("mine")
    run.clear()
    assert os.listdir(tmp_path / "run") == ["notes.txt"]  # only the contract's files go


def _toy_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(one_cycle(0.1, 12), momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.optimizer.build(model.trainable_variables)
    return model


def _callback(run, model, state=None):
    callback = RunCheckpoint(run, META, "accuracy", state or initial_state())
    callback.set_model(model)
    return callback


def _weights(model):
    return [np.array(v) for v in model.weights]


def test_checkpoints_csv_best_last_and_corrupt_fallback(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype("float32"), rng.integers(0, 3, 16)
    run = RunDir(tmp_path / "run")
    model = _toy_model()
    after_epoch = {}
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: after_epoch.update({e + 1: (_weights(model), int(model.optimizer.iterations))})
    )
    callback = RunCheckpoint(run, META, "accuracy", initial_state())
    history = model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=[record, callback])
    # Two newest checkpoints kept; the CSV equals Keras's own history, each epoch once.
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["epoch-0002.keras", "epoch-0003.keras"]
    rows = list(csv.DictReader(open(tmp_path / "run" / "training_log.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], history.history["loss"], rtol=1e-6)
    acc = history.history["accuracy"]
    assert read_metadata(run.file("best.keras"))["epoch"] == 1 + int(np.argmax(acc))  # first maximum
    assert read_metadata(run.file("last.keras"))["epoch"] == 3
    assert read_metadata(run.file("last.keras"))["class_names"] == ["a", "b", "c"]
    # A torn newest checkpoint is skipped with a one-line warning; the previous one loads.
    newest = tmp_path / "run" / "checkpoints" / "epoch-0003.keras"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    fresh = _toy_model()
    state = run.restore(fresh)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("shiftinv: warning: skipping unreadable checkpoint")
    assert "epoch-0003.keras" in err[0] and "falling back" in err[0]
    assert state["epoch"] == 2 and [r["epoch"] for r in state["rows"]] == [0, 1]
    weights, iterations = after_epoch[2]
    for a, b in zip(_weights(fresh), weights):
        np.testing.assert_array_equal(a, b)
    assert int(fresh.optimizer.iterations) == iterations == 8  # the schedule's position


def test_resume_keeps_the_best_threshold_and_refuses_nan(tmp_path):
    run = RunDir(tmp_path / "run")
    model = _toy_model()
    _callback(run, model).on_epoch_end(0, {"loss": 1.0, "accuracy": 0.9})
    restored = run.restore(_toy_model())
    assert restored["best"] == 0.9 and restored["best_epoch"] == 1
    resumed = _callback(run, model, restored)
    resumed.on_epoch_end(1, {"loss": 0.8, "accuracy": 0.5})  # worse: best.keras stays at epoch 1
    assert read_metadata(run.file("best.keras"))["epoch"] == 1
    assert read_metadata(run.file("last.keras"))["epoch"] == 2
    with pytest.raises(UsageError, match="the loss became nan in epoch 3: training diverged"):
        resumed.on_epoch_end(2, {"loss": float("nan"), "accuracy": 0.1})
    assert sorted(os.listdir(run.file("checkpoints"))) == ["epoch-0001.keras", "epoch-0002.keras"]
    assert [r["epoch"] for r in csv.DictReader(open(run.file("training_log.csv")))] == ["0", "1"]


def test_publish_repairs_files_after_a_kill_between_checkpoint_and_csv(tmp_path):
    run = RunDir(tmp_path / "run")
    model = _toy_model()
    callback = _callback(run, model)
    callback.on_epoch_end(0, {"loss": 1.0, "accuracy": 0.5})
    callback.on_epoch_end(1, {"loss": 0.9, "accuracy": 0.7})
    # As if killed right after the epoch-2 checkpoint: derived files still at epoch 1.
    os.remove(run.file("best.keras"))
    os.remove(run.file("last.keras"))
    run.write_log([{"epoch": 0, "loss": 1.0, "accuracy": 0.5}])
    _callback(run, model, run.restore(_toy_model())).publish()
    assert read_metadata(run.file("best.keras"))["epoch"] == 2
    assert read_metadata(run.file("last.keras"))["epoch"] == 2
    assert [r["epoch"] for r in csv.DictReader(open(run.file("training_log.csv")))] == ["0", "1"]
