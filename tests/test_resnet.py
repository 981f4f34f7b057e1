import math

import keras
import numpy as np
import pytest

import keras_shiftinv as ks
from helpers import perturb
from keras_shiftinv.layers import AdaptivePolyphasePool2D
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import PolyphaseDownsample

SMALL = {"num_classes": 10, "input_shape": (64, 64, 3), "width": 0.125}

# The low-pass rows (docs/subpixel.md) differ from their aligned rows by one stride-1 blur:
# tests/test_subpixel.py covers them by default, every builder test runs them with -m slow.
EVERY_METHOD = [*ks.methods.PAPER_METHODS,
                *(pytest.param(m, marks=pytest.mark.slow) for m in ks.METHODS if m not in ks.methods.PAPER_METHODS)]


def trainable_params(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def test_stride_variant_has_torchvision_resnet18_parameter_count():
    model = ks.resnet18("stride", num_classes=1000, input_shape=(224, 224, 3))
    assert trainable_params(model) == 11_689_512  # torchvision.models.resnet18()
    assert model.output_shape == (None, 1000)


def test_layer_names_are_stable():
    names = {layer.name for layer in ks.resnet18("group", **SMALL).layers}
    for name in [
        "image", "stem_conv", "stem_pool", "stage1_block1_conv1", "stage2_block1_conv1",
        "stage2_block1_shortcut", "stage4_block2_add", "avg_pool", "predictions",
    ]:
        assert name in names


@pytest.mark.parametrize(
    "method, layer_type, count",
    [
        ("stride", None, 0),
        ("blur", BlurPool2D, 8),  # stem conv, stem pool, 3 x (conv1 + shortcut)
        ("aps", AdaptivePolyphasePool2D, 8),
        ("group", PolyphaseDownsample, 8),
        ("conv3d-aps", PolyphaseDownsample, 8),
    ],
)
def test_every_downsampling_site_uses_the_method(method, layer_type, count):
    model = ks.resnet18(method, **SMALL)
    if layer_type is not None:
        assert sum(isinstance(layer, layer_type) for layer in model.layers) == count
    strided = [
        layer.name
        for layer in model.layers
        if getattr(layer, "strides", (1, 1)) != (1, 1) and not isinstance(layer, BlurPool2D)
    ]
    assert strided == ([] if method != "stride" else strided)
    if method == "stride":
        assert len(strided) == 8


def test_polyphase_sites_use_the_variants_settings():
    model = ks.resnet18("conv3d-aps", padding="circular", **SMALL)
    modules = [layer for layer in model.layers if isinstance(layer, PolyphaseDownsample)]
    assert {(m.mixing, m.align, m.padding) for m in modules} == {("conv3d", "max_norm", "circular")}


@pytest.mark.parametrize("method", EVERY_METHOD)
def test_odd_non_square_inputs_work(method):
    model = ks.resnet18(method, num_classes=3, input_shape=(37, 50, 3), width=0.125)
    out = model(np.random.rand(2, 37, 50, 3).astype("float32"))
    assert out.shape == (2, 3) and np.all(np.isfinite(np.asarray(out)))


def test_variable_input_size_matches_fixed_size_models():
    model = ks.resnet18("group-aps", num_classes=4, input_shape=(None, None, 3), width=0.125)
    for size in [(32, 32), (45, 31)]:
        fixed = ks.resnet18("group-aps", num_classes=4, input_shape=(*size, 3), width=0.125)
        fixed.set_weights(model.get_weights())
        x = np.random.rand(2, *size, 3).astype("float32")
        np.testing.assert_allclose(np.asarray(model(x)), np.asarray(fixed(x)), rtol=1e-5, atol=1e-5)


def _logits_for_shifts(method, shifts, size=64):
    model = ks.resnet18(method, padding="circular", **{**SMALL, "input_shape": (size, size, 3)})
    x = np.random.rand(1, size, size, 3).astype("float32")
    batch = np.concatenate([np.roll(x, s, axis=(1, 2)) for s in shifts])
    return np.asarray(model.predict(batch, verbose=0))


@pytest.mark.parametrize("method", ["aps", "group-aps", "conv3d-aps"])
def test_exact_circular_shift_invariance(method):
    rng = np.random.default_rng(7)
    shifts = [(0, 0), (1, 0), (0, 1), (1, 1), (2, 3)] + [tuple(rng.integers(-63, 64, 2)) for _ in range(5)]
    logits = _logits_for_shifts(method, shifts)
    scale = np.abs(logits).max()
    np.testing.assert_allclose(logits, np.broadcast_to(logits[0], logits.shape), atol=1e-5 * scale)


@pytest.mark.parametrize("method", ["group", "conv3d", "stride"])
def test_unaligned_variants_are_not_exactly_invariant(method):
    # A one-pixel shift permutes the four phases; a fixed learned mix (or a
    # fixed subsampling grid) sees a different input, so the logits move.
    logits = _logits_for_shifts(method, [(0, 0), (0, 1), (1, 0)])
    scale = np.abs(logits).max()
    assert np.abs(logits[1] - logits[0]).max() > 1e-3 * scale
    assert np.abs(logits[2] - logits[0]).max() > 1e-3 * scale


@pytest.mark.parametrize(
    "method, main_name, shortcut_name",
    [
        ("aps", "stage2_block1_conv1_aps", "stage2_block1_shortcut_aps"),
        ("group-aps", "stage3_block1_conv1", "stage3_block1_shortcut"),
    ],
)
def test_aligned_shortcut_reuses_main_branch_phase(method, main_name, shortcut_name):
    model = ks.resnet18(method, **SMALL)
    shortcut = model.get_layer(shortcut_name)
    main = model.get_layer(main_name)
    assert main.return_index and not shortcut.return_index
    # The shortcut's second input is the main site's chosen index.
    node = shortcut._inbound_nodes[0]
    assert any(t._keras_history.operation is main for t in node.arguments.keras_tensors)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "maxblur"}, r"Expected one of \['stride', 'blur', 'group', 'conv3d', 'aps', 'group-aps', 'conv3d-aps', 'blur-aps', 'group-aps-lp', 'conv3d-aps-lp'\]. Received: method='maxblur'"),
        ({"padding": "same"}, "Received: padding='same'"),
        ({"num_classes": 0}, "Received: num_classes=0"),
        ({"width": -1}, "Received: width=-1"),
        ({"input_shape": (32, 32)}, r"Received: input_shape=\(32, 32\)"),
    ],
)
def test_builder_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ks.resnet18(**kwargs)


@pytest.mark.parametrize("method", EVERY_METHOD)
def test_keras_save_and_load_identical_outputs(method, tmp_path):
    model = ks.resnet18(method, num_classes=5, input_shape=(32, 32, 3), width=0.125, padding="circular")
    x = np.random.rand(3, 32, 32, 3).astype("float32")
    perturb(model)  # BN statistics and weights not at their init, as after training
    path = tmp_path / f"{method}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


# --- The ResNet family -------------------------------------------------------

BOTTLENECK = {"num_classes": 10, "input_shape": (32, 32, 3), "width": 0.125}


@pytest.mark.parametrize(
    "builder, expected",
    [
        (ks.resnet34, 21_797_672),  # torchvision.models.resnet34()
        (ks.resnet50, 25_557_032),
        (ks.resnet101, 44_549_160),
        # 567 layers: 24 s to build on the shared 2-core machine.
        pytest.param(ks.resnet152, 60_192_808, marks=pytest.mark.slow),
    ],
)
def test_stride_family_has_torchvision_parameter_counts(builder, expected):
    model = builder("stride", input_shape=(32, 32, 3))
    assert trainable_params(model) == expected
    assert model.output_shape == (None, 1000)


def test_bottleneck_layout_strides_the_3x3_conv():
    model = ks.resnet50("stride", **BOTTLENECK)
    strided = [layer.name for layer in model.layers if getattr(layer, "strides", (1, 1)) == (2, 2)]
    sites = [f"stage{s}_block1_{part}" for s in (2, 3, 4) for part in ("conv2", "shortcut")]
    assert sorted(strided) == sorted(["stem_conv", "stem_pool", *sites])
    kernels = {name: model.get_layer(f"stage2_block1_{name}").kernel_size for name in ("conv1", "conv2", "conv3")}
    assert kernels == {"conv1": (1, 1), "conv2": (3, 3), "conv3": (1, 1)}
    # Stage 1 widens 8 -> 32 channels at stride 1: a plain projection, not a site.
    assert model.get_layer("stage1_block1_shortcut").strides == (1, 1)
    assert model.get_layer("stage4_block3_out").output.shape == (None, 1, 1, 256)
    assert model.get_layer("stage1_block1_shortcut").kernel.shape == (1, 1, 8, 32)


@pytest.mark.parametrize(
    "method, layer_type", [("blur", BlurPool2D), ("conv3d-aps", PolyphaseDownsample)]
)
def test_every_bottleneck_site_uses_the_method(method, layer_type):
    model = ks.resnet50(method, padding="circular", **BOTTLENECK)
    assert sum(isinstance(layer, layer_type) for layer in model.layers) == 8
    assert all(getattr(layer, "strides", (1, 1)) == (1, 1) for layer in model.layers if not isinstance(layer, BlurPool2D))
    if method == "conv3d-aps":
        modules = [layer for layer in model.layers if isinstance(layer, PolyphaseDownsample)]
        assert {(m.mixing, m.align, m.padding) for m in modules} == {("conv3d", "max_norm", "circular")}
        assert model.get_layer("stage3_block1_conv2").kernel_size == 3
        assert model.get_layer("stage3_block1_shortcut").kernel_size == 1


def test_include_top_and_pooling_follow_keras_applications():
    features = ks.resnet18("aps", include_top=False, **SMALL)
    assert features.output_shape == (None, 2, 2, 64)
    assert "predictions" not in {layer.name for layer in features.layers}
    x = np.random.rand(2, 64, 64, 3).astype("float32")
    maps = np.asarray(features(x))
    for pooling, reduce in [("avg", np.mean), ("max", np.max)]:
        pooled = ks.resnet18("aps", include_top=False, pooling=pooling, **SMALL)
        pooled.set_weights(features.get_weights())
        np.testing.assert_allclose(np.asarray(pooled(x)), reduce(maps, axis=(1, 2)), rtol=1e-5, atol=1e-6)
    top = ks.resnet18("aps", classifier_activation="softmax", **SMALL)
    top.set_weights(features.get_weights() + top.get_layer("predictions").get_weights())
    kernel, bias = top.get_layer("predictions").get_weights()
    logits = maps.mean(axis=(1, 2)) @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(top(x)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["aps", "group-aps", "conv3d-aps"])
def test_resnet50_exact_circular_shift_invariance(method):
    model = ks.resnet50(method, padding="circular", num_classes=10, input_shape=(64, 64, 3), width=0.125)
    rng = np.random.default_rng(11)
    shifts = [(0, 0), (1, 0), (0, 1), (1, 1), (2, 4), (5, -3)] + [tuple(rng.integers(-63, 64, 2)) for _ in range(4)]
    x = rng.random((1, 64, 64, 3), dtype="float32")
    logits = np.asarray(model(np.concatenate([np.roll(x, s, axis=(1, 2)) for s in shifts])))
    scale = np.abs(logits).max()
    assert scale > 0
    np.testing.assert_allclose(logits, np.broadcast_to(logits[0], logits.shape), atol=1e-5 * scale)


def test_resnet50_variable_input_size_matches_fixed_size_models():
    kwargs = {"include_top": False, "pooling": "avg", "width": 0.125, "padding": "reflect"}
    model = ks.resnet50("conv3d", input_shape=(None, None, 3), **kwargs)
    for size in [(37, 50)]:  # odd, non-square; resnet18's test covers even sizes
        fixed = ks.resnet50("conv3d", input_shape=(*size, 3), **kwargs)
        fixed.set_weights(model.get_weights())
        x = np.random.rand(2, *size, 3).astype("float32")
        np.testing.assert_allclose(np.asarray(model(x)), np.asarray(fixed(x)), rtol=1e-5, atol=1e-5)


def test_bottleneck_keras_file_reloads_in_a_fresh_process(tmp_path, fresh_process):
    # Non-trivial BN statistics, so a lost or reordered weight would show.
    model = perturb(ks.resnet50("group-aps", padding="circular", **BOTTLENECK), seed=3)
    x = np.random.default_rng(3).random((3, 32, 32, 3), dtype="float32")
    np.save(tmp_path / "x.npy", x)
    model.save(tmp_path / "m.keras")
    loaded = fresh_process.load([tmp_path / "m.keras"], x=tmp_path / "x.npy")[str(tmp_path / "m.keras")]
    assert (loaded["name"], loaded["layers"]) == (model.name, len(model.layers))
    np.testing.assert_array_equal(np.array(loaded["outputs"], "float32"), np.asarray(model(x)))


@pytest.mark.parametrize(
    "builder, kwargs, message",
    [
        (ks.resnet, {"depth": 20}, r"Expected one of \[18, 34, 50, 101, 152\]. Received: depth=20"),
        (ks.resnet50, {"pooling": "sum", "include_top": False}, "Received: pooling='sum'"),
        (ks.resnet101, {"method": "foo"}, "Received: method='foo'"),
    ],
)
def test_family_bad_arguments(builder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        builder(**kwargs)
