"""The pair records of the experiments (`experiments.records`) and the one atomic JSON writer."""

import ast
import json
import os

import numpy as np
import pytest

import keras_shiftinv
from keras_shiftinv.errors import UsageError
from keras_shiftinv.experiments import records
from keras_shiftinv.saving import write_json

SETTINGS = {"epochs": 2, "seeds": (0, 1), "method": "aps"}


def test_a_pair_is_redone_resumed_or_refused_by_its_settings(tmp_path):
    path = str(tmp_path / "models" / "aps" / "seed0.json")
    assert records.read_pair(path, SETTINGS) is None  # never run
    record = records.write_pair(path, SETTINGS, scores={"miou": 50.0}, params=12)
    assert sorted(os.listdir(tmp_path / "models" / "aps")) == ["seed0.json"]  # no temporary left
    on_disk = json.loads(open(path).read())
    assert on_disk == {"settings": {"epochs": 2, "seeds": [0, 1], "method": "aps"}, "scores": {"miou": 50.0},
                       "params": 12}
    assert record["scores"] == {"miou": 50.0}
    assert records.read_pair(path, SETTINGS) == on_disk  # finished: resumed (tuples compare as stored)
    other = {**SETTINGS, "epochs": 3, "method": "blur"}
    with pytest.raises(UsageError) as info:
        records.read_pair(path, other)
    assert str(info.value) == (f"{path} holds results made with other settings; pass `overwrite=True` to replace "
                               "them, or choose another `out_dir` (epochs: 2 -> 3; method: 'aps' -> 'blur')")
    assert records.read_pair(path, other, overwrite=True) is None  # redone
    old = {"evaluation": SETTINGS, "scores": {}}  # an older version's record, upgraded on reading
    (tmp_path / "old.json").write_text(json.dumps(old))
    upgraded = records.read_pair(str(tmp_path / "old.json"), SETTINGS,
                                 upgrade=lambda r: {"settings": r.pop("evaluation"), **r})
    assert upgraded["scores"] == {}
    (tmp_path / "torn.json").write_text('{"settings": {"epo')  # not ours (ours are atomic): redone
    assert records.read_pair(str(tmp_path / "torn.json"), SETTINGS) is None


def test_summaries_by_hand():
    cell = records.summarize([70, 80, 96])
    assert cell["mean"] == pytest.approx(82.0) and cell["values"] == [70.0, 80.0, 96.0]
    assert cell["std"] == pytest.approx(np.sqrt(((70 - 82) ** 2 + (80 - 82) ** 2 + (96 - 82) ** 2) / 3))


def test_the_summary_table_by_hand(tmp_path):
    rows = {"stride": {"top1": records.summarize([80, 82]), "params": {"mean": 12}},
            "aps": {"top1": records.summarize([81]), "params": {"mean": 12}}}
    columns = [("top1", "Top-1 %", "{:.2f}"), ("params", "Params", lambda v: f"{v['mean']} w")]
    table = records.write_summary(str(tmp_path / "results.md"), "Fashion-MNIST, 2 seeds", rows, columns)
    assert table == ("| Method | Top-1 % | Params |\n|---|---:|---:|\n"
                     "| stride | 81.00 ± 1.00 | 12 w |\n| aps | 81.00 | 12 w |\n")
    assert (tmp_path / "results.md").read_text() == "Fashion-MNIST, 2 seeds\n\n" + table


def test_every_json_file_of_the_package_goes_through_the_one_atomic_writer(tmp_path):
    """`saving.write_json` (fsync + rename) is the only JSON writer; the lock's exclusive create aside."""
    path = write_json(str(tmp_path / "r.json"), {"method": "aps"})
    assert json.loads(open(path).read()) == {"method": "aps"} and os.listdir(tmp_path) == ["r.json"]
    root = os.path.dirname(keras_shiftinv.__file__)
    writers = []
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), root)
                tree = ast.parse(open(os.path.join(folder, name), encoding="utf-8").read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                        if getattr(node.func.value, "id", None) == "json" and node.func.attr == "dump":
                            writers.append(rel)
                    if isinstance(node, ast.FunctionDef) and node.name == "write_json":
                        writers.append(f"{rel}:write_json")
    assert sorted(writers) == ["saving.py:write_json", os.path.join("training", "lock.py")], writers


def test_a_finetune_record_from_before_the_dataset_setting_resumes_on_the_default_dataset_only(tmp_path):
    from keras_shiftinv.experiments import finetune

    path = str(tmp_path / "aps" / "record.json")
    today = finetune.pair_settings(finetune.FinetuneConfig(), "aps")
    assert today["dataset"] == "fashion_mnist"  # the registry's default dataset
    before = {k: v for k, v in today.items() if k != "dataset"}  # written before `dataset` existed
    records.write_pair(path, before, row={"top1": 90.0})
    record = records.read_pair(path, today, upgrade=finetune.with_dataset)
    assert record["row"] == {"top1": 90.0}
    photo = finetune.pair_settings(finetune.FinetuneConfig(dataset="fashion_mnist_photo"), "aps")
    with pytest.raises(UsageError, match="dataset: 'fashion_mnist' -> 'fashion_mnist_photo'"):
        records.read_pair(path, photo, upgrade=finetune.with_dataset)
