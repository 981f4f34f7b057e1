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

QUICK = ["--dataset", "fashion_mnist", "--width", "0.125", "--max-train-examples", "256",
         "--max-eval-examples", "128", "--batch-size", "32", "--verbose", "2"]


def shiftinv(args, env=None, **kwargs):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "keras_shiftinv", *args], capture_output=True, text=True,
                          env=env, **kwargs)


@pytest.mark.parametrize("model", ["stride", "group"])
def test_one_epoch_through_the_cli_writes_every_artefact(model, tmp_path):
    d = tmp_path / model
    assert main(["train", "--model", model, "--epochs", "1", "--model-dir", str(d), *QUICK]) == 0
    for name in ["config.json", "best.keras", "last.keras", "final.keras", "training_log.csv"]:
        assert (d / name).exists(), name
    assert any((d / "logs").rglob("*tfevents*"))
    config = json.loads((d / "config.json").read_text())
    assert config["model"] == model and config["peak_learning_rate"] == pytest.approx(0.5 * 32 / 128)
    assert config["steps_per_epoch"] == 8
    rows = list(csv.DictReader(open(d / "training_log.csv")))
    assert len(rows) == 1 and "val_accuracy" in rows[0]
    loaded = keras.saving.load_model(d / "final.keras")
    loaded.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    from keras_shiftinv.data import fashion_mnist

    _, acc = loaded.evaluate(fashion_mnist("test", batch_size=64, max_examples=128), verbose=0)
    assert acc == pytest.approx(float(rows[0]["val_accuracy"]), abs=1e-6)


def test_killed_training_resumes_where_it_stopped(tmp_path):
    d = tmp_path / "run"
    args = ["train", "--model", "stride", "--epochs", "4", "--model-dir", str(d), *QUICK,
            "--max-train-examples", "1024"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "keras_shiftinv", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = d / "training_log.csv"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().strip().splitlines()) >= 3:  # header + 2 epochs
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(log.read_text().strip().splitlines()) - 1
    assert 2 <= done < 4
    second = shiftinv(args, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"Epoch {done + 1}/4" in second.stdout and "Epoch 1/4" not in second.stdout
    epochs = [int(r["epoch"]) for r in csv.DictReader(open(log))]
    assert epochs == list(range(4))
    assert keras.saving.load_model(d / "final.keras").output_shape == (None, 10)


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    d = tmp_path / "mirrored"
    result = shiftinv(["train", "--model", "group", "--epochs", "1", "--model-dir", str(d),
                       "--cpu-replicas", "2", *QUICK], timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((d / "config.json").read_text())
    assert config["replicas"] == 2 and config["batch_size"] == 32
    assert (d / "final.keras").exists()
    bad = shiftinv(["train", "--model", "group", "--model-dir", str(d), "--cpu-replicas", "2", *QUICK,
                    "--batch-size", "33"], timeout=120)
    assert bad.returncode == 2 and "not divisible by the 2 replicas" in bad.stderr
    assert "Traceback" not in bad.stderr


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_worker_processes_train_together(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        args = ["train", "--model", "group", "--epochs", "2", "--model-dir", str(tmp_path / "mw"), *QUICK]
        procs.append(subprocess.Popen([sys.executable, "-m", "keras_shiftinv", *args], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=400) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    digests = [next(line for line in out.splitlines() if "final weights sha256" in line) for out, _ in outs]
    assert digests[0] == digests[1]
    assert "Epoch 2/2" in outs[0][0] and "Epoch 2/2" in outs[1][0]
    assert (tmp_path / "mw" / "final.keras").exists()
    config = json.loads((tmp_path / "mw" / "config.json").read_text())
    assert config["replicas"] == 2 and config["strategy"] == "MultiWorkerMirroredStrategy"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "resnet"], "invalid choice: 'resnet'"),
        (["--dataset", "cifar"], "invalid choice: 'cifar'"),
        (["--epochs", "0"], "expected a positive integer, got 0"),
        (["--batch-size", "-4"], "expected a positive integer, got -4"),
        (["--dataset", "folder"], "--dataset folder needs --data-dir"),
        (["--dataset", "folder", "--data-dir", "/no/such/dir"], "--data-dir /no/such/dir does not exist"),
        (["--dataset", "imagenet2012", "--data-dir", "/tmp", "--manual-dir", "/tmp/none"],
         "ILSVRC2012_img_train.tar"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        code = main(["train", "--model-dir", str(tmp_path), *args])
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


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
