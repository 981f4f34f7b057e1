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
    train, info = data.imagenet2012("train", batch_size=4, image_size=32, seed=3,
                                    data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "manual"))
    assert info == data.DatasetInfo("imagenet2012", "train", tuple(names), 9, 32, 37)  # 32 * 256 / 224 -> 37
    images, labels = next(iter(train))
    assert images.shape == (4, 32, 32, 3) and images.dtype == tf.float32
    assert set(labels.numpy()) <= {0, 5, 999}
    val, info = data.imagenet2012("validation", batch_size=4, image_size=32, data_dir=str(tmp_path / "tfds"))
    assert (info.split, info.num_examples) == ("validation", 4)
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
                                            data_dir=str(tmp_path / "tfds"))[0]))[0]
    assert uncropped.shape == (2, 37, 37, 3)  # 32 * 256 / 224 = 36.6 -> 37
    info = data.describe("imagenet2012", "train", data_dir=str(tmp_path / "tfds"))
    assert info.class_names == tuple(names) and info.class_names[0] == "n01440764" and info.num_examples == 9


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
    # 16 * 256 / 224 = 18.3 -> 18: the side of the uncropped evaluation images.
    assert info == data.DatasetInfo("folder", "train", ("cat", "dog", "owl"), 12, 16, 18, skipped=0)
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
    assert info.skipped == 1 and info.num_examples == 12 and info.split == "validation"
    assert sum(len(b[1]) for b in ds) == 12


def test_image_folder_missing_dir():
    with pytest.raises(DataError, match="not found"):
        data.image_folder("/nonexistent/folder")


def test_fashion_mnist_shapes_labels_determinism():
    ds, info = data.fashion_mnist("train", batch_size=100, seed=1, max_examples=1000)
    assert (info.name, info.split, info.num_examples, info.image_size, info.eval_side) == (
        "fashion_mnist", "train", 1000, 32, 40)
    assert info.class_names[:2] == ("T-shirt/top", "Trouser") and info.num_classes == 10
    batches = list(ds)
    assert len(batches) == 10 and batches[0][0].shape == (100, 32, 32, 3)
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert np.bincount(labels, minlength=10).sum() == 1000 and labels.max() == 9
    again = list(data.fashion_mnist("train", batch_size=100, seed=1, max_examples=1000)[0])
    np.testing.assert_array_equal(batches[3][0].numpy(), again[3][0].numpy())
    other = next(iter(data.fashion_mnist("train", batch_size=100, seed=2, max_examples=1000)[0]))
    assert not np.array_equal(other[0].numpy(), batches[0][0].numpy())
    test_ds, info = data.fashion_mnist("test", batch_size=10, crop=False)
    assert (info.split, info.num_examples) == ("validation", 10000)  # the IDX file's count
    test = next(iter(test_ds))[0].numpy()
    assert test.shape == (10, 40, 40, 3)
    np.testing.assert_allclose(test[:, :6], -0.2860 / 0.3530, rtol=1e-5)  # zero border
    np.testing.assert_array_equal(test[..., 0], test[..., 2])  # grey replicated


def test_fashion_mnist_evaluation_transform_is_the_hand_computed_one():
    """The pipeline's evaluation images and `eval_transform` of a client's RGB image: one numpy reference."""
    from keras_shiftinv.data.fashion_mnist import eval_transform
    from keras_shiftinv.data.fashion_mnist import load_arrays

    items = load_arrays("test")[0][:4]  # uint8 (4, 28, 28)
    padded = np.pad(items.astype("float32") / 255.0, ((0, 0), (6, 6), (6, 6)))  # (4, 40, 40)
    reference = np.repeat(((padded[:, 4:36, 4:36] - 0.2860) / 0.3530)[..., None], 3, axis=-1)  # (4, 32, 32, 3)
    ds, info = data.load("fashion_mnist", "validation", batch_size=4, max_examples=4)
    np.testing.assert_allclose(next(iter(ds))[0].numpy(), reference, rtol=1e-6, atol=1e-6)
    rgb = np.repeat(items[0][..., None], 3, axis=-1)  # a grey client image in RGB, (28, 28, 3)
    np.testing.assert_allclose(eval_transform(rgb, 32).numpy(), reference[0], rtol=1e-6, atol=1e-6)


def test_every_dataset_name_has_one_spec():
    assert data.DATASETS == tuple(data.SPECS)
    for name, spec in data.SPECS.items():
        assert spec.name == name and data.DEFAULT_IMAGE_SIZE[name] == spec.default_image_size
        assert data.EVAL_TRANSFORMS[spec.eval_transform.name] is spec.eval_transform
    assert data.spec("fashion_mnist_photo").protocol["crop_size"] == 32
    assert data.spec("folder").protocol["crop_size"] == 224
    with pytest.raises(DataError, match=r"Received: dataset='mnist'"):
        data.spec("mnist")


def test_fashion_mnist_counts_from_idx_header():
    assert data.fashion_mnist_num_examples("train") == 60000
    assert data.fashion_mnist_num_examples("test") == 10000


def test_fashion_mnist_missing_package_message(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        data.fashion_mnist("train", data_dir=str(tmp_path))


def _truncated_jpeg(path):
    """A JPEG cut to 2/3 of its bytes: Pillow's `verify()` still accepts it."""
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) * 2 // 3])
    with Image.open(path) as image:
        image.verify()  # the old check passed it


def test_truncated_jpeg_is_found_when_the_dataset_is_built(tmp_path):
    make_image_folder(tmp_path)
    _truncated_jpeg(tmp_path / "cat" / "cut.jpg")
    with pytest.raises(DataError, match="Corrupt or unreadable image: .*cut.jpg.*delete or re-save") as e:
        data.image_folder(str(tmp_path))
    assert "on_corrupt" not in str(e.value) and "\n" not in str(e.value)
    _, info = data.image_folder(str(tmp_path), image_size=8, on_corrupt="skip")
    assert info.skipped == 1 and info.num_examples == 12


def test_decode_check_sees_a_file_change_after_a_first_load(tmp_path):
    make_image_folder(tmp_path)
    assert data.image_folder(str(tmp_path), image_size=8)[1].num_examples == 12
    _truncated_jpeg(tmp_path / "cat" / "0.jpg")  # same name, new size and mtime
    with pytest.raises(DataError, match="0.jpg"):
        data.image_folder(str(tmp_path), image_size=8)


def test_one_class_and_empty_class_folders_are_rejected(tmp_path):
    make_image_folder(tmp_path / "one", per_class=1)
    for name in ("dog", "owl"):
        for f in (tmp_path / "one" / name).iterdir():
            f.unlink()
        (tmp_path / "one" / name).rmdir()
    with pytest.raises(DataError, match=r"one class subfolder \('cat'\); a classifier needs at least two"):
        data.scan_image_folder(str(tmp_path / "one"))
    make_image_folder(tmp_path / "empty", per_class=1)
    os.makedirs(tmp_path / "empty" / "zebra" / "nested")
    with pytest.raises(DataError, match="class folder .*zebra holds no images"):
        data.load("folder", "train", data_dir=str(tmp_path / "empty"))


def test_non_utf8_file_name_is_read(tmp_path):
    make_image_folder(tmp_path, per_class=1)
    name = os.path.join(os.fsencode(tmp_path / "cat"), b"caf\xe9.png")  # Latin-1, not UTF-8
    with open(name, "wb") as f:
        Image.new("RGB", (9, 9), (200, 100, 50)).save(f, format="PNG")
    ds, info = data.load("folder", "train", batch_size=8, image_size=8, training=False,
                         data_dir=str(tmp_path))
    assert info.num_examples == 4
    images, labels = next(iter(ds))
    # Sorted by name: "0.jpg" then the Latin-1 name; the second cat image is the uniform orange one.
    expected = (np.array([200, 100, 50]) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(images.numpy()[1], np.broadcast_to(expected, (8, 8, 3)), atol=1e-5)
    assert labels.numpy().tolist() == [0, 0, 1, 2]


def test_non_utf8_class_folder_is_one_line(tmp_path):
    make_image_folder(tmp_path, per_class=1)
    os.rename(tmp_path / "owl", os.path.join(os.fsencode(tmp_path), b"\xe9t\xe9"))
    with pytest.raises(DataError, match="class folder name is not valid UTF-8: .*rename it"):
        data.describe("folder", "train", data_dir=str(tmp_path))


def test_train_and_val_with_different_classes(tmp_path):
    make_image_folder(tmp_path / "train", per_class=1)
    make_image_folder(tmp_path / "val", per_class=1)
    os.rename(tmp_path / "val" / "owl", tmp_path / "val" / "bat")
    with pytest.raises(DataError, match=r"different classes \(only in train: \['owl'\], only in val: \['bat'\]\)"):
        data.describe("folder", "validation", data_dir=str(tmp_path))


def test_folder_without_validation_split(tmp_path):
    make_image_folder(tmp_path / "train", per_class=1)
    assert not data.has_split("folder", "validation", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="has no validation folder"):
        data.load("folder", "validation", data_dir=str(tmp_path))


def test_class_names_of_every_dataset(tmp_path):
    assert data.describe("fashion_mnist").class_names == (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    make_image_folder(tmp_path / "train", per_class=1)
    info = data.describe("folder", "train", image_size=16, data_dir=str(tmp_path))
    assert (info.class_names, info.num_classes, info.num_examples, info.eval_side) == (
        ("cat", "dog", "owl"), 3, 3, 18)  # 16 * 256 / 224 = 18.3


def _fashion_copy(tmp_path, cut=None):
    from keras_shiftinv.data.fashion_mnist import DEBIAN_DIR
    from keras_shiftinv.data.fashion_mnist import FILES

    for name in FILES["test"]:
        payload = open(os.path.join(DEBIAN_DIR, name), "rb").read()
        if cut and name.startswith("t10k-images"):
            payload = payload[:cut]
        (tmp_path / name).write_bytes(payload)
    return str(tmp_path)


@pytest.mark.parametrize("cut,message", [(100_000, "is damaged (EOFError"), (5, "is damaged (")])
def test_truncated_fashion_mnist_gz_is_one_line(tmp_path, cut, message):
    data_dir = _fashion_copy(tmp_path, cut)
    with pytest.raises(DataError, match="apt-get install --reinstall dataset-fashion-mnist") as e:
        data.load("fashion_mnist", "validation", data_dir=data_dir)
    assert message in str(e.value) and "t10k-images" in str(e.value) and "\n" not in str(e.value)


def test_truncated_fashion_mnist_through_the_cli(tmp_path, capsys):
    import keras_shiftinv
    from keras_shiftinv.cli import main
    from keras_shiftinv.saving import save_model

    model = keras_shiftinv.resnet18("stride", num_classes=10, input_shape=(32, 32, 3), width=0.125)
    path = save_model(model, str(tmp_path / "m.keras"))
    argv = ["evaluate", path, "--data-dir", _fashion_copy(tmp_path, 100_000), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("shiftinv evaluate: error: ") and "is damaged" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_train_cli_reports_a_truncated_jpeg_before_training(tmp_path, capsys):
    from keras_shiftinv.cli import main

    make_image_folder(tmp_path / "pets" / "train", per_class=2)
    _truncated_jpeg(tmp_path / "pets" / "train" / "dog" / "cut.jpg")
    run = tmp_path / "run"
    argv = ["train", "--model", "stride", "--dataset", "folder", "--data-dir", str(tmp_path / "pets"),
            "--image-size", "32", "--width", "0.125", "--epochs", "1", "--batch-size", "2",
            "--model-dir", str(run), "--verbose", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("shiftinv train: error: Corrupt or unreadable image: ") and "cut.jpg" in err
    assert "on_corrupt" not in err and not list(run.glob("**/*.keras"))


def test_image_tensorflow_cannot_decode_is_reported(tmp_path):
    make_image_folder(tmp_path, per_class=1)
    Image.new("1", (8, 8), 1).save(tmp_path / "dog" / "mono.bmp")  # Pillow reads it, TensorFlow does not
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_image((tmp_path / "dog" / "mono.bmp").read_bytes(), channels=3)
    with pytest.raises(DataError, match="mono.bmp"):
        data.load("folder", "train", data_dir=str(tmp_path))
