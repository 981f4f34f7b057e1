import math

import keras
import numpy as np
import pytest

import keras_shiftinv as ks
from keras_shiftinv.layers import AdaptivePolyphasePool2D
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import PolyphaseDownsample

SMALL = {"num_classes": 10, "input_shape": (64, 64, 3), "width": 0.125}


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


@pytest.mark.parametrize("method", ks.DOWNSAMPLE_METHODS)
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


def test_aps_shortcut_reuses_main_branch_phase():
    model = ks.resnet18("aps", **SMALL)
    shortcut = model.get_layer("stage2_block1_shortcut_aps")
    main = model.get_layer("stage2_block1_conv1_aps")
    assert main.return_index and not shortcut.return_index
    # The shortcut pool's second input is the main pool's chosen index.
    node = shortcut._inbound_nodes[0]
    assert any(t._keras_history.operation is main for t in node.arguments.keras_tensors)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"downsample": "maxblur"}, r"Expected one of \['stride', 'blur', 'group', 'conv3d', 'aps', 'group-aps', 'conv3d-aps'\]. Received: downsample='maxblur'"),
        ({"padding": "same"}, "Received: padding='same'"),
        ({"num_classes": 0}, "Received: num_classes=0"),
        ({"width": -1}, "Received: width=-1"),
        ({"input_shape": (32, 32)}, r"Received: input_shape=\(32, 32\)"),
    ],
)
def test_builder_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ks.resnet18(**kwargs)


@pytest.mark.parametrize("method", ks.DOWNSAMPLE_METHODS)
def test_keras_save_and_load_identical_outputs(method, tmp_path):
    model = ks.resnet18(method, num_classes=5, input_shape=(32, 32, 3), width=0.125, padding="circular")
    x = np.random.rand(3, 32, 32, 3).astype("float32")
    # One training step so BN statistics and weights are not at their init.
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, np.array([0, 1, 2]), verbose=0, epochs=1)
    path = tmp_path / f"{method}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
