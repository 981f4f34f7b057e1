"""fashion_mnist_photo: Fashion-MNIST items over real photographs."""

import hashlib
import inspect
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from keras_shiftinv import data
from keras_shiftinv.data import fashion_mnist_photo as photo
from keras_shiftinv.data.fashion_mnist import DEBIAN_DIR
from keras_shiftinv.data.fashion_mnist import read_idx
from keras_shiftinv.errors import DataError


def digest(**kwargs):
    ds, _ = data.load("fashion_mnist_photo", batch_size=32, max_examples=64, **kwargs)
    h = hashlib.sha256()
    for x, y in ds:
        h.update(np.asarray(x).tobytes())
        h.update(np.asarray(y).tobytes())
    return h.hexdigest()


def both_digests():
    keras.utils.set_random_seed(1234)  # training crops also depend on TF's global seed
    return [digest(split="validation", crop=False), digest(split="train", seed=3)]


SCRIPT = "\n".join([
    "import hashlib, keras, numpy as np",
    "from keras_shiftinv import data",
    inspect.getsource(digest),
    inspect.getsource(both_digests),
    "print(*both_digests())",
])


def test_composite_hand_built():
    item = np.zeros((28, 28), "uint8")
    item[10:14, 5:9] = 255
    item[20, 20] = 51  # alpha 0.2
    background = np.arange(40 * 40 * 3).reshape(40, 40, 3).astype("uint8")  # a ramp, mod 256
    colour = np.array([0.5, 1.0, 0.0], "float32")
    out = np.asarray(photo.composite(item, background, colour))
    assert out.shape == (40, 40, 3) and out.dtype == np.float32
    bg = background / 255.0
    zero = np.pad(item == 0, 6, constant_values=True)  # the 6-pixel border is background too
    np.testing.assert_array_equal(out[zero], (background / np.float32(255.0)).astype("float32")[zero])
    np.testing.assert_allclose(out[16:20, 11:15], np.broadcast_to(colour, (4, 4, 3)), atol=1e-7)
    np.testing.assert_allclose(out[26, 26], 0.2 * colour + 0.8 * bg[26, 26], atol=1e-6)
    batched = np.asarray(photo.composite(item[None], background[None], colour[None]))  # (1, 40, 40, 3)
    np.testing.assert_array_equal(batched[0], out)


def test_pipeline_backgrounds_are_the_photos_and_labels_the_items():
    # Independent reading: the photo files with PIL, the items and labels with the IDX reader.
    directory = photo.photo_dir()
    photos = [np.asarray(Image.open(os.path.join(directory, n)).convert("RGB")) for n in photo.PHOTOS]
    items = read_idx(os.path.join(DEBIAN_DIR, "t10k-images-idx3-ubyte.gz"))[:24]
    labels = read_idx(os.path.join(DEBIAN_DIR, "t10k-labels-idx1-ubyte.gz"))[:24]
    ds, info = data.load("fashion_mnist_photo", "validation", batch_size=10, crop=False, max_examples=24)
    assert (info.num_examples, info.eval_side, info.num_classes) == (24, 40, 10)
    images = np.concatenate([np.asarray(x) for x, _ in ds])
    np.testing.assert_array_equal(np.concatenate([np.asarray(y) for _, y in ds]), labels)
    pixels = images * np.array(photo.STD, "float32") + np.array(photo.MEAN, "float32")  # back to 0..1
    index, top, left, colour = photo.background_windows([p.shape[:2] for p in photos], "test", 24)
    for k in range(24):
        patch = photos[index[k]][top[k] : top[k] + 40, left[k] : left[k] + 40] / 255.0
        alpha = np.pad(items[k], 6)[..., None] / 255.0
        np.testing.assert_allclose(pixels[k], alpha * colour[k] + (1 - alpha) * patch, atol=2e-6)
    center, _ = data.load("fashion_mnist_photo", "validation", batch_size=24, max_examples=24)
    np.testing.assert_array_equal(next(iter(center))[0], images[:, 4:36, 4:36])


def test_test_backgrounds_come_from_regions_never_used_in_training():
    shapes = [p.shape[:2] for p in photo.load_photos()]
    train = photo.background_windows(shapes, "train", 20_000, seed=0)
    test = photo.background_windows(shapes, "test", 20_000, seed=0)
    for k, (h, w) in enumerate(shapes):
        cut = int(w * (1 - photo.TEST_FRACTION))
        for which, (index, top, left, _) in (("train", train), ("test", test)):
            mine = index == k
            assert mine.sum() > 1000  # every photo is used by both splits
            assert top[mine].min() >= 0 and top[mine].max() + 40 <= h
            if which == "train":
                assert left[mine].min() >= 0 and left[mine].max() + 40 <= cut
            else:
                assert left[mine].min() >= cut and left[mine].max() + 40 <= w
    again = photo.background_windows(shapes, "train", 20_000, seed=0)
    other = photo.background_windows(shapes, "train", 20_000, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(train, again))
    assert not np.array_equal(train[2], other[2])


def test_same_seed_same_bytes_in_a_fresh_process():
    there = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True,
                           timeout=300).stdout.split()[-2:]
    assert both_digests() == there
    ds, _ = data.load("fashion_mnist_photo", "validation", batch_size=8, crop=False, max_examples=8)
    other, info = photo.fashion_mnist_photo("test", batch_size=8, crop=False, max_examples=8, background_seed=1)
    assert (info.name, info.split, info.num_examples, info.eval_side) == ("fashion_mnist_photo", "validation", 8, 40)
    assert not np.array_equal(next(iter(other))[0], next(iter(ds))[0])
    np.testing.assert_array_equal(next(iter(other))[1], next(iter(ds))[1])


def test_missing_photos_and_bad_crop(tmp_path):
    with pytest.raises(DataError, match="astronaut.png not found"):
        photo.load_photos(str(tmp_path))
    with pytest.raises(DataError, match="Received: image_size=48"):
        data.load("fashion_mnist_photo", "validation", image_size=48, max_examples=4)


@pytest.mark.slow
def test_normalisation_constants_are_the_training_set_statistics():
    photos = photo.load_photos()
    items, _, (index, top, left, colour) = photo.composite_arrays("train", 0, photos=photos)
    total, squares, count = np.zeros(3), np.zeros(3), 0
    for start in range(0, len(items), 5000):
        part = slice(start, start + 5000)
        patches = np.stack([photos[i][t : t + 40, l : l + 40] for i, t, l in zip(index[part], top[part], left[part])])
        alpha = np.pad(items[part], ((0, 0), (6, 6), (6, 6)))[..., None] / 255.0
        out = alpha * colour[part, None, None] + (1 - alpha) * patches / 255.0
        total, squares, count = total + out.sum((0, 1, 2)), squares + (out**2).sum((0, 1, 2)), count + out[..., 0].size
    mean = total / count
    np.testing.assert_allclose(photo.MEAN, mean, atol=1e-4)
    np.testing.assert_allclose(photo.STD, np.sqrt(squares / count - mean**2), atol=1e-4)


def test_table1_on_photos_ci_sized(tmp_path):
    from keras_shiftinv.experiments.table1 import Table1Config
    from keras_shiftinv.experiments.table1 import run_table1
    from keras_shiftinv.saving import read_metadata

    config = Table1Config.from_preset(
        "quick", dataset="fashion_mnist_photo", train_examples=128, eval_examples=40, stability_images=40,
        epochs=1, width=0.125, batch_size=64, methods=("group-aps",),
    )
    results = run_table1(str(tmp_path), config, verbose=0)
    assert results["config"]["dataset"] == "fashion_mnist_photo"
    for name, row in results["methods"].items():
        worst, top1, flips = (row[m]["mean"] for m in ("worst_case_accuracy", "top1", "flip_rate"))
        assert 0.0 <= worst <= top1 and 0.0 <= flips <= 100.0  # the center crop is one of the 81
        # Two crops that disagree (consistency) mean a flip: the flip share bounds the disagreement.
        assert flips >= 100.0 - row["consistency"]["mean"] - 1e-9
        metadata = read_metadata(str(tmp_path / "models" / name / "seed0" / "final.keras"))
        assert metadata["dataset"] == "fashion_mnist_photo"
    # Circular shifts of the photo crops are still exactly absorbed by the aligned model.
    assert results["methods"]["group-aps"]["circular_consistency"]["mean"] == 100.0
    table = (tmp_path / "results.md").read_text()
    assert table.startswith("fashion_mnist_photo, preset `quick`") and "| Worst-case % | Flip % |" in table
