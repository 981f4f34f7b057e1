import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_shiftinv as ks

from helpers import graph_op_types


def xla_attrs(saved_model_dir):
    """Every _XlaMustCompile attribute anywhere in the SavedModel graph."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    found = []
    for meta in proto.meta_graphs:
        graph = meta.graph_def
        nodes = list(graph.node)
        for fn in graph.library.function:
            found += [k for k in fn.attr if "XlaMustCompile" in k]
            nodes += list(fn.node_def)
        for node in nodes:
            found += [k for k in node.attr if "XlaMustCompile" in k]
    return found


def check_float_signature(method, tmp_path):
    model = ks.resnet18(method, num_classes=7, input_shape=(32, 32, 3), width=0.125)
    x = np.random.rand(4, 32, 32, 3).astype("float32")
    path = ks.export_saved_model(model, tmp_path / "serving", version=3)
    assert path == os.path.join(tmp_path / "serving", "3")
    assert os.listdir(tmp_path / "serving") == ["3"]
    assert xla_attrs(path) == []
    with pytest.raises(FileExistsError, match="Received: version=3"):
        ks.export_saved_model(model, tmp_path / "serving", version=3)
    serve = tf.saved_model.load(path).signatures["serve_float"]
    assert set(serve.structured_input_signature[1]) == {"image"}
    spec = serve.structured_input_signature[1]["image"]
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, 32, 32, 3]
    out = serve(image=tf.constant(x))
    expected = np.asarray(keras.ops.softmax(model(x)))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["logits"].numpy(), np.asarray(model(x)), rtol=1e-5, atol=1e-5)
    top = np.argsort(-expected, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(out["classes"].numpy(), top)
    assert out["class_names"].numpy().astype(str).tolist() == top.astype(str).tolist()  # "0".."6"


def test_export_float_signature_matches_keras(tmp_path):
    check_float_signature("group", tmp_path)


def test_saved_model_runs_folded_kernels(tmp_path):
    # conv3d modules at 16x16..2x2 maps: without folding at export every one composes its kernel per
    # call (Einsum) or runs its factored path (Conv3D + a batched matmul); folded, each is one Conv2D.
    model = ks.resnet18("conv3d", num_classes=5, input_shape=(32, 32, 3), width=0.125)
    path = ks.export_saved_model(model, tmp_path / "m")
    serve = tf.saved_model.load(path).signatures["serve_float"]
    types = graph_op_types(serve)
    composing = {t: types[t] for t in ("Einsum", "BatchMatMul", "BatchMatMulV2", "Conv3D", "If", "StatelessIf")
                 if t in types}
    assert composing == {}
    assert types["MatMul"] == 1  # the classifier's dense layer only
    layers = list(model._flatten_layers())
    modules = sum(isinstance(layer, ks.layers.PolyphaseDownsample) for layer in layers)
    assert modules >= 4
    assert types["Conv2D"] == sum(isinstance(layer, keras.layers.Conv2D) for layer in layers) + modules  # one each
    x = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(serve(image=tf.constant(x))["logits"].numpy(), np.asarray(model(x)),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("method", ks.METHODS)
def test_export_float_signature_matches_keras_every_variant(method, tmp_path):
    check_float_signature(method, tmp_path)


def test_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    from keras_shiftinv.export.publish import publish

    def write(tmp_dir):
        with open(os.path.join(tmp_dir, "saved_model.pb"), "wb") as f:
            f.write(b"complete")

    def fail_rename(src, dst):
        assert os.path.exists(os.path.join(src, "saved_model.pb"))  # fully written
        raise OSError("disk full")  # ... then the final step fails

    monkeypatch.setattr(os, "rename", fail_rename)
    with pytest.raises(OSError, match="disk full"):
        publish(tmp_path / "m", 2, write)
    assert os.listdir(tmp_path / "m") == []


def test_export_bad_arguments(tmp_path):
    model = ks.resnet18("stride", num_classes=2, input_shape=(32, 32, 3), width=0.125)
    with pytest.raises(ValueError, match="Received: version=0"):
        ks.export_saved_model(model, tmp_path, version=0)
    with pytest.raises(TypeError, match="must be a keras.Model"):
        ks.export_saved_model("model.keras", tmp_path)
    with pytest.raises(ValueError, match="Received: class_names"):
        ks.export_saved_model(model, tmp_path, class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="Received: preprocessing='mnist'"):
        ks.export_saved_model(model, tmp_path, preprocessing="mnist")
    assert os.listdir(tmp_path) == []
