"""A Table 1 pair's result depends only on its settings (docs/design.md, "Reproducibility").

The same tiny pair is trained (a) alone and (b) after another pair in the same process, killed
right after its first epoch's checkpoint and resumed: the weights (sha256 of every weight) and
every score must be identical. The kill is a deterministic point in this process (a
BaseException, which nothing in the library catches, raised after the checkpoint's commit);
tests/test_training.py keeps a real SIGKILL of a training process in the default suite.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from keras_shiftinv.experiments.table1 import METRICS
from keras_shiftinv.experiments.table1 import Table1Config
from keras_shiftinv.experiments.table1 import run_table1
from keras_shiftinv.saving import load_model
from keras_shiftinv.training import run_checkpoint
from keras_shiftinv.training import weights_digest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = dict(train_examples=128, eval_examples=32, stability_images=8, epochs=2, width=0.125, batch_size=64)


def config(methods):
    return Table1Config.from_preset("quick", methods=methods, **SETTINGS)


def pair_result(out, results):
    model = load_model(os.path.join(out, "models", "stride", "seed0", "final.keras"))
    row = results["methods"]["stride"]
    return weights_digest(model), {m: row[m]["values"] for m in METRICS}


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """The stride pair trained alone: (out_dir, results)."""
    out = str(tmp_path_factory.mktemp("alone"))
    return out, run_table1(out, config(("stride",)), verbose=0)


class Killed(BaseException):
    """Stands for a kill: a BaseException, which nothing in the library catches."""


def test_a_pair_is_the_same_alone_after_another_pair_and_resumed_after_a_kill(alone, tmp_path, monkeypatch):
    a = pair_result(*alone)
    # Blur's two epochs, then stride's first; the run dies right after that epoch's checkpoint commit.
    killed, commits = str(tmp_path / "killed"), []
    commit = run_checkpoint.RunCheckpoint.on_epoch_end

    def commit_then_die(self, epoch, logs=None):
        commit(self, epoch, logs)
        commits.append(epoch)
        if len(commits) == 3:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(run_checkpoint.RunCheckpoint, "on_epoch_end", commit_then_die)
        with pytest.raises(Killed):
            run_table1(killed, config(("blur", "stride")), verbose=0)
    assert commits == [0, 1, 0]
    assert os.path.exists(os.path.join(killed, "models", "blur", "seed0", "scores.json"))
    pair_dir = os.path.join(killed, "models", "stride", "seed0")
    assert sorted(os.listdir(os.path.join(pair_dir, "checkpoints"))) == ["epoch-0001.keras"]
    assert not os.path.exists(os.path.join(pair_dir, "final.keras"))
    # The rerun reuses blur's scores and resumes stride after epoch 1: a pair trained after another
    # pair in this process, and resumed after a kill.
    c = pair_result(killed, run_table1(killed, config(("blur", "stride")), verbose=0))
    with open(os.path.join(pair_dir, "training_log.csv"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 3  # header + both epochs, one of them from the killed run
    assert a[0] == c[0]
    assert a[1] == c[1]
    assert 0.0 < a[1]["top1"][0] <= 100.0


def test_a_stored_pair_of_other_versions_is_not_reused(alone, tmp_path):
    """scores.json records the versions; a pair scored by other versions is not taken as done."""
    out = str(tmp_path / "t")
    shutil.copytree(alone[0], out)  # a finished run (model_dir is not one of a run's settings)
    path = os.path.join(out, "models", "stride", "seed0", "scores.json")
    with open(path, encoding="utf-8") as f:
        stored = json.load(f)
    assert stored["settings"]["versions"] == stored["provenance"]["versions"]
    stored["settings"]["versions"]["tensorflow"] = "0.0"
    stored["scores"]["top1"] = -1.0
    with open(path, "w", encoding="utf-8") as f:
        json.dump(stored, f)
    # The run dir itself was made by these versions: the pair is rescored from final.keras, not reused.
    again = run_table1(out, config(("stride",)), verbose=0)
    assert again["methods"]["stride"]["top1"] == alone[1]["methods"]["stride"]["top1"]
    with open(path, encoding="utf-8") as f:
        assert json.load(f)["settings"]["versions"]["tensorflow"] != "0.0"  # rescored and rewritten


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
