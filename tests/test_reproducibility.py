"""A Table 1 pair's result depends only on its settings (docs/design.md, "Reproducibility").

The same tiny pair is trained (a) alone, (b) after another pair in the same
process and (c) in a process that dies right after its first epoch's
checkpoint, then resumed: the weights (sha256 of every weight) and every
score must be identical.
"""

import json
import os
import subprocess
import sys

from keras_shiftinv.experiments.table1 import METRICS
from keras_shiftinv.experiments.table1 import Table1Config
from keras_shiftinv.experiments.table1 import run_table1
from keras_shiftinv.saving import load_model
from keras_shiftinv.training import weights_digest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = dict(train_examples=128, eval_examples=32, stability_images=8, epochs=2, width=0.125, batch_size=64)

# Runs the pair in a child process that exits hard (no clean-up, like a kill)
# right after the checkpoint of epoch 1 is committed.
KILLED_CHILD = """
import os, sys
from keras_shiftinv.training import run_checkpoint
from keras_shiftinv.experiments.table1 import Table1Config, run_table1
commit = run_checkpoint.RunCheckpoint.on_epoch_end
def commit_then_die(self, epoch, logs=None):
    commit(self, epoch, logs)
    if epoch == 0:
        os._exit(9)
run_checkpoint.RunCheckpoint.on_epoch_end = commit_then_die
run_table1(sys.argv[1], Table1Config.from_preset("quick", variants=("stride",), **%r), verbose=0)
""" % SETTINGS


def pair_result(out, results):
    model = load_model(os.path.join(out, "models", "stride", "seed0", "final.keras"))
    row = results["variants"]["stride"]
    return weights_digest(model), {m: row[m]["values"] for m in METRICS}


def test_a_pair_is_the_same_alone_after_another_pair_and_resumed_after_a_kill(tmp_path):
    alone = str(tmp_path / "alone")
    a = pair_result(alone, run_table1(alone, Table1Config.from_preset("quick", variants=("stride",), **SETTINGS),
                                      verbose=0))
    after = str(tmp_path / "after")
    b = pair_result(after, run_table1(after, Table1Config.from_preset("quick", variants=("blur", "stride"),
                                                                      **SETTINGS), verbose=0))
    killed = str(tmp_path / "killed")
    child = subprocess.run([sys.executable, "-c", KILLED_CHILD, killed], capture_output=True, text=True,
                           timeout=600, env={**os.environ, "PYTHONPATH": ROOT})
    assert child.returncode == 9, child.stderr[-2000:]
    pair_dir = os.path.join(killed, "models", "stride", "seed0")
    assert sorted(os.listdir(os.path.join(pair_dir, "checkpoints"))) == ["epoch-0001.keras"]
    assert not os.path.exists(os.path.join(pair_dir, "final.keras"))
    c = pair_result(killed, run_table1(killed, Table1Config.from_preset("quick", variants=("stride",), **SETTINGS),
                                       verbose=0))
    with open(os.path.join(pair_dir, "training_log.csv"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 3  # header + both epochs, one of them from the killed process
    assert a[0] == b[0] == c[0]
    assert a[1] == b[1] == c[1]
    assert 0.0 < a[1]["top1"][0] <= 100.0


def test_a_stored_pair_of_other_versions_is_not_reused(tmp_path):
    """scores.json records the versions; a pair scored by other versions is not taken as done."""
    config = Table1Config.from_preset("quick", variants=("stride",), **{**SETTINGS, "epochs": 1})
    out = str(tmp_path / "t")
    first = run_table1(out, config, verbose=0)
    path = os.path.join(out, "models", "stride", "seed0", "scores.json")
    with open(path, encoding="utf-8") as f:
        stored = json.load(f)
    assert stored["evaluation"]["versions"] == stored["provenance"]["versions"]
    stored["evaluation"]["versions"]["tensorflow"] = "0.0"
    stored["scores"]["top1"] = -1.0
    with open(path, "w", encoding="utf-8") as f:
        json.dump(stored, f)
    # The run dir itself was made by these versions: the pair is rescored from final.keras, not reused.
    again = run_table1(out, config, verbose=0)
    assert again["variants"]["stride"]["top1"] == first["variants"]["stride"]["top1"]


def test_provenance_matches_independently_gathered_values(tmp_path):
    import datetime
    import importlib.metadata
    import time

    from keras_shiftinv import provenance

    stamp = provenance.start()
    time.sleep(0.3)
    record = provenance.finish(stamp)
    for dist, key in (("tensorflow", "tensorflow"), ("keras", "keras"), ("numpy", "numpy")):
        assert record["versions"][key] == importlib.metadata.version(dist)
    assert record["versions"]["python"] == "%d.%d.%d" % sys.version_info[:3]
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # run from a checkout
        dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD"]).returncode != 0
        assert record["git"] == {"commit": head.stdout.strip(), "dirty": dirty}
    assert provenance.git_commit(str(tmp_path)) is None  # not a checkout
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        processors = sum(line.startswith("processor") for line in f)
    assert record["machine"]["cpu_count"] == processors
    assert record["machine"]["backend"] == os.environ.get("KERAS_BACKEND", "tensorflow")
    with open("/proc/loadavg", encoding="utf-8") as f:
        now = [float(x) for x in f.read().split()[:3]]
    assert all(abs(a - b) < 2.0 for a, b in zip(record["load_average_after"], now))
    assert len(record["load_average_before"]) == 3
    assert 0.3 <= record["wall_seconds"] < 30
    started = datetime.datetime.fromisoformat(record["started"])
    finished = datetime.datetime.fromisoformat(record["finished"])
    assert abs((datetime.datetime.now(datetime.timezone.utc) - finished).total_seconds()) < 60
    assert started <= finished
    assert record["command"] == sys.argv
