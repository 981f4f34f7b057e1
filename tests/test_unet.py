import keras
import numpy as np
import pytest

import reference
from keras_shiftinv import export_saved_model
from keras_shiftinv import unet
from keras_shiftinv.layers import AdaptivePolyphasePool2D
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import PolyphaseUpsample2D
from keras_shiftinv.methods import METHODS

MODES = ["zeros", "reflect", "circular"]
ALIGNED = ["aps", "group-aps", "conv3d-aps"]


def rand(*shape):
    return np.random.normal(size=shape).astype("float32")


def randomize(model):
    """Random weights everywhere (positive BN variances), so nothing is trivially symmetric."""
    weights = []
    for w in model.weights:
        value = rand(*w.shape)
        weights.append(np.abs(value) + 0.5 if "variance" in w.path else value)
    model.set_weights(weights)
    return model


# --- PolyphaseUpsample2D -----------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel_size", [1, 3])
@pytest.mark.parametrize("with_phase", [True, False])
def test_learned_upsample_matches_numpy_reference(mode, kernel_size, with_phase):
    y = rand(3, 4, 5, 2)
    phases = np.array([3, 0, 2]) if with_phase else None
    layer = PolyphaseUpsample2D(6, kernel_size=kernel_size, padding=mode)
    layer.build(y.shape)
    layer.set_weights([rand(*w.shape) for w in layer.get_weights()])
    out = np.asarray(layer(y) if phases is None else layer(y, phase_index=phases))
    kernel, bias = (np.asarray(w, "float64") for w in layer.get_weights())
    expected = reference.polyphase_upsample(y, phases, "learned", kernel, bias, mode)
    assert out.shape == (3, 8, 10, 6)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_place_upsample_matches_numpy_reference_for_every_phase():
    y = rand(4, 3, 2, 5)
    phases = np.array([0, 1, 2, 3])
    out = np.asarray(PolyphaseUpsample2D(mode="place")(y, phase_index=phases))
    np.testing.assert_array_equal(out, reference.polyphase_upsample(y, phases, "place"))


def test_place_puts_the_aps_output_back_on_the_pixels_it_kept():
    x = rand(4, 8, 6, 3)
    pooled, index = AdaptivePolyphasePool2D(return_index=True)(x)
    out = np.asarray(PolyphaseUpsample2D(mode="place")(pooled, phase_index=index))
    index = np.asarray(index)
    assert len(set(index.tolist())) > 1  # the test covers several phases
    for b, p in enumerate(index):
        expected = np.zeros_like(x[b])
        dy, dx = p // 2, p % 2
        expected[dy::2, dx::2] = x[b, dy::2, dx::2]
        np.testing.assert_array_equal(out[b], expected)


def _identity_down_weights(layer, channels):
    """Weights that make PolyphaseDownsample(4*C) output channel c*4 + p = phase p of channel c."""
    mixing, merge = (np.zeros(w.shape, "float32") for w in layer.get_weights())
    k = layer.kernel_size // 2
    if layer.mixing == "group":  # mixing (k, k, 4, 4*C): group c's output m = its phase m
        for c in range(channels):
            for p in range(4):
                mixing[k, k, p, c * 4 + p] = 1.0
        merge[:] = np.eye(4 * channels)
    else:  # conv3d (3, k, k, C, 4*C): out (c, 0) reads phases d, out (c, 1) phases d + 2
        for c in range(channels):
            mixing[0, k, k, c, c * 4] = 1.0
            mixing[2, k, k, c, c * 4 + 1] = 1.0
            for d in (0, 1):  # mixed channel o*2 + d, o = c*4 + a
                merge[(c * 4) * 2 + d, c * 4 + d] = 1.0
                merge[(c * 4 + 1) * 2 + d, c * 4 + 2 + d] = 1.0
    layer.set_weights([mixing, merge])


@pytest.mark.parametrize("mixing", ["group", "conv3d"])
def test_aligned_down_then_up_with_identity_weights_reproduces_the_input(mixing):
    channels = 3
    x = rand(4, 8, 6, channels)
    down = PolyphaseDownsample(4 * channels, mixing=mixing, padding="circular", align="max_norm",
                               return_index=True)
    down.build(x.shape)
    _identity_down_weights(down, channels)
    up = PolyphaseUpsample2D(channels, padding="circular", use_bias=False)
    up.build((4, 4, 3, 4 * channels))
    kernel = np.zeros((1, 1, 4 * channels, 4 * channels), "float32")
    for c in range(channels):
        for p in range(4):
            kernel[0, 0, c * 4 + p, p * channels + c] = 1.0  # phase-major output
    up.set_weights([kernel])
    y, index = down(x)
    assert len(set(np.asarray(index).tolist())) > 1
    np.testing.assert_array_equal(np.asarray(up(y, phase_index=index)), x)


def test_upsample_config_round_trip_shapes_and_functional_use():
    layer = PolyphaseUpsample2D(7, kernel_size=3, padding="circular", use_bias=False, name="up")
    clone = PolyphaseUpsample2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert layer.compute_output_shape((None, 5, None, 3)) == (None, 10, None, 7)
    assert PolyphaseUpsample2D(mode="place").compute_output_shape((2, 3, 4, 5)) == (2, 6, 8, 5)
    inputs = keras.Input((8, 8, 2))
    pooled, index = AdaptivePolyphasePool2D(return_index=True)(inputs)
    model = keras.Model(inputs, PolyphaseUpsample2D(mode="place")(pooled, phase_index=index))
    x = rand(2, 8, 8, 2)
    assert np.count_nonzero(np.asarray(model(x))) == x.size // 4  # one phase of four kept


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "nearest"}, "Received: mode='nearest'"),
        ({"filters": 4, "mode": "place"}, "Received: filters=4"),
        ({}, "Received: filters=None"),
        ({"filters": 0}, "Received: filters=0"),
        ({"filters": 4, "kernel_size": 2}, "Received: kernel_size=2"),
        ({"filters": 4, "padding": "edge"}, "Received: padding='edge'"),
    ],
)
def test_upsample_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        PolyphaseUpsample2D(**kwargs)


def test_upsample_bad_input_shape():
    with pytest.raises(ValueError, match="Received: input_shape=\\(2, 4, 4\\)"):
        PolyphaseUpsample2D(3).build((2, 4, 4))


# --- unet ------------------------------------------------------------------------


def _roll_error(model, x, shift):
    base = np.asarray(model(x))
    out = np.asarray(model(np.roll(x, shift, axis=(1, 2))))
    return np.abs(out - np.roll(base, shift, axis=(1, 2))).max() / np.abs(base).max()


@pytest.mark.parametrize("method", ALIGNED)
def test_aligned_unets_are_exactly_circularly_equivariant(method):
    model = randomize(unet(method, 4, (16, 24, 2), depth=3, width=0.0625, padding="circular"))
    x = rand(2, 16, 24, 2)
    rng = np.random.default_rng(0)
    shifts = [(1, 0), (0, 3), (2, -4)] + [tuple(rng.integers(-12, 12, size=2)) for _ in range(2)]
    for shift in shifts:
        assert _roll_error(model, x, shift) < 1e-5, shift


@pytest.mark.parametrize("method", ["stride", "group"])
def test_unaligned_unets_are_not_equivariant(method):
    model = randomize(unet(method, 4, (16, 24, 2), depth=3, width=0.0625, padding="circular"))
    x = rand(2, 16, 24, 2)
    for shift in [(1, 0), (0, 3)]:
        assert _roll_error(model, x, shift) > 1e-2


@pytest.mark.parametrize(
    "method, counts",
    [
        ("stride", {"Conv2DTranspose": 2}),
        ("blur", {"Conv2DTranspose": 2, "BlurPool2D": 4}),
        ("aps", {"AdaptivePolyphasePool2D": 2, "PolyphaseUpsample2D": 2}),
        ("group-aps", {"PolyphaseDownsample": 2, "PolyphaseUpsample2D": 2}),
    ],
)
def test_every_level_uses_the_methods_down_and_up_layers(method, counts):
    model = unet(method, 3, (16, 16, 1), depth=2, width=0.125)
    names = [layer.__class__.__name__ for layer in model.layers]
    for cls, count in counts.items():
        assert names.count(cls) == count
    for layer in model.layers:
        if isinstance(layer, PolyphaseUpsample2D):
            assert layer.mode == ("place" if method == "aps" else "learned")
        if isinstance(layer, PolyphaseDownsample):
            assert layer.align == "max_norm" and layer.return_index
        if isinstance(layer, BlurPool2D) and layer.name.endswith("_up_blur"):
            assert layer.stride == 1


def test_any_input_size_is_padded_and_cropped_back():
    small = randomize(unet("aps", 3, (21, 13, 2), depth=3, width=0.125))
    padded = unet("aps", 3, (24, 16, 2), depth=3, width=0.125)
    padded.set_weights(small.get_weights())
    x = rand(2, 21, 13, 2)
    out = np.asarray(small(x))
    assert out.shape == (2, 21, 13, 3)
    expected = np.asarray(padded(np.pad(x, ((0, 0), (0, 3), (0, 3), (0, 0)))))[:, :21, :13]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": 0}, "Received: depth=0"),
        ({"depth": 2.0}, "Received: depth=2.0"),
        ({"method": "maxpool"}, "Received: method='maxpool'"),
        ({"num_classes": 1}, "Received: num_classes=1"),
        ({"width": 0}, "Received: width=0"),
        ({"padding": "edge"}, "Received: padding='edge'"),
        ({"input_shape": (32, 32, None)}, "Received: input_shape=\\(32, 32, None\\)"),
    ],
)
def test_unet_bad_arguments_are_one_line_keras_style_errors(kwargs, message):
    arguments = {"method": "aps", "num_classes": 3, "input_shape": (32, 32, 3), **kwargs}
    with pytest.raises(ValueError, match=message) as info:
        unet(**arguments)
    assert "\n" not in str(info.value)


def _softmax(logits):
    logits = np.asarray(logits, "float64")
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def _save_and_reload(methods, exported, tmp_path, fresh_process):
    """Saves each U-Net as .keras and exports one; a fresh process loads them all.

    The export takes RGB images (`export_saved_model`'s contract); its
    `serve_float` signature returns per-pixel logits and probabilities.
    """
    x = rand(2, 16, 16, 3)
    np.save(tmp_path / "x.npy", x)
    outputs = {}
    for method in methods:
        model = randomize(unet(method, 3, (16, 16, 3), depth=2, width=0.0625, padding="circular"))
        model.save(tmp_path / f"{method}.keras")
        outputs[method] = np.asarray(model(x))
        if method == exported:
            export_saved_model(model, str(tmp_path / "served"), version=1)
    loaded = fresh_process.load([tmp_path / f"{method}.keras" for method in methods], x=tmp_path / "x.npy")
    worst = {m: float(np.abs(np.array(loaded[str(tmp_path / f"{m}.keras")]["outputs"]) - outputs[m]).max())
             for m in methods}
    assert max(worst.values()) < 1e-5, worst
    served = fresh_process.load([tmp_path / "served" / "1"], x=tmp_path / "x.npy", signature="serve_float")
    served = {k: np.array(v, "float32") for k, v in served[str(tmp_path / "served" / "1")]["outputs"].items()}
    # Randomized weights give logits up to ~1e9 here: float32 rounding is relative to that scale,
    # so elements near cancellation are compared with an absolute tolerance scaled to it.
    scale = float(np.abs(outputs[exported]).max())
    np.testing.assert_allclose(served["logits"], outputs[exported], rtol=1e-4, atol=max(1e-5, 1e-5 * scale))
    np.testing.assert_allclose(served["probabilities"], _softmax(outputs[exported]), rtol=1e-4, atol=1e-6)


def test_every_unet_reloads_in_a_fresh_process_and_an_export_serves_its_logits(tmp_path, fresh_process):
    _save_and_reload(METHODS, "group-aps", tmp_path, fresh_process)


@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m in METHODS if m != "group-aps"])
def test_export_saved_model_of_every_unet(method, tmp_path, fresh_process):
    _save_and_reload([method], method, tmp_path, fresh_process)
