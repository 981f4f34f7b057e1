import dataclasses
import json
import os
import re

import pytest

from keras_shiftinv.cli import main
from keras_shiftinv.errors import UsageError
from keras_shiftinv.methods import METHODS
from keras_shiftinv.methods import get as get_method
from keras_shiftinv.experiments.table1 import METRICS
from keras_shiftinv.experiments.table1 import Table1Config
from keras_shiftinv.experiments.table1 import run_table1
from keras_shiftinv.experiments.records import load_results


TINY = {"train_examples": 128, "eval_examples": 32, "stability_images": 8, "epochs": 1, "width": 0.125,
        "batch_size": 64}
# aps: exact invariance is asserted; group: trained again alone below, after aps here. stride's pairs
# run through run_table1 in tests/test_reproducibility.py; every variant with -m slow.
TWO = ("aps", "group")


@pytest.fixture(scope="module")
def two_methods(tmp_path_factory):
    """A tiny Table 1 run of two methods: (out_dir, results)."""
    out = tmp_path_factory.mktemp("table1")
    return out, run_table1(str(out), Table1Config.from_preset("quick", **TINY, methods=TWO), verbose=0)


@pytest.mark.parametrize(
    "methods",
    [TWO, pytest.param(METHODS, marks=pytest.mark.slow, id="all")],
)
def test_table1_end_to_end_tiny(tmp_path, methods, request):
    if methods == TWO:  # shared with the same-seed test below
        tmp_path, results = request.getfixturevalue("two_methods")
    else:
        results = run_table1(str(tmp_path), Table1Config.from_preset("quick", **TINY, methods=methods), verbose=0)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["preset"] == "quick" and on_disk["config"]["train_examples"] == TINY["train_examples"]
    assert "variants" not in on_disk and "variants" not in on_disk["config"]  # the one word: method
    assert list(on_disk["methods"]) == list(on_disk["config"]["methods"]) == list(methods)
    for name, row in on_disk["methods"].items():
        for metric in METRICS + ("train_images_per_second",):
            assert set(row[metric]) == {"mean", "std", "values"} and len(row[metric]["values"]) == 1
        assert row["params"] > 0
        assert 0.0 <= row["top1"]["mean"] <= row["top5"]["mean"] <= 100.0
    # Exact invariance where promised: circular padding + aligned downsampling (the low-pass ones too).
    for name in (m for m in methods if get_method(m).chooses_phase):
        assert on_disk["methods"][name]["circular_consistency"]["mean"] == 100.0
        assert on_disk["methods"][name]["mac"]["mean"] < 1e-6
    assert results["methods"]["group"]["params"] == on_disk["methods"]["group"]["params"]
    table = (tmp_path / "results.md").read_text()
    assert all(f"| {name} |" in table for name in methods)
    # The sub-pixel columns (docs/subpixel.md): percentages, and a MAC that is a probability change.
    assert "Half-px consistency % | Half-px MAC | Frac. worst-case %" in table
    for row in on_disk["methods"].values():
        assert 0.0 <= row["subpixel_consistency"]["mean"] <= 100.0 and 0.0 <= row["subpixel_mac"]["mean"] <= 1.0
        assert row["fractional_worst_case_accuracy"]["mean"] in {100.0 * k / TINY["stability_images"]
                                                                 for k in range(TINY["stability_images"] + 1)}
    for png in ("stability_curves.png", "consistency_vs_accuracy.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_cli_report_and_bad_input(tmp_path, capsys):
    import keras_shiftinv as ks

    for name in ("stride", "group-aps"):
        ks.resnet18(name, num_classes=10, input_shape=(32, 32, 3), width=0.125, padding="circular").save(
            tmp_path / f"{name}.keras"
        )
    models = [str(tmp_path / "stride.keras"), str(tmp_path / "group-aps.keras")]
    out = tmp_path / "report"
    assert main(["evaluate", *models, "--max-examples", "64", "--stability-images", "8", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["protocol"] == {"crop_size": 32, "max_shift": 4, "positions": 16, "passes": 5}
    assert report["models"]["group-aps"]["circular_consistency"] == 100.0
    assert {"subpixel_consistency", "subpixel_mac", "fractional_worst_case_accuracy"} <= set(report["models"]["stride"])
    assert (out / "stability_curves.png").exists() and "| stride |" in (out / "report.md").read_text()
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "nope.keras")]) == 2
    assert "model file not found" in capsys.readouterr().err
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 garbage")
    assert main(["evaluate", str(tmp_path / "bad.keras")]) == 2
    assert "is not a loadable .keras model" in capsys.readouterr().err
    big = ks.resnet18("stride", num_classes=10, input_shape=(48, 48, 3), width=0.125)
    big.save(tmp_path / "big.keras")
    assert main(["evaluate", str(tmp_path / "big.keras"), "--max-examples", "8"]) == 2
    err = capsys.readouterr().err  # the 48-pixel model cannot be cropped from 40-pixel images
    assert "40" in err and "48" in err and len(err.strip().splitlines()) == 1
    assert main(["evaluate", models[0], "--max-shift", "40", "--max-examples", "8"]) == 2
    assert "--max-shift must be between 0 and the crop size 32" in capsys.readouterr().err


def test_table1_same_seed_same_numbers_and_reruns_skip_finished_pairs(tmp_path, capsys, two_methods,
                                                                      fresh_process):
    config = Table1Config.from_preset("quick", **TINY, methods=("group",))
    first = run_table1(str(tmp_path / "a"), config, verbose=0)["methods"]["group"]
    # The same pair in another run (after another pair): the same numbers.
    second = two_methods[1]["methods"]["group"]
    for metric in METRICS:
        assert first[metric]["values"] == second[metric]["values"], metric
    pair = tmp_path / "a" / "models" / "group" / "seed0"
    # Files of an older version name the method `model` (scores.json's train settings, config.json),
    # and scores.json's settings `evaluation`.
    for name, where in (("scores.json", lambda d: d["settings"]["train"]), ("config.json", lambda d: d)):
        stored = json.loads((pair / name).read_text())
        assert where(stored)["method"] == "group" and "model" not in where(stored)
        where(stored)["model"] = where(stored).pop("method")
        if name == "scores.json":
            stored = {"evaluation": stored.pop("settings"), **stored}
        (pair / name).write_text(json.dumps(stored))
    stamps = {p: p.stat().st_mtime_ns for p in pair.rglob("*") if p.is_file()}
    # A rerun (as after a kill once the pair was scored) reuses the stored scores, trains nothing;
    # the config's old keyword `variants` still works.
    with pytest.warns(DeprecationWarning, match="variants"):
        old_config = Table1Config.from_preset("quick", **TINY, variants=("group",))
    assert old_config == config
    again = run_table1(str(tmp_path / "a"), old_config, verbose=1)["methods"]["group"]
    assert "table1 [1/1] group seed 0: done before" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in pair.rglob("*") if p.is_file()} == stamps
    # Killed after training, before scoring: the finished model is scored, not retrained.
    (pair / "scores.json").unlink()
    rescored = run_table1(str(tmp_path / "a"), config, verbose=1)["methods"]["group"]
    assert "already finished" in capsys.readouterr().out
    for metric in METRICS + ("params",):
        assert first[metric] == again[metric] == rescored[metric], metric
    # Other settings (here the scoring's): refused in one line naming `overwrite=True`; with it, rescored.
    other = dataclasses.replace(config, stability_images=4)
    with pytest.raises(UsageError, match=r"scores.json holds results made with other settings; pass "
                                         r"`overwrite=True` .*\(stability_images: 8 -> 4\)$"):
        run_table1(str(tmp_path / "a"), other, verbose=0)
    redone = run_table1(str(tmp_path / "a"), other, verbose=0, overwrite=True)["methods"]["group"]
    assert redone["top1"] == first["top1"] and redone["params"] == first["params"]  # the same model
    assert json.loads((pair / "scores.json").read_text())["settings"]["stability_images"] == 4
    # A table1 model loads in a fresh process after only `import keras_shiftinv`.
    loaded = fresh_process.load([pair / "final.keras"])
    assert loaded[str(pair / "final.keras")]["params"] == first["params"]


def test_results_of_an_older_version_load_with_todays_keys(tmp_path):
    old = {"preset": "quick", "config": {"variants": ["stride", "aps"], "seeds": [0]},
           "variants": {"stride": {"top1": {"mean": 80.0}}, "aps": {"top1": {"mean": 81.0}}}}
    (tmp_path / "results.json").write_text(json.dumps(old))
    loaded = load_results(tmp_path / "results.json")
    assert loaded == {"preset": "quick", "config": {"methods": ["stride", "aps"], "seeds": [0]},
                      "methods": {"stride": {"top1": {"mean": 80.0}}, "aps": {"top1": {"mean": 81.0}}}}


def test_presets_take_the_learning_rate_of_their_dataset():
    assert Table1Config.from_preset("quick").learning_rate == 0.5
    assert Table1Config.from_preset("full", dataset="fashion_mnist_photo").learning_rate == 0.1
    assert Table1Config.from_preset("quick", dataset="fashion_mnist_photo", learning_rate=0.3).learning_rate == 0.3
    with pytest.raises(ValueError, match="Received: dataset='mnist'"):
        Table1Config.from_preset("quick", dataset="mnist")


def test_pairs_run_seed_major_and_seeds_are_summarised_per_method(tmp_path, monkeypatch):
    """A run stopped part-way has whole seeds; each method's row holds its seeds in order."""
    from keras_shiftinv.experiments import table1

    order = []

    def fake_pair(out_dir, config, name, seed, eval_ds, protocol, verbose, where=None, overwrite=False):
        order.append((name, seed))
        value = 10.0 * seed + METHODS.index(name)
        return {**{m: value for m in METRICS + ("train_images_per_second", "train_seconds")},
                "params": 100 + seed, "curves": [[value, value]]}

    monkeypatch.setattr(table1, "run_pair", fake_pair)
    config = Table1Config.from_preset("full", eval_examples=8, methods=("stride", "group"), seeds=(0, 1, 2))
    results = run_table1(str(tmp_path), config, verbose=0)
    assert order == [("stride", 0), ("group", 0), ("stride", 1), ("group", 1), ("stride", 2), ("group", 2)]
    group = results["methods"]["group"]
    assert group["top1"]["values"] == [2.0, 12.0, 22.0]
    assert group["top1"]["mean"] == pytest.approx(12.0)
    assert group["top1"]["std"] == pytest.approx((200.0 / 3) ** 0.5)  # population std of 2, 12, 22
    assert group["params"] == 100  # seed 0's model


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_quick_tables():
    """`{results.json path: [table lines]}` of the README's marked quick tables."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    found = re.findall(r"<!-- quick-table: (\S+) -->\n(.*?)<!-- end quick-table -->", text, flags=re.S)
    return {os.path.join(ROOT, path): table.strip().splitlines() for path, table in found}


def test_every_number_of_the_readme_quick_table_equals_its_results_json():
    from keras_shiftinv.report import COLUMNS

    tables = readme_quick_tables()
    assert tables, "no <!-- quick-table: ... --> in README.md"
    metric_of = {title: (key, fmt) for key, title, fmt in COLUMNS}
    for path, lines in tables.items():
        rows_of = load_results(path)["methods"]  # the committed files may hold the old key `variants`
        header = [c.strip() for c in lines[0].strip("|").split("|")]
        assert header[0] == "Model" and len(header) >= 4 and all(h in metric_of for h in header[1:]), header
        rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
        assert [r[0] for r in rows] == list(rows_of), path  # every method, in order
        for row in rows:
            for title, text in zip(header[1:], row[1:]):
                key, fmt = metric_of[title]
                assert text == fmt.format(rows_of[row[0]][key]["mean"]), (path, row[0], title)


@pytest.mark.slow
@pytest.mark.parametrize("dataset, folder", [("fashion_mnist", "table1-quick"),
                                             ("fashion_mnist_photo", "table1-photo-quick")])
def test_the_committed_quick_tables_are_what_the_command_gives(tmp_path, dataset, folder):
    """Reruns two methods of each committed quick table; equal to the digit on a like machine.

    Exact equality is promised only for the same versions, CPU model and thread count
    (docs/design.md, "Reproducibility"); elsewhere the test says why it does not apply.
    """
    from keras_shiftinv import provenance

    committed = load_results(os.path.join(ROOT, "docs", folder, "results.json"))
    made = committed["provenance"]
    here = {"versions": provenance.versions(), "machine": provenance.machine()}
    for part, keys in (("versions", ("keras_shiftinv", "tensorflow", "keras", "numpy")),
                       ("machine", ("cpu", "usable_cpus", "intra_op_threads", "onednn_opts"))):
        for key in keys:
            if made[part][key] != here[part][key]:
                pytest.skip(f"made with {part} {key}={made[part][key]!r}, here {here[part][key]!r}: "
                            "not bit-reproducible across that (docs/design.md)")
    out = tmp_path / folder
    assert main(["table1", "--preset", "quick", "--dataset", dataset, "--methods", "stride", "group-aps",
                 "--out", str(out)]) == 0
    rerun = json.loads((out / "results.json").read_text())["methods"]
    for name in ("stride", "group-aps"):
        for metric in METRICS:
            assert rerun[name][metric]["values"] == committed["methods"][name][metric]["values"], (name, metric)
