import gzip
import json
import os

import keras
import numpy as np
import pytest

from helpers import error_lines
from helpers import shiftinv
from keras_shiftinv import metrics
from keras_shiftinv.cli import main
from keras_shiftinv.data import SCENE_CLASS_NAMES
from keras_shiftinv.data import fashion_mnist_scenes
from keras_shiftinv.errors import DataError
from keras_shiftinv.layers import SpatialPadding2D
from keras_shiftinv.methods import METHODS
from keras_shiftinv.methods import get as get_method
from keras_shiftinv.metrics.segmentation import confusion_matrix
from keras_shiftinv.metrics.segmentation import crop_shift
from keras_shiftinv.metrics.segmentation import random_shifts
from keras_shiftinv.metrics.segmentation import scores_from_confusion


class FixedMap(keras.layers.Layer):
    """Ignores its input: class 1 on the left half of the width, class 0 on the right."""

    def call(self, inputs):
        w = inputs.shape[2]
        left = keras.ops.cast(keras.ops.arange(w) < w // 2, "float32")  # (W,)
        logits = keras.ops.stack([1.0 - left, left], axis=-1)  # (W, 2), one-hot
        return keras.ops.zeros_like(inputs[..., :1]) + logits  # (B, H, W, 2)


def _dataset(images, masks, batch=3):
    return [(images[i : i + batch], masks[i : i + batch]) for i in range(0, len(images), batch)]


# --- metrics on hand-built cases --------------------------------------------


def test_confusion_and_scores_by_hand():
    masks = np.array([[0, 0, 1, 1], [2, 2, 2, 0]])
    preds = np.array([[0, 1, 1, 1], [2, 2, 0, 0]])
    cm = confusion_matrix(masks, preds, 4)
    np.testing.assert_array_equal(cm, [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
    scores = scores_from_confusion(cm)
    # IoU: class 0: 2 / (3 + 3 - 2); class 1: 2 / (3 + 2 - 2); class 2: 2 / (2 + 3 - 2); class 3 absent.
    assert scores["pixel_accuracy"] == pytest.approx(100 * 6 / 8)
    assert scores["miou"] == pytest.approx(100 * (2 / 4 + 2 / 3 + 2 / 3) / 3)
    assert np.isnan(scores["iou"][3])


def test_perfect_predictor_scores_100_miou():
    masks = np.random.default_rng(0).integers(0, 4, size=(5, 8, 8))
    images = np.eye(4, dtype="float32")[masks]  # one-hot channels: the logits of a perfect model
    model = keras.Sequential([keras.Input((8, 8, 4)), keras.layers.Identity()])
    scores = metrics.segmentation_scores(model, _dataset(images, masks), 4)
    assert scores["miou"] == 100.0 and scores["pixel_accuracy"] == 100.0


def test_exactly_equivariant_model_scores_100_circular_massc_and_error_0():
    inputs = keras.Input((12, 10, 3))
    x = SpatialPadding2D(1, mode="circular")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(5, 3)(x))  # circular conv: exactly equivariant
    images = np.random.default_rng(1).normal(size=(4, 12, 10, 3)).astype("float32")
    result = metrics.shift_metrics(model, _dataset(images, np.zeros((4, 12, 10), "int64")),
                                   [(1, 0), (3, -2), (-5, 7)])
    assert result["circular_massc"] == 100.0
    assert result["equivariance_error"] < 1e-12


def test_input_ignoring_model_scores_the_hand_calculation():
    model = keras.Sequential([keras.Input((8, 8, 1)), FixedMap()])
    images = np.random.default_rng(2).normal(size=(3, 8, 8, 1)).astype("float32")
    data = _dataset(images, np.zeros((3, 8, 8), "int64"))  # all background
    scores = metrics.segmentation_scores(model, data, 2)
    # Half the pixels right; IoU of background 32/64, of class 1 0/32.
    assert scores["pixel_accuracy"] == 50.0
    assert scores["miou"] == pytest.approx(25.0)
    result = metrics.shift_metrics(model, data, [(0, 2)])
    # Columns c and c-2 agree for c in {2, 3, 6, 7} of 8 circularly, {2, 3, 6, 7} of 2..7 on the crop.
    assert result["circular_massc"] == 50.0
    assert result["crop_massc"] == pytest.approx(100 * 4 / 6)
    # ||M - roll(M, 2)||^2 / ||M||^2: 4 of 8 columns differ, each by 2 per pixel, ||M||^2 = 64.
    assert result["equivariance_error"] == pytest.approx(1.0)


def test_crop_shift_and_random_shifts():
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    out = crop_shift(x, (1, -2))[0, ..., 0]
    np.testing.assert_array_equal(out, [[0, 0, 0, 0], [2, 3, 0, 0], [6, 7, 0, 0], [10, 11, 0, 0]])
    shifts = random_shifts(3, 50, seed=4)
    assert shifts == random_shifts(3, 50, seed=4)
    assert {v for s in shifts for v in s} == set(range(-3, 4))


# --- Fashion-MNIST scenes --------------------------------------------------------


def _write_idx(path, array):
    dims = array.shape
    header = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_fashion_mnist(tmp_path):
    """Three training items and two test items with distinct shapes and labels."""
    items = np.zeros((5, 28, 28), np.uint8)
    items[0, 2:20, 2:20] = 200  # square
    items[1, 10:27, 5:9] = 120  # bar
    items[2, 0:28, 14] = 255  # line
    items[3, 5:25, 5:25] = 90
    items[4, 0:5, 0:28] = 30  # below a 0.15 threshold: never covers
    labels = np.array([3, 7, 9, 0, 5])
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", items[:3])
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels[:3])
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", items[3:])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels[3:])
    return str(tmp_path), items, labels


def _compose(items, labels, order, threshold):
    """A 28x28 scene from items pasted at (0, 0) in `order`, the last on top."""
    image, mask = np.zeros((28, 28)), np.zeros((28, 28), int)
    for k in order:
        cover = items[k] / 255.0 > threshold
        image[cover] = items[k][cover] / 255.0
        mask[cover] = labels[k] + 1
    return image, mask


@pytest.mark.parametrize("split, pool", [("train", [0, 1, 2]), ("validation", [3, 4])])
def test_scenes_are_items_of_their_split_the_last_drawn_on_top(tiny_fashion_mnist, split, pool):
    data_dir, items, labels = tiny_fashion_mnist
    images, masks = fashion_mnist_scenes(split, 12, image_size=28, min_items=2, max_items=2,
                                         threshold=0.15, data_dir=data_dir)
    candidates = [_compose(items, labels, (a, b), 0.15) for a in pool for b in pool]
    for image, mask in zip(images, masks):  # every scene is one ordered pair of its split's items
        assert any(np.allclose(image[..., 0], ci) and np.array_equal(mask, cm) for ci, cm in candidates)
    if split == "train":  # overlapping items occlude (items 0 and 1 overlap), never blend
        layered = [_compose(items, labels, order, 0.15)[1] for order in ((0, 1), (1, 0))]
        assert any(np.array_equal(m, lm) for m in masks for lm in layered)


def test_scenes_are_deterministic_and_labels_follow_the_threshold(tiny_fashion_mnist):
    data_dir, _, labels = tiny_fashion_mnist
    a = fashion_mnist_scenes("train", 6, seed=3, data_dir=data_dir)
    b = fashion_mnist_scenes("train", 9, seed=3, data_dir=data_dir)
    c = fashion_mnist_scenes("train", 6, seed=4, data_dir=data_dir)
    np.testing.assert_array_equal(a[0], b[0][:6])  # scene i depends on (seed, split, i) only
    np.testing.assert_array_equal(a[1], b[1][:6])
    assert not np.array_equal(a[0], c[0])
    images, masks = a
    assert images.shape == (6, 64, 64, 1) and masks.shape == (6, 64, 64)
    np.testing.assert_array_equal(masks > 0, images[..., 0] > 0.1)
    assert set(np.unique(masks)) <= {0} | {int(v) + 1 for v in labels[:3]}
    assert len(SCENE_CLASS_NAMES) == 11 and SCENE_CLASS_NAMES[0] == "background"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_scenes": 0}, "Received: num_scenes=0"),
        ({"image_size": 20}, "Received: image_size=20"),
        ({"min_items": 3, "max_items": 2}, "Received: min_items=3, max_items=2"),
        ({"threshold": 1.0}, "Received: threshold=1.0"),
        ({"split": "dev"}, "Received: split='dev'"),
    ],
)
def test_scenes_bad_arguments(tiny_fashion_mnist, kwargs, message):
    with pytest.raises(DataError, match=message):
        fashion_mnist_scenes(**{"split": "train", "data_dir": tiny_fashion_mnist[0], **kwargs})


# --- `shiftinv segment` end to end ------------------------------------------------------


def _segment_args(out, methods, extra=()):
    return ["segment", "--out", str(out), "--train-scenes", "16", "--test-scenes", "4", "--epochs", "1",
            "--batch-size", "8", "--depth", "1", "--width", "0.0625", "--methods", *methods, *extra]


def _segment(out, methods, extra=()):
    """`shiftinv segment` in a fresh process."""
    return shiftinv(*_segment_args(out, methods, extra), timeout=900)


def _check_run(out, methods):
    results = json.loads((out / "results.json").read_text())
    assert list(results["methods"]) == list(methods)
    for method, row in results["methods"].items():
        for key in ("miou", "pixel_accuracy", "circular_massc", "crop_massc", "equivariance_error"):
            assert np.isfinite(row[key]["mean"])
        assert (out / "models" / method / "seed0.keras").is_file()
        if get_method(method).chooses_phase:  # exactly equivariant, trained or not (the low-pass ones too)
            assert row["circular_massc"]["mean"] == 100.0
            assert row["equivariance_error"]["mean"] < 1e-10
    table = (out / "results.md").read_text()
    assert all(f"| {method} |" in table for method in methods)
    assert (out / "shifted_masks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_segment_command_runs_every_method_end_to_end(tmp_path):
    run = _segment(tmp_path / "run", METHODS)
    assert run.returncode == 0, run.stderr[-3000:]
    _check_run(tmp_path / "run", METHODS)


def test_segment_command_end_to_end_resumes_and_never_overwrites(tmp_path, capsys):
    """The first run in a fresh process; the reruns in this one (through `main`)."""
    out, methods = tmp_path / "run", ["stride", "group-aps"]
    run = _segment(out, methods)
    assert run.returncode == 0, run.stderr[-3000:]
    _check_run(out, methods)
    first = json.loads((out / "results.json").read_text())
    stride_model = out / "models" / "stride" / "seed0.keras"
    stride_bytes, stride_mtime = stride_model.read_bytes(), stride_model.stat().st_mtime_ns
    # As if killed after group-aps' model was saved but before its record was written.
    (out / "models" / "group-aps" / "seed0.json").unlink()
    assert main(_segment_args(out, methods)) == 0
    stdout = capsys.readouterr().out
    assert "stride seed 0: done before" in stdout and "group-aps seed 0: done before" not in stdout
    assert stride_model.read_bytes() == stride_bytes and stride_model.stat().st_mtime_ns == stride_mtime
    second = json.loads((out / "results.json").read_text())
    assert second["methods"]["stride"] == first["methods"]["stride"]
    assert second["methods"]["group-aps"]["circular_massc"]["mean"] == 100.0
    # Other settings: one line, exit 2, nothing replaced; --overwrite retrains.
    assert main(_segment_args(out, methods, ["--epochs", "2"])) == 2
    stderr = capsys.readouterr().err
    err = error_lines(stderr)
    assert len(err) == 1 and "holds results made with other settings; pass --overwrite" in err[0], stderr
    assert "or choose another --out (epochs: 1 -> 2)" in err[0] and "overwrite=True" not in err[0]
    assert stride_model.stat().st_mtime_ns == stride_mtime
    assert json.loads((out / "results.json").read_text()) == second
    assert main(_segment_args(out, ["stride"], ["--epochs", "2", "--overwrite"])) == 0
    record = json.loads((out / "models" / "stride" / "seed0.json").read_text())
    assert record["settings"]["epochs"] == 2 and stride_model.stat().st_mtime_ns != stride_mtime


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--depth", "7"], "--depth must be at most 6 for 64x64 scenes. Received: depth=7"),
        (["--data-dir", "{tmp}/nowhere"], "Fashion-MNIST not found in {tmp}/nowhere."),
    ],
)
def test_segment_usage_errors_are_one_line(tmp_path, capsys, flags, message):
    flags = [f.format(tmp=tmp_path) for f in flags]
    assert main(["segment", "--out", str(tmp_path / "out"), "--methods", "aps", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"shiftinv segment: error: {message.format(tmp=tmp_path)}")
    assert not os.path.exists(tmp_path / "out")  # made only once the flags and the data are checked
