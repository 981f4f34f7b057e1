"""`shiftinv evaluate`: the protocol at any crop size, and one-line errors before any metric."""

import json
import os

import numpy as np
import pytest
from PIL import Image

import keras_shiftinv
from helpers import error_lines
from helpers import shiftinv
from keras_shiftinv import metrics
from keras_shiftinv.cli import main
from keras_shiftinv.data import FASHION_MNIST_CLASSES
from keras_shiftinv.data.transforms import resize_size_for
from keras_shiftinv.evaluation import protocol_for
from keras_shiftinv.saving import save_model

CLASSES = ["cat", "dog", "owl"]


def make_folder(root, splits=("train", "val"), classes=CLASSES, per_class=2, size=(50, 44)):
    rng = np.random.default_rng(0)
    for split in splits:
        for name in classes:
            os.makedirs(root / split / name)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.jpg")
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Small saved models: 3 classes with names, 10 classes, 3 classes named otherwise."""
    d = tmp_path_factory.mktemp("models")
    paths = {}
    for key, downsample, names in (("aps3", "aps", CLASSES), ("m10", "stride", [str(i) for i in range(10)]),
                                   ("abc", "stride", ["a", "b", "c"])):
        model = keras_shiftinv.resnet18(downsample, num_classes=len(names), input_shape=(32, 32, 3),
                                        width=0.125, padding="circular")
        metadata = {"class_names": names, "image_size": 32, "dataset": "folder"}
        paths[key] = save_model(model, str(d / f"{key}.keras"), metadata)
    return paths


@pytest.mark.parametrize("dataset,crop", [("imagenet2012", 224), ("folder", 160), ("folder", 32), ("folder", 8),
                                          ("fashion_mnist", 32), ("fashion_mnist", 28), ("fashion_mnist_photo", 32)])
def test_protocol_scales_with_the_crop_and_fits_the_margin(dataset, crop):
    fashion = dataset.startswith("fashion_mnist")
    side = 40 if fashion else resize_size_for(crop)
    protocol = protocol_for(dataset, crop, side)
    base = metrics.FASHION_MNIST_PROTOCOL if fashion else metrics.IMAGENET_PROTOCOL
    assert protocol["max_shift"] == max(1, round(base["max_shift"] * crop / base["crop_size"]))
    # The stability crops (right, down, right, ...) stay inside the uncropped image...
    offsets = metrics.shift_offsets(protocol["positions"])
    assert max(max(o) for o in offsets) <= side - crop
    # ...and use the margin: one more position would not fit, or the scaled count is reached.
    scaled = round(base["positions"] * crop / base["crop_size"])
    assert protocol["positions"] == scaled or max(metrics.shift_offsets(protocol["positions"] + 1)[-1]) > side - crop
    if crop == base["crop_size"]:
        assert protocol == {**base}


def test_folder_model_below_crop_224_is_evaluated(models, tmp_path, capsys):
    data_dir = make_folder(tmp_path / "pets")
    out = tmp_path / "report"
    # No --dataset: the model's metadata says it was trained on a folder.
    argv = ["evaluate", models["aps3"], "--data-dir", str(data_dir), "--out", str(out), "--stability-images", "4"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"] == "folder"
    assert report["protocol"] == {"crop_size": 32, "max_shift": 5, "positions": 9, "passes": 5}
    assert report["class_names"] == CLASSES and report["num_examples"] == 6
    scores = report["models"]["aps3"]
    # aps with circular padding is exactly invariant to circular shifts of a 32x32 input.
    assert scores["circular_consistency"] == 100.0
    assert 0 <= scores["top1"] <= scores["top5"] == 100.0  # 3 classes: top-5 always hits
    row = (out / "report.md").read_text().splitlines()[2]
    assert row.startswith("| aps3 | ") and f"{scores['top1']:.2f}" in row
    assert sorted(os.listdir(out)) == ["consistency_vs_accuracy.png", "report.json", "report.md",
                                       "stability_curves.png"]  # no temporary files left


def _one_line_error(capsys, *parts):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in err, err
    return err


def test_folder_without_val_is_one_line(models, tmp_path, capsys):
    data_dir = make_folder(tmp_path / "pets", splits=("train",))
    out = tmp_path / "report"
    argv = ["evaluate", models["aps3"], "--dataset", "folder", "--data-dir", str(data_dir), "--out", str(out)]
    assert main(argv) == 2
    _one_line_error(capsys, "has no validation folder", str(data_dir / "val"))
    assert not out.exists()


def test_out_pointing_at_a_file_fails_before_anything_else(tmp_path, capsys):
    out = tmp_path / "report.txt"
    out.write_text("keep me")
    # The model does not even exist: the --out check comes first, before any model or metric.
    assert main(["evaluate", str(tmp_path / "missing.keras"), "--out", str(out)]) == 2
    _one_line_error(capsys, "--out must be a folder")
    assert main(["evaluate", str(tmp_path / "missing.keras"), "--out", str(out / "sub")]) == 2
    _one_line_error(capsys, "cannot be created", str(out))
    assert out.read_text() == "keep me"


def test_class_count_and_name_mismatches_are_one_line(models, tmp_path, capsys):
    data_dir = make_folder(tmp_path / "pets")
    out = tmp_path / "report"
    common = ["--dataset", "folder", "--data-dir", str(data_dir), "--out", str(out)]
    assert main(["evaluate", models["m10"], *common]) == 2
    _one_line_error(capsys, "predicts 10 classes but folder has 3")
    assert main(["evaluate", models["abc"], *common]) == 2
    _one_line_error(capsys, "class 0 is 'a' for the model and 'cat' for the data")
    assert not out.exists()


def test_three_class_model_on_fashion_mnist_in_a_fresh_process(models, tmp_path):
    out = tmp_path / "report"
    proc = shiftinv("evaluate", models["aps3"], "--dataset", "fashion_mnist", "--out", out)
    assert proc.returncode == 2, proc.stderr
    assert error_lines(proc) == [f"shiftinv evaluate: error: aps3 predicts 3 classes but fashion_mnist has "
                     f"{FASHION_MNIST_CLASSES}; evaluate a model on the data it was trained for"]
    assert "Traceback" not in proc.stderr and not out.exists()
