import io
import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_shiftinv import data
from keras_shiftinv.data.transforms import IMAGENET_MEAN
from keras_shiftinv.data.transforms import IMAGENET_STD
from keras_shiftinv.errors import DataError


def _jpeg(color, size=(40, 30)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _add(tar, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def make_imagenet_manual_dir(root, synsets, per_class=3, val_images=4):
    """ILSVRC2012 tars in the real layout: a train tar of per-synset tars, a val tar."""
    os.makedirs(root, exist_ok=True)
    with tarfile.open(os.path.join(root, "ILSVRC2012_img_train.tar"), "w") as train:
        for k, synset in enumerate(synsets):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as t:
                for i in range(per_class):
                    _add(t, f"{synset}_{i + 1}.JPEG", _jpeg((40 * k, 100, 200), (50 + i, 40)))
            _add(train, f"{synset}.tar", inner.getvalue())
    with tarfile.open(os.path.join(root, "ILSVRC2012_img_val.tar"), "w") as val:
        for i in range(val_images):
            _add(val, f"ILSVRC2012_val_{i + 1:08d}.JPEG", _jpeg((10 * i, 20, 30), (60, 45)))


def test_imagenet2012_real_builder_on_tiny_manual_dir(tmp_path):
    import tensorflow_datasets as tfds

    names = (tfds.core.tfds_path() / "datasets/imagenet2012/labels.txt").read_text().split()
    val_synsets = (tfds.core.tfds_path() / "datasets/imagenet2012/validation_labels.txt").read_text().split()
    synsets = [names[0], names[5], names[999]]
    make_imagenet_manual_dir(tmp_path / "manual", synsets)
    train = data.imagenet2012("train", batch_size=4, image_size=32, seed=3,
                              data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "manual"))
    images, labels = next(iter(train))
    assert images.shape == (4, 32, 32, 3) and images.dtype == tf.float32
    assert set(labels.numpy()) <= {0, 5, 999}
    val = data.imagenet2012("validation", batch_size=4, image_size=32, data_dir=str(tmp_path / "tfds"))
    images, labels = next(iter(val))
    # Labels come from tfds's own validation label file, in file-name order.
    assert sorted(labels.numpy()) == sorted(names.index(s) for s in val_synsets[:4])
    # A uniform image normalises to ((color / 255) - mean) / std everywhere.
    builder = tfds.builder("imagenet2012", data_dir=str(tmp_path / "tfds"))
    ex = next(iter(builder.as_dataset(split="validation", decoders={"image": tfds.decode.SkipDecoding()})))
    index = int(ex["file_name"].numpy().decode()[-13:-5]) - 1
    first = next(i for i, lab in enumerate(labels.numpy()) if lab == ex["label"].numpy())
    expected = (np.array([10 * index, 20, 30]) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(images.numpy()[first].mean(axis=(0, 1)), expected, atol=0.06)
    uncropped = next(iter(data.imagenet2012("validation", batch_size=2, image_size=32, crop=False,
                                            data_dir=str(tmp_path / "tfds"))))[0]
    assert uncropped.shape == (2, 37, 37, 3)  # 32 * 256 / 224 = 36.6 -> 37


def test_imagenet2012_missing_manual_tars(tmp_path):
    with pytest.raises(DataError, match="ILSVRC2012_img_train.tar"):
        data.imagenet2012("train", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "none"))


def make_image_folder(root, per_class=4):
    modes = {"cat": "RGB", "dog": "L", "owl": "RGBA"}
    for k, (name, mode) in enumerate(modes.items()):
        os.makedirs(root / name)
        for i in range(per_class):
            color = (30 * k + i,) if mode == "L" else (30 * k, 60, 90, 255)[: len(mode)]
            ext = "jpg" if mode != "RGBA" else "png"
            Image.new(mode, (20 + 7 * i, 31 - 2 * i), color).save(root / name / f"{i}.{ext}")


def test_image_folder_shapes_labels_and_determinism(tmp_path):
    make_image_folder(tmp_path)
    ds, info = data.image_folder(str(tmp_path), batch_size=4, image_size=16, training=True, seed=5)
    assert info == {"class_names": ["cat", "dog", "owl"], "num_examples": 12, "skipped": 0}
    batches = list(ds)
    assert [b[0].shape for b in batches] == [(4, 16, 16, 3)] * 3
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert np.bincount(labels).tolist() == [4, 4, 4]
    again, _ = data.image_folder(str(tmp_path), batch_size=4, image_size=16, training=True, seed=5)
    for (a, _), (b, _) in zip(batches, again):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    evaluation, _ = data.image_folder(str(tmp_path), batch_size=12, image_size=16)
    images, labels = next(iter(evaluation))
    grey = images.numpy()[labels.numpy() == 1]
    np.testing.assert_allclose(grey[..., 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0],
                               grey[..., 1] * IMAGENET_STD[1] + IMAGENET_MEAN[1], atol=1e-5)


def test_image_folder_corrupt_file_named_or_skipped(tmp_path):
    make_image_folder(tmp_path)
    (tmp_path / "dog" / "broken.jpg").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="broken.jpg"):
        data.image_folder(str(tmp_path))
    ds, info = data.image_folder(str(tmp_path), batch_size=16, image_size=8, on_corrupt="skip")
    assert info["skipped"] == 1 and info["num_examples"] == 12
    assert sum(len(b[1]) for b in ds) == 12


def test_image_folder_missing_dir():
    with pytest.raises(DataError, match="not found"):
        data.image_folder("/nonexistent/folder")


def test_fashion_mnist_shapes_labels_determinism():
    ds = data.fashion_mnist("train", batch_size=100, seed=1, max_examples=1000)
    batches = list(ds)
    assert len(batches) == 10 and batches[0][0].shape == (100, 32, 32, 3)
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert np.bincount(labels, minlength=10).sum() == 1000 and labels.max() == 9
    again = list(data.fashion_mnist("train", batch_size=100, seed=1, max_examples=1000))
    np.testing.assert_array_equal(batches[3][0].numpy(), again[3][0].numpy())
    other = next(iter(data.fashion_mnist("train", batch_size=100, seed=2, max_examples=1000)))
    assert not np.array_equal(other[0].numpy(), batches[0][0].numpy())
    test = next(iter(data.fashion_mnist("test", batch_size=10, crop=False)))[0].numpy()
    assert test.shape == (10, 40, 40, 3)
    np.testing.assert_allclose(test[:, :6], -0.2860 / 0.3530, rtol=1e-5)  # zero border
    np.testing.assert_array_equal(test[..., 0], test[..., 2])  # grey replicated


def test_fashion_mnist_counts_from_idx_header():
    assert data.fashion_mnist_num_examples("train") == 60000
    assert data.fashion_mnist_num_examples("test") == 10000


def test_fashion_mnist_missing_package_message(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        data.fashion_mnist("train", data_dir=str(tmp_path))
