"""Serving: encoded images in, class names out; LiteRT and ONNX; `shiftinv predict`.

docs/design.md, "Export and serving". The references are the package's own
evaluation pipeline (`keras_shiftinv.data.load`) followed by the Keras model.
"""

import base64
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import keras_shiftinv as ks
from helpers import error_lines
from helpers import shiftinv
from helpers import small_residual_net
from keras_shiftinv import data
from keras_shiftinv.cli import main
from keras_shiftinv.data.fashion_mnist import CLASS_NAMES as FASHION_MNIST_NAMES
from keras_shiftinv.data.fashion_mnist import load_arrays
from keras_shiftinv.data.image_folder import list_image_folder
from keras_shiftinv.export.publish import publish
from keras_shiftinv.saving import save_model

SKIMAGE_DATA = os.path.join(os.path.dirname(__import__("skimage").__file__), "data")
CLASSES = ["astronaut", "cat", "rocket"]
SIDE = 64


def tame(model, scale=0.002):
    """Shrinks the classifier so random-weight probabilities are not saturated."""
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * scale, bias])
    return model


def photo_folder(root):
    """DIR/{train,val}/<class>/ with real photographs as JPEG, PNG, grey, RGBA, GIF and BMP."""
    sources = {"astronaut": "astronaut.png", "cat": "chelsea.png", "rocket": "rocket.jpg"}
    for split in ("train", "val"):
        for name, filename in sources.items():
            folder = os.path.join(root, split, name)
            os.makedirs(folder)
            image = Image.open(os.path.join(SKIMAGE_DATA, filename)).convert("RGB")
            image.save(os.path.join(folder, "a.jpg"), quality=90)
            image.save(os.path.join(folder, "b.png"))
    val = os.path.join(root, "val")
    camera = Image.open(os.path.join(SKIMAGE_DATA, "camera.png")).convert("L")  # grey
    camera.save(os.path.join(val, "astronaut", "c_grey.png"))
    camera.save(os.path.join(val, "astronaut", "d_grey.jpg"), quality=90)
    coffee = Image.open(os.path.join(SKIMAGE_DATA, "coffee.png")).convert("RGB")
    rgba = coffee.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(os.path.join(val, "cat", "c_rgba.png"))
    coffee.save(os.path.join(val, "cat", "d.bmp"))
    coffee.convert("P").save(os.path.join(val, "rocket", "c.gif"))
    return root


@pytest.fixture(scope="module")
def photo_export(tmp_path_factory):
    """A folder model saved with metadata, exported by the CLI in a fresh process."""
    root = tmp_path_factory.mktemp("serving")
    folder = photo_folder(str(root / "photos"))
    model = tame(ks.resnet18("group", num_classes=3, input_shape=(SIDE, SIDE, 3), width=0.125))
    keras_path = save_model(model, str(root / "m.keras"),
                            {"class_names": CLASSES, "dataset": "folder", "image_size": SIDE})
    result = shiftinv("export", keras_path, root / "served", "--version", 2)
    assert result.returncode == 0, result.stderr
    ds, _ = data.load("folder", "validation", data_dir=folder, image_size=SIDE, batch_size=64)
    images, _ = next(iter(ds))
    expected = np.asarray(keras.ops.softmax(model(images)))
    paths = list_image_folder(os.path.join(folder, "val"))[0]
    return {"dir": str(root / "served" / "2"), "keras": keras_path, "paths": paths, "expected": expected}


def test_serving_default_equals_evaluation_pipeline(photo_export):
    paths, expected = photo_export["paths"], photo_export["expected"]
    assert expected.max() < 0.99  # not saturated: the comparison can fail
    serve = tf.saved_model.load(photo_export["dir"]).signatures["serving_default"]
    encoded = [open(p, "rb").read() for p in paths]
    out = serve(image_bytes=tf.constant(encoded))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-4)
    top = np.argsort(-expected, axis=1, kind="stable")
    np.testing.assert_array_equal(out["classes"].numpy(), top)
    names = [[CLASSES[i] for i in row] for row in top]
    assert out["class_names"].numpy().astype(str).tolist() == names


def test_rest_body_round_trip(photo_export):
    """TF Serving's REST row format: {"instances": [{"b64": ...}]} -> {"predictions": [...]}."""
    paths, expected = photo_export["paths"][:4], photo_export["expected"][:4]
    body = json.dumps({"instances": [{"b64": base64.b64encode(open(p, "rb").read()).decode()} for p in paths]})
    # What the server does: one string input, so each instance is its value; b64 objects are decoded.
    instances = json.loads(body)["instances"]
    tensor = tf.constant([base64.b64decode(instance["b64"]) for instance in instances])
    out = tf.saved_model.load(photo_export["dir"]).signatures["serving_default"](image_bytes=tensor)
    rows = [{key: value.numpy()[i].tolist() for key, value in out.items()} for i in range(len(paths))]
    response = json.loads(json.dumps({"predictions": rows}, default=bytes.decode))
    got = np.array([row["probabilities"] for row in response["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert [row["class_names"][0] for row in response["predictions"]] == [CLASSES[i] for i in expected.argmax(1)]


def test_bad_image_names_its_index_and_server_keeps_serving(photo_export):
    serve = tf.saved_model.load(photo_export["dir"]).signatures["serving_default"]
    good = open(photo_export["paths"][0], "rb").read()
    for bad in (good[: len(good) // 2], b"not an image", b""):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes\[2\] is not a decodable"):
            serve(image_bytes=tf.constant([good, good, bad, good]))
    out = serve(image_bytes=tf.constant([good]))
    np.testing.assert_allclose(out["probabilities"].numpy()[0], photo_export["expected"][0], atol=1e-4)


def test_exported_dir_is_world_readable_and_xla_free(photo_export):
    path = photo_export["dir"]
    for directory, dirs, files in os.walk(path):
        assert os.stat(directory).st_mode & 0o777 == 0o755, directory
        for name in files:
            assert os.stat(os.path.join(directory, name)).st_mode & 0o777 == 0o644, name
    assert sorted(os.listdir(os.path.dirname(path))) == ["2"]
    from test_export import xla_attrs

    assert xla_attrs(path) == []
    signatures = tf.saved_model.load(path).signatures
    assert sorted(signatures) == ["serve_float", "serve_uint8", "serving_default"]


def test_uint8_and_float_signatures_agree(photo_export):
    signatures = tf.saved_model.load(photo_export["dir"]).signatures
    image = np.asarray(Image.open(photo_export["paths"][1]).convert("RGB"))  # a PNG: exact pixels
    by_uint8 = signatures["serve_uint8"](images=tf.constant(image[None]))
    np.testing.assert_allclose(by_uint8["probabilities"].numpy()[0], photo_export["expected"][1], atol=1e-4)
    preprocessed = ks.export.preprocessing.image_transform("imagenet", SIDE)(tf.constant(image))
    by_float = signatures["serve_float"](image=preprocessed[None])
    np.testing.assert_allclose(by_float["probabilities"].numpy()[0], photo_export["expected"][1], atol=1e-4)
    np.testing.assert_allclose(tf.nn.softmax(by_float["logits"]).numpy()[0], photo_export["expected"][1], atol=1e-5)


def test_predict_cli_on_savedmodel_and_keras_file(photo_export, capsys):
    paths, expected = photo_export["paths"][:3], photo_export["expected"][:3]
    for model_path in (os.path.dirname(photo_export["dir"]), photo_export["keras"]):
        if model_path == photo_export["keras"]:  # the SavedModel in a fresh process, the .keras file here
            assert main(["predict", model_path, *paths, "--json", "--top", "2"]) == 0
            stdout = capsys.readouterr().out
        else:
            result = shiftinv("predict", model_path, *paths, "--json", "--top", 2)
            assert result.returncode == 0, result.stderr
            stdout = result.stdout
        rows = json.loads(stdout)
        assert [row["image"] for row in rows] == paths
        for row, probabilities in zip(rows, expected):
            best = int(np.argmax(probabilities))
            assert len(row["top"]) == 2 and row["top"][0]["class_name"] == CLASSES[best]
            assert abs(row["top"][0]["probability"] - probabilities[best]) < 1e-4
    assert main(["predict", photo_export["keras"], paths[0]]) == 0
    lines = capsys.readouterr().out.splitlines()
    best = int(np.argmax(expected[0]))
    assert lines[0] == paths[0] and lines[1] == f"  {expected[0][best]:.4f}  {CLASSES[best]}" and len(lines) == 4


def test_predict_cli_bad_image_is_one_line(photo_export, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(open(photo_export["paths"][0], "rb").read()[:300])
    assert main(["predict", photo_export["dir"], photo_export["paths"][0], str(broken)]) == 2
    message = f"shiftinv predict: error: {broken} is not a decodable JPEG, PNG, GIF or BMP image"
    assert error_lines(capsys.readouterr().err) == [message]


def test_fashion_mnist_png_bytes_equal_evaluation_pipeline(tmp_path):
    model = tame(ks.resnet18("stride", num_classes=10, input_shape=(32, 32, 3), width=0.125))
    metadata = {"class_names": list(FASHION_MNIST_NAMES), "dataset": "fashion_mnist", "image_size": 32}
    path = ks.export_saved_model(model, tmp_path / "fm", metadata=metadata)
    ds, _ = data.load("fashion_mnist", "validation", batch_size=6, max_examples=6)
    images, labels = next(iter(ds))
    expected = np.asarray(keras.ops.softmax(model(images)))
    assert expected.max() < 0.99
    items = load_arrays("test")[0][:6]  # (6, 28, 28) uint8, the same images
    encoded = [tf.io.encode_png(item[..., None]) for item in items[:5]]
    encoded.append(tf.io.encode_png(np.repeat(items[5][..., None], 3, axis=-1)))  # as RGB
    signatures = tf.saved_model.load(path).signatures
    out = signatures["serving_default"](image_bytes=tf.stack(encoded))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-4)
    assert out["class_names"].numpy()[0, 0].decode() == metadata["class_names"][int(expected[0].argmax())]
    by_uint8 = signatures["serve_uint8"](images=tf.constant(np.repeat(items[..., None], 3, axis=-1)))
    np.testing.assert_allclose(by_uint8["probabilities"].numpy(), expected, atol=1e-4)


def runtime_outputs(model, fmt, tmp_path, x):
    if fmt == "litert":
        from ai_edge_litert.interpreter import Interpreter

        path = ks.export.export_litert(model, tmp_path / fmt)
        runner = Interpreter(model_path=path).get_signature_runner("serve_float")
        return runner(image=x), path
    import onnxruntime

    path = ks.export.export_onnx(model, tmp_path / fmt)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return dict(zip(("probabilities", "logits"), session.run(["probabilities", "logits"], {"image": x}))), path


def assert_runtime_matches_keras(model, fmt, tmp_path):
    x = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype("float32")
    logits = np.asarray(model(x))
    out, path = runtime_outputs(model, fmt, tmp_path, x)
    np.testing.assert_allclose(out["logits"], logits, atol=1e-4 * max(1.0, np.abs(logits).max()))
    np.testing.assert_allclose(out["probabilities"], np.asarray(keras.ops.softmax(logits)), atol=1e-5)
    assert os.stat(path).st_mode & 0o777 == 0o644
    if fmt == "onnx":
        import onnx

        proto = onnx.load(path)
        assert {node.domain for node in proto.graph.node} <= {"", "ai.onnx"}  # standard ops only
        assert json.loads({p.key: p.value for p in proto.metadata_props}["class_names"]) == list("0123")
    else:  # LiteRT: the class names and preprocessing travel beside the flatbuffer
        folder = os.path.dirname(path)
        assert open(os.path.join(folder, "labels.txt"), encoding="utf-8").read() == "0\n1\n2\n3\n"
        with open(os.path.join(folder, "serving.json"), encoding="utf-8") as f:
            spec = json.load(f)
        assert spec == {"class_names": list("0123"), "preprocessing": "imagenet", "image_size": 32,
                        "signature": "serve_float"}


def test_litert_and_onnx_group_aps_match_keras(tmp_path):
    """The hardest variant (max-norm phase choice, circular padding) in both runtimes, on resnet18's
    layers in a small residual net (resnet18 itself, and every variant, with -m slow)."""
    model, report = small_residual_net("group-aps", padding="circular")
    assert report.circular_invariant is True, str(report)
    for fmt in ("litert", "onnx"):
        assert_runtime_matches_keras(model, fmt, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["litert", "onnx"])
@pytest.mark.parametrize("method", ks.METHODS)
def test_every_variant_runs_in_litert_and_onnx(method, fmt, tmp_path):
    padding = "circular" if ks.methods.get(method).chooses_phase else "zeros"
    model = ks.resnet18(method, num_classes=4, input_shape=(32, 32, 3), width=0.125, padding=padding)
    assert_runtime_matches_keras(model, fmt, tmp_path)


def test_overwrite_keeps_old_version_until_new_is_complete(tmp_path):
    def writer(text, fail=False):
        def write(tmp_dir):
            os.makedirs(os.path.join(tmp_dir, "variables"))
            with open(os.path.join(tmp_dir, "variables", "v.txt"), "w") as f:
                f.write(text)
            if fail:
                raise OSError("disk full")
        return write

    old_umask = os.umask(0o077)
    try:
        path = publish(tmp_path, 1, writer("old"))
        with pytest.raises(FileExistsError, match="Received: version=1"):
            publish(tmp_path, 1, writer("new"))
        with pytest.raises(OSError, match="disk full"):
            publish(tmp_path, 1, writer("new", fail=True), overwrite=True)
        assert open(os.path.join(path, "variables", "v.txt")).read() == "old"
        assert os.listdir(tmp_path) == ["1"]
        publish(tmp_path, 1, writer("new"), overwrite=True)
        assert open(os.path.join(path, "variables", "v.txt")).read() == "new"
        assert os.listdir(tmp_path) == ["1"]
        assert os.stat(os.path.join(path, "variables")).st_mode & 0o777 == 0o755
        assert os.stat(os.path.join(path, "variables", "v.txt")).st_mode & 0o777 == 0o644
    finally:
        os.umask(old_umask)


def test_export_cli_errors_are_one_line(tmp_path, capsys):
    model = ks.resnet18("stride", num_classes=2, input_shape=(32, 32, 3), width=0.125)
    keras_path = save_model(model, str(tmp_path / "m.keras"), {"class_names": ["a", "b"], "dataset": "folder",
                                                                "image_size": 32})
    a_file = tmp_path / "file"
    a_file.write_text("x")
    os.makedirs(tmp_path / "served" / "1")
    cases = [
        (a_file, "is not a directory"),
        ("/proc/keras_shiftinv_export", "cannot export to /proc/keras_shiftinv_export"),
        (tmp_path / "served", "already has version 1; pass --overwrite or another --version"),
    ]
    for export_dir, message in cases:
        assert main(["export", keras_path, str(export_dir), "--format", "onnx"]) == 2
        err = capsys.readouterr().err
        lines = error_lines(err)
        assert len(lines) == 1 and message in lines[0], err
        assert "overwrite=True" not in err
    assert os.listdir(tmp_path / "served") == ["1"] and os.listdir(tmp_path / "served" / "1") == []
    with pytest.raises(ValueError, match="cannot export to .*: Not a directory"):
        ks.export_saved_model(model, a_file / "sub")
