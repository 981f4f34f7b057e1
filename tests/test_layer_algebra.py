"""The pure functions beside the 2-D layers: the cost rule, the kernel fold, the phase roll."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_shiftinv.layers import AdaptivePolyphasePool2D
from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import PolyphaseUpsample2D
from keras_shiftinv.layers import polyphase_algebra as algebra
from keras_shiftinv.layers._utils import rolled_by_phase
from keras_shiftinv.layers.polyphase_downsample import folded_kernels

from helpers import graph_op_types


def test_fusing_pays_matches_hand_counted_multiplies():
    # group, k=3, C=16, filters=32, width 32: fused 4*16*32*9 = 18432 per pixel; unfused
    # 4*32*9 + 32*32 + 32*4*32 = 6272; compose 4*9*32*32 = 36864. Inference: pixels * (6*6272 - 18432)
    # = pixels * 19200 >= 36864 from 2 pixels on; training: 6272 < 18432, never.
    group = dict(kernel_size=3, channels=16, filters=32, mixed=32)
    assert not algebra.fusing_pays("group", 1, **group) and algebra.fusing_pays("group", 2, **group)
    assert not algebra.fusing_pays("group", 10**9, **group, training=True)
    # conv3d, k=3, C=4, filters=8: fused 1152, unfused 6*4*8*9 + 2*64 = 1856, compose 6*9*4*64 = 13824:
    # inference from ceil(13824 / 704) = 20 pixels, training from ceil(3 * 13824 / 704) = 59.
    conv3d = dict(kernel_size=3, channels=4, filters=8, mixed=None)
    assert [algebra.fusing_pays("conv3d", n, **conv3d) for n in (19, 20)] == [False, True]
    assert [algebra.fusing_pays("conv3d", n, **conv3d, training=True) for n in (58, 59)] == [False, True]
    # A tensor of pixels (dynamic batch) gives the same answer as a tensor.
    assert bool(algebra.fusing_pays("conv3d", tf.constant(20), **conv3d))


def test_batch_none_inference_decides_the_path_when_traced():
    # conv3d, k=3, C=4, filters=8 pays from 20 output pixels (above); a 4x4 input has 4 per image, so
    # batch 8 (algebra.INFERENCE_BATCH) fuses, batch 3 does not. With batch None the old rule left the
    # choice to run time (an `If` in the graph); now it is made at trace time for INFERENCE_BATCH.
    assert algebra.INFERENCE_BATCH * 4 >= 20 > 3 * 4
    layer = PolyphaseDownsample(8, mixing="conv3d", use_bias=True)
    x = np.random.default_rng(0).normal(size=(3, 4, 4, 4)).astype("float32")
    eager = layer(x)  # static batch 3: the factored path
    serve = tf.function(lambda t: layer(t, training=False), input_signature=[tf.TensorSpec([None, 4, 4, 4])])
    nodes = graph_op_types(serve.get_concrete_function())
    assert not {"If", "StatelessIf"} & set(nodes)
    assert "Einsum" in nodes  # the fold: the fused path, as the rule says for INFERENCE_BATCH images
    np.testing.assert_allclose(serve(x).numpy(), keras.ops.convert_to_numpy(eager), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("use_bias", [False, True])
def test_group_fused_kernel_equals_numpy_composition(use_bias):
    rng = np.random.default_rng(0)
    k, c, m, f = 3, 2, 3, 4  # C groups of M channels each
    mix = rng.normal(size=(k, k, 4, c * m)).astype("float32")
    merge = rng.normal(size=(c * m, f)).astype("float32")
    biases = (rng.normal(size=(c * m,)).astype("float32"), rng.normal(size=(f,)).astype("float32"))
    kernel, bias = algebra.fused_kernel("group", mix, merge, c, *(biases if use_bias else (None, None)))
    want = np.zeros((k, k, 4 * c, f), "float64")
    for p in range(4):
        for g in range(c):
            for j in range(m):
                want[:, :, p * c + g, :] += mix[:, :, p, g * m + j, None] * merge[g * m + j]
    np.testing.assert_allclose(np.asarray(kernel), want, rtol=1e-5, atol=1e-5)
    if use_bias:
        np.testing.assert_allclose(np.asarray(bias), biases[0] @ merge + biases[1], rtol=1e-5, atol=1e-5)
    else:
        assert bias is None


def test_rolled_by_phase_is_np_roll_bit_for_bit():
    x = np.random.default_rng(1).normal(size=(4, 6, 8, 3)).astype("float32")
    phases = np.array([0, 1, 2, 3], "int32")
    want = np.stack([np.roll(x[i], (p // 2, p % 2), axis=(0, 1)) for i, p in enumerate(phases)])
    fn = tf.function(rolled_by_phase, input_signature=[tf.TensorSpec([None, None, None, 3]),
                                                       tf.TensorSpec([None], tf.int32)])
    for got in (rolled_by_phase(x, phases), fn(x, phases)):
        np.testing.assert_array_equal(np.asarray(got), want)


def test_built_downsample_refuses_another_channel_count():
    layer = PolyphaseDownsample(4)
    layer(np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 3"):
        layer(np.zeros((1, 8, 8, 5), "float32"))


@pytest.mark.slow
def test_aligned_upsample_converts_to_litert_builtins_and_matches(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    inputs = keras.Input((8, 8, 3))
    pooled, index = AdaptivePolyphasePool2D(return_index=True, padding="circular")(inputs)
    outputs = PolyphaseUpsample2D(4, kernel_size=3, padding="circular")(pooled, phase_index=index)
    model = keras.Model(inputs, outputs)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x), [tf.TensorSpec([None, 8, 8, 3], tf.float32)])
    archive.write_out(str(tmp_path / "saved"), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved"), signature_keys=["serve"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # tf.Roll would fail here
    runner = Interpreter(model_content=converter.convert()).get_signature_runner("serve")
    x = np.random.default_rng(2).normal(size=(3, 8, 8, 3)).astype("float32")
    (got,) = runner(x=x).values()
    np.testing.assert_allclose(got, np.asarray(model(x)), rtol=1e-5, atol=1e-5)


def test_folded_kernels_change_inference_only_and_end_with_the_block():
    model = keras.Sequential([keras.Input((8, 8, 3)), PolyphaseDownsample(4, use_bias=True)])
    layer = model.layers[-1]
    layer.set_weights([np.random.default_rng(i).normal(size=w.shape).astype("float32")
                       for i, w in enumerate(layer.get_weights())])
    x = tf.constant(np.random.default_rng(3).normal(size=(2, 8, 8, 3)).astype("float32"))
    before = np.asarray(model(x))
    with folded_kernels(model):
        folded = np.asarray(model(x))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x, training=True) ** 2)
        grad = tape.gradient(loss, layer.mixing_kernel.value)
        layer.set_weights([w * 2 for w in layer.get_weights()])
        stale = np.asarray(model(x))  # the constants were folded on entry
    np.testing.assert_allclose(folded, before, rtol=1e-5, atol=1e-5)
    assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0  # training still reads the weights
    np.testing.assert_allclose(stale, before, rtol=1e-5, atol=1e-5)
    assert not np.allclose(np.asarray(model(x)), before)  # after the block: the new weights


def _onnx_ops(model, tmp_path):
    import onnx

    from keras_shiftinv.export import export_onnx

    def walk(graph):
        for node in graph.node:
            yield node.op_type
            for attribute in node.attribute:
                yield from walk(attribute.g)

    return set(walk(onnx.load(export_onnx(model, tmp_path / "onnx")).graph))


def _litert_ops(model, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from keras_shiftinv.export import export_litert

    return {op["op_name"] for op in Interpreter(model_path=export_litert(model, tmp_path / "litert"))._get_ops_details()}


@pytest.mark.slow
def test_exports_run_one_constant_convolution_per_module_and_gather_the_phase(tmp_path):
    import keras_shiftinv as ks

    group = ks.resnet18("group", num_classes=4, input_shape=(32, 32, 3), width=0.125)
    aligned = ks.resnet18("group-aps", num_classes=4, input_shape=(32, 32, 3), width=0.125, padding="circular")
    lite = _litert_ops(group, tmp_path / "group")
    assert "CONV_2D" in lite and not lite & {"BATCH_MATMUL", "DEPTHWISE_CONV_2D", "IF", "SUM"}, lite
    onnx_ops = _onnx_ops(group, tmp_path / "group")
    assert "Conv" in onnx_ops and not onnx_ops & {"If", "Einsum"}, onnx_ops
    aligned_ops = _onnx_ops(aligned, tmp_path / "aligned")
    assert "Gather" in aligned_ops and not aligned_ops & {"If", "Einsum", "Roll", "OneHot"}, aligned_ops


@pytest.mark.slow
def test_exports_take_the_cost_rules_path_on_folded_constants(tmp_path):
    # Width 1: the 3x3 stage sites (64..256 channels in) do fewer weighted multiplies factored than
    # fused at any batch (6 * (4*M*9 + M*F + 32*4*M) < 4*C*F*9), so the exports run them factored
    # (a depthwise conv, a phase sum, the merge), the stem and the 1x1 sites fused: builtin ops, no
    # composition, no `If`; `inference_path("fused")` around the export gives one convolution each.
    import keras_shiftinv as ks
    from ai_edge_litert.interpreter import Interpreter

    from keras_shiftinv.export import export_litert

    wide = ks.resnet18("group", num_classes=4, input_shape=(32, 32, 3), width=1.0)
    lite = _litert_ops(wide, tmp_path / "count")
    assert {"DEPTHWISE_CONV_2D", "SUM", "CONV_2D"} <= lite and not lite & {"BATCH_MATMUL", "IF"}, lite
    onnx_ops = _onnx_ops(wide, tmp_path / "count")
    assert "Conv" in onnx_ops and not onnx_ops & {"If", "Einsum"}, onnx_ops
    with algebra.inference_path("fused"):
        fused = _litert_ops(wide, tmp_path / "fused")
    assert "CONV_2D" in fused and not fused & {"DEPTHWISE_CONV_2D", "SUM", "BATCH_MATMUL", "IF"}, fused
    x = np.random.default_rng(0).uniform(size=(3, 32, 32, 3)).astype("float32")
    runner = Interpreter(model_path=export_litert(wide, tmp_path / "check")).get_signature_runner("serve_float")
    np.testing.assert_allclose(runner(image=x)["probabilities"], np.asarray(keras.ops.softmax(wide(x))),
                               rtol=1e-4, atol=1e-5)
