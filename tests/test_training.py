import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import pytest

from keras_shiftinv.cli import main
from helpers import cli_command
from helpers import cli_env
from helpers import shiftinv
from keras_shiftinv.saving import read_metadata

QUICK = ["--dataset", "fashion_mnist", "--width", "0.125", "--max-train-examples", "256",
         "--max-eval-examples", "128", "--batch-size", "32", "--verbose", "2"]


def snapshot(directory):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(directory.rglob("*")) if p.is_file()}


# "group" through `train` runs by default in table1's tiny run and the mirrored and two-worker tests.
@pytest.mark.parametrize("model", ["stride", pytest.param("group", marks=pytest.mark.slow)])
def test_one_epoch_through_the_cli_writes_every_artefact(model, tmp_path, capsys, fresh_process):
    d = tmp_path / model
    args = ["train", "--method", model, "--epochs", "1", "--model-dir", str(d), *QUICK]
    assert main(args) == 0
    for name in ["config.json", "best.keras", "last.keras", "final.keras", "training_log.csv",
                 "checkpoints/epoch-0001.keras"]:
        assert (d / name).exists(), name
    assert not (d / ".lock").exists()
    assert any((d / "logs").rglob("*tfevents*"))
    config = json.loads((d / "config.json").read_text())
    assert config["method"] == model and "model" not in config and config["peak_learning_rate"] == pytest.approx(0.5 * 32 / 128)
    assert config["steps_per_epoch"] == 8 and config["class_names"][0] == "T-shirt/top"
    rows = list(csv.DictReader(open(d / "training_log.csv")))
    assert len(rows) == 1 and "val_accuracy" in rows[0]
    metadata = read_metadata(d / "final.keras")
    assert metadata["class_names"] == config["class_names"] and len(metadata["class_names"]) == 10
    assert (metadata["dataset"], metadata["image_size"], metadata["method"]) == ("fashion_mnist", 32, model)
    loaded = keras.saving.load_model(d / "final.keras")
    loaded.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    from keras_shiftinv.data import fashion_mnist

    _, acc = loaded.evaluate(fashion_mnist("test", batch_size=64, max_examples=128)[0], verbose=0)
    assert acc == pytest.approx(float(rows[0]["val_accuracy"]), abs=1e-6)
    if model == "group":
        return
    # Finding 1: everything written loads in a fresh process after only `import keras_shiftinv`.
    files = [d / n for n in ("best.keras", "last.keras", "final.keras", "checkpoints/epoch-0001.keras")]
    assert {len(v["metadata"]["class_names"]) for v in fresh_process.load(files).values()} == {10}
    # Finding 4: a finished dir is left alone; other settings are a one-line error.
    before = snapshot(d)
    capsys.readouterr()
    assert main(args) == 0
    assert "already finished" in capsys.readouterr().out
    assert snapshot(d) == before
    for other in (["--seed", "1"], ["--method", "group"], ["--model", "group"]):  # --model: the old name
        assert main([*args, *other]) == 2
        err = capsys.readouterr().err
        assert "holds a run with other settings" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert snapshot(d) == before


KILL_QUICK = [*QUICK, "--max-eval-examples", "64", "--deterministic"]


def _tmp_files(d):
    return [n for sub in (d, d / "checkpoints") if sub.is_dir() for n in os.listdir(sub) if ".tmp-" in n]


def _epochs_logged(d):
    log = d / "training_log.csv"
    return len(log.read_text().strip().splitlines()) - 1 if log.exists() else 0


def _run_and_kill(args, d, mode, rng, out):
    """Starts a training; kills it during a checkpoint save, during best/last, just after an epoch's
    CSV row, or at a random moment (3-40 s after the start)."""
    with open(out, "w") as f:
        proc = subprocess.Popen(cli_command(*args), env=cli_env(), stdout=f, stderr=subprocess.STDOUT)
    deadline = time.time() + (rng.uniform(3, 40) if mode == "random" else 400)
    logged = _epochs_logged(d)
    while proc.poll() is None and time.time() < deadline:
        if mode == "save" and _tmp_files(d):
            break
        if mode == "derived" and any(n.startswith((".best.", ".last.")) for n in _tmp_files(d)):
            break  # after the checkpoint commit, before best/last/CSV are brought up to date
        if mode == "epoch-end" and _epochs_logged(d) > logged:
            break
        if mode == "second-checkpoint" and _newest_checkpoint(d) >= 1 and _tmp_files(d / "checkpoints"):
            break  # epoch 1 committed; epoch 2's checkpoint is being written
        time.sleep(0.002)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return "killed"
    return proc.returncode


def _newest_checkpoint(d):
    names = os.listdir(d / "checkpoints") if (d / "checkpoints").is_dir() else []
    return max([int(n[6:10]) for n in names if n.startswith("epoch-") and n.endswith(".keras")], default=0)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted 2-epoch KILL_QUICK training, in this process: what every interrupted run must equal."""
    d = tmp_path_factory.mktemp("reference") / "reference"
    assert main(["train", "--model", "stride", "--epochs", "2", "--model-dir", str(d), *KILL_QUICK]) == 0
    return d


def check_finished_like(d, reference, epochs, fresh_process):
    """`d`, trained with interruptions, is finished and equals the uninterrupted `reference` run."""
    # Each epoch exactly once; the same losses as the uninterrupted run.
    rows = list(csv.DictReader(open(d / "training_log.csv")))
    ref_rows = list(csv.DictReader(open(reference / "training_log.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(epochs))
    assert [r["loss"] for r in rows] == [r["loss"] for r in ref_rows]
    assert not _tmp_files(d) and not (d / ".lock").exists()
    best = 1 + max(range(epochs), key=lambda i: (float(rows[i]["val_accuracy"]), -i))
    assert read_metadata(d / "best.keras")["epoch"] == best
    files = [d / "final.keras", d / "best.keras", d / "last.keras", reference / "final.keras",
             *sorted((d / "checkpoints").iterdir())]
    loaded = fresh_process.load(files)
    assert loaded[str(d / "final.keras")]["digest"] == loaded[str(reference / "final.keras")]["digest"]
    assert loaded[str(d / "final.keras")]["digest"] == loaded[str(d / "last.keras")]["digest"]


def kill_until_finished(tmp_path, epochs, modes, fresh_process, reference=None, seed=0):
    """Trains with a SIGKILL per entry of `modes`, reruns until finished; checks the finished dir.

    Returns `(kills, runs)`.
    """
    import random

    rng = random.Random(seed)
    d = tmp_path / "killed"
    args = ["train", "--model", "stride", "--epochs", str(epochs), "--model-dir", str(d), *KILL_QUICK]
    if reference is None:  # the uninterrupted run, in this process (same code, same seed)
        reference = tmp_path / "reference"
        assert main(["train", "--model", "stride", "--epochs", str(epochs), "--model-dir", str(reference),
                     *KILL_QUICK]) == 0
    kills = runs = 0
    for mode in modes:
        if (d / "final.keras").exists():
            break
        committed = _newest_checkpoint(d)
        outcome = _run_and_kill(args, d, mode, rng, tmp_path / f"run{runs}.txt")
        text = (tmp_path / f"run{runs}.txt").read_text()
        runs += 1
        assert "Traceback" not in text and "shiftinv train: error" not in text, text[-2000:]
        if committed and "Epoch " in text:  # it got going: it resumed after the newest checkpoint
            assert f"Resuming {d} after epoch {committed}/{epochs}" in text, text[-2000:]
        assert outcome in ("killed", 0), text[-2000:]
        kills += outcome == "killed"
    while not (d / "final.keras").exists() and runs < len(modes) + 3:
        final = shiftinv(*args, timeout=600)
        runs += 1
        assert final.returncode == 0, final.stderr[-2000:]
    check_finished_like(d, reference, epochs, fresh_process)
    return kills, runs


class Killed(BaseException):
    """Stands for a kill at a chosen point: a BaseException, which nothing in the library catches."""


def kill_at(monkeypatch, d, name, nth):
    """The run dies inside its `nth` atomic write of `d/name`: the temporary file is written, not renamed,
    and stays behind, as after a SIGKILL."""
    from keras_shiftinv import saving

    real = saving.atomic_write
    seen = []

    def atomic_write(path, write):
        if os.path.relpath(path, d) == name:
            seen.append(path)
            if len(seen) == nth:
                base, ext = os.path.splitext(os.path.basename(path))
                write(os.path.join(os.path.dirname(path), f".{base}.tmp-{os.getpid()}{ext}"))
                raise Killed(name)
        return real(path, write)

    monkeypatch.setattr(saving, "atomic_write", atomic_write)


def test_training_killed_at_each_commit_point_resumes_to_the_same_weights(
        tmp_path, reference_run, fresh_process, monkeypatch, capsys):
    """One real SIGKILL inside epoch 2's checkpoint write (stale lock and a half-written checkpoint left
    behind), then deterministic kill points, one per rerun in this process: after epoch 2's checkpoint
    commit, inside last.keras; inside final.keras (after the resume's publish). Then a clean rerun ends
    with the uninterrupted run's weights."""
    d = tmp_path / "killed"
    args = ["train", "--model", "stride", "--epochs", "2", "--model-dir", str(d), *KILL_QUICK]
    outcome = _run_and_kill(args, d, "second-checkpoint", None, tmp_path / "run0.txt")
    text = (tmp_path / "run0.txt").read_text()
    assert outcome == "killed" and "Traceback" not in text, text[-2000:]
    assert (d / ".lock").exists() and _newest_checkpoint(d) == 1
    assert _tmp_files(d / "checkpoints") and not (d / "final.keras").exists()
    capsys.readouterr()
    points = [  # (file, its nth write in the run, resumed after epoch, newest checkpoint after the kill)
        ("last.keras", 1, 1, 2),  # epoch 1's last.keras was written before the SIGKILL
        ("final.keras", 1, 2, 2),
    ]
    for name, nth, resumed, newest in points:
        with monkeypatch.context() as patch:
            kill_at(patch, d, name, nth)
            with pytest.raises(Killed, match=name):
                main(args)
        out = capsys.readouterr().out
        assert _newest_checkpoint(d) == newest, name
        assert f"Resuming {d} after epoch {resumed}/2" in out, (name, out[-2000:])
        assert not (d / "final.keras").exists()
        assert _tmp_files(d), name  # the kill left its temporary file
    assert main(args) == 0
    assert f"Resuming {d} after epoch 2/2" in capsys.readouterr().out
    check_finished_like(d, reference_run, 2, fresh_process)


@pytest.mark.slow
def test_training_killed_twice_resumes_to_the_same_weights(tmp_path, reference_run, fresh_process):
    kills, runs = kill_until_finished(tmp_path, 2, ["save", "derived"], fresh_process, reference=reference_run)
    assert kills == 2


@pytest.mark.slow
def test_training_killed_ten_times_resumes_to_the_same_weights(tmp_path, fresh_process):
    modes = ["save", "random", "derived", "random", "epoch-end", "save", "random", "derived", "random", "save"]
    kills, runs = kill_until_finished(tmp_path, 6, modes, fresh_process, seed=7)
    print(f"kill test: {kills} kills, {runs} runs, all .keras loaded in a fresh process")
    assert kills >= 8


# One fresh process (the CPU is split into logical devices before TensorFlow starts): `main` with a
# batch size the 2 replicas cannot share (exit 2, nothing written), then the real mirrored run.
MIRRORED = """
import sys
from keras_shiftinv.cli import main
bad = main([*sys.argv[1:], "--batch-size", "33"])
print("@@bad-exit", bad, file=sys.stderr, flush=True)
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # 27 s; distributed training stays in the default run: test_two_worker_processes_train_together
def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    d = tmp_path / "mirrored"
    args = ["train", "--model", "group", "--epochs", "1", "--model-dir", d, "--cpu-replicas", "2", *QUICK]
    result = subprocess.run([sys.executable, "-c", MIRRORED, *map(str, args)], capture_output=True, text=True,
                            env=cli_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    bad, _, _ = result.stderr.partition("@@bad-exit")
    assert "@@bad-exit 2\n" in result.stderr and "not divisible by the 2 replicas" in bad
    assert "Traceback" not in result.stderr
    config = json.loads((d / "config.json").read_text())
    assert config["replicas"] == 2 and config["batch_size"] == 32
    assert (d / "final.keras").exists()


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_worker_processes_train_together(tmp_path, fresh_process):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = cli_env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
        args = ["train", "--model", "group", "--epochs", "2", "--model-dir", str(tmp_path / "mw"), *QUICK,
                "--max-train-examples", "128"]  # 4 steps an epoch: each all-reduce goes through gRPC
        procs.append(subprocess.Popen(cli_command(*args), env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=400) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    digests = [next(line for line in out.splitlines() if "final weights sha256" in line) for out, _ in outs]
    assert digests[0] == digests[1]
    assert "Epoch 2/2" in outs[0][0] and "Epoch 2/2" in outs[1][0]
    config = json.loads((tmp_path / "mw" / "config.json").read_text())
    assert config["replicas"] == 2 and config["strategy"] == "MultiWorkerMirroredStrategy"
    # The same run directory as model.fit writes (no validation: best follows training accuracy).
    d = tmp_path / "mw"
    rows = list(csv.DictReader(open(d / "training_log.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1] and {"loss", "accuracy"} <= set(rows[0])
    assert any((d / "logs").rglob("*tfevents*")) and not (d / ".lock").exists()
    files = [d / n for n in ("final.keras", "best.keras", "last.keras", "checkpoints/epoch-0002.keras")]
    loaded = fresh_process.load(files)
    assert {len(v["metadata"]["class_names"]) for v in loaded.values()} == {10}
    digest = digests[0].split()[-1]
    assert loaded[str(d / "final.keras")]["digest"] == loaded[str(d / "last.keras")]["digest"] == digest


def test_the_public_recipe_parts_are_the_recipe_by_hand():
    """`keras_shiftinv.training` gives the recipe's optimizer, schedule and loss (numbers by hand)."""
    import numpy as np

    from keras_shiftinv import training

    config = training.TrainConfig(dataset="fashion_mnist", learning_rate=0.5, batch_size=64).validate()
    peak = 0.5 * 64 / 128
    schedule = training.schedule(config, total_steps=100)  # warm-up over 25 steps, then a half cosine
    expected = {0: peak / 25, 25: peak, 100: peak / 1e4,
                50: peak / 1e4 + (peak - peak / 1e4) * 0.5 * (1 + np.cos(np.pi * 25 / 75))}
    for step, rate in expected.items():
        assert float(schedule(step)) == pytest.approx(rate, rel=1e-5), step
    sgd = training.optimizer(config, total_steps=100)
    assert isinstance(sgd, keras.optimizers.SGD)
    assert (sgd.momentum, sgd.weight_decay) == (0.9, 5e-5)
    assert float(sgd.learning_rate) == pytest.approx(peak / 25)  # the schedule at step 0
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]], "float32")
    labels = np.array([0, 1])
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_example = -log_softmax[np.arange(2), labels]
    assert float(training.loss()(labels, logits)) == pytest.approx(per_example.mean(), rel=1e-6)
    np.testing.assert_allclose(training.loss(reduction=None)(labels, logits), per_example, rtol=1e-6)


def test_experiments_and_the_multi_worker_loop_use_only_the_public_face_of_training():
    """One seam: the experiments import `keras_shiftinv.training` and its `__all__`, nothing deeper."""
    import ast

    import keras_shiftinv
    from keras_shiftinv import training

    root = os.path.dirname(keras_shiftinv.__file__)
    for name in ("finetune", "segment", "table1"):
        tree = ast.parse(open(os.path.join(root, "experiments", f"{name}.py"), encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module.startswith("keras_shiftinv.training"):
                assert node.module == "keras_shiftinv.training", (name, node.module)
                assert {a.name for a in node.names} <= set(training.__all__), (name, node.module)
            if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "training":
                assert node.attr in training.__all__, (name, node.attr)
    tree = ast.parse(open(os.path.join(root, "training", "multi_worker.py"), encoding="utf-8").read())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "keras_shiftinv.training.fit" not in modules  # its loss and rate come from the recipe


def test_the_old_flag_model_is_a_hidden_alias_of_method(capsys):
    from keras_shiftinv.cli import build_parser

    parser = build_parser()
    for argv in (["train", "--method", "aps"], ["train", "--model", "aps"]):
        assert parser.parse_args(argv).method == "aps"
    assert parser.parse_args(["train"]).method == "group"  # the default, not clobbered by the alias
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    shown = capsys.readouterr().out
    assert "--method" in shown and "--model " not in shown and "--model-dir" in shown


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "resnet"], "invalid choice: 'resnet'"),
        (["--model", "resnet"], "invalid choice: 'resnet'"),
        (["--dataset", "cifar"], "invalid choice: 'cifar'"),
        (["--epochs", "0"], "expected a positive integer, got 0"),
        (["--batch-size", "-4"], "expected a positive integer, got -4"),
        (["--learning-rate", "nan"], "`learning_rate` must be a positive finite number. Received: learning_rate=nan"),
        (["--learning-rate=-inf"], "Received: learning_rate=-inf"),
        (["--width", "inf"], "`width` must be a positive finite number. Received: width=inf"),
        (["--width", "nan"], "Received: width=nan"),
        (["--momentum", "1"], "`momentum` must be a number in [0, 1). Received: momentum=1.0"),
        (["--weight-decay=-1e-4"], "`weight_decay` must be a finite number >= 0. Received: weight_decay=-0.0001"),
        (["--seed", "-1"], "`seed` must be an integer >= 0. Received: seed=-1"),
        ([*QUICK, "--batch-size", "512"], "--batch-size 512 is larger than the 256 training examples"),
        (["--dataset", "folder"], "dataset 'folder' needs"),
        (["--dataset", "folder", "--data-dir", "/no/such/dir"], "/no/such/dir"),
        (["--dataset", "imagenet2012", "--data-dir", "/tmp", "--manual-dir", "/tmp/none"],
         "ILSVRC2012_img_train.tar"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        code = main(["train", "--model-dir", str(tmp_path / "run"), *args])
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing written


def test_train_and_val_folders_with_other_classes_stop_before_training(tmp_path, capsys):
    from PIL import Image

    for split, classes in (("train", ("cat", "dog")), ("val", ("cat", "fox"))):
        for name in classes:
            (tmp_path / "data" / split / name).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (40, 40), (60 * i, 90, 30)).save(tmp_path / "data" / split / name / f"{i}.png")
    code = main(["train", "--dataset", "folder", "--data-dir", str(tmp_path / "data"), "--image-size", "32",
                 "--batch-size", "2", "--model-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "differ" in err and "classes" in err and "['dog']" in err and "['fox']" in err
    assert not (tmp_path / "run").exists()


def test_a_model_dir_in_use_is_a_one_line_error(tmp_path, capsys):
    holder = subprocess.Popen(["sleep", "60"])  # a live process on this host owns the lock
    try:
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid}))
        code = main(["train", "--model-dir", str(tmp_path / "run"), *QUICK])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"is in use by another training (pid {holder.pid} on {socket.gethostname()}" in err
    assert os.listdir(tmp_path / "run") == [".lock"]


def test_export_cli_and_errors(tmp_path):
    import keras_shiftinv as ks

    model = ks.resnet18("group", num_classes=3, input_shape=(32, 32, 3), width=0.125)
    model.save(tmp_path / "m.keras")
    assert main(["export", str(tmp_path / "m.keras"), str(tmp_path / "serving"), "--version", "2"]) == 0
    assert (tmp_path / "serving" / "2" / "saved_model.pb").exists()
    assert main(["export", str(tmp_path / "m.keras"), str(tmp_path / "serving"), "--version", "2"]) == 2
    assert main(["export", str(tmp_path / "missing.keras"), str(tmp_path / "s")]) == 2
    (tmp_path / "junk.keras").write_text("not a model")
    assert main(["export", str(tmp_path / "junk.keras"), str(tmp_path / "s")]) == 2
