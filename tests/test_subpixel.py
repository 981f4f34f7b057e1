"""Sub-pixel metrics against numpy references and hand calculations; the low-pass methods'
exact integer circular invariance and their exports (docs/subpixel.md)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_shiftinv as ks
from keras_shiftinv import methods
from keras_shiftinv import metrics
from helpers import perturb

LOWPASS = ("blur-aps", "group-aps-lp", "conv3d-aps-lp")


def _one_default(first):
    """The methods, all but `first` under `slow` (each case builds a model: seconds)."""
    return [m if m == first else pytest.param(m, marks=pytest.mark.slow) for m in LOWPASS]


def _without_nyquist(x):
    """`x` with every 2-D FFT bin of an even side's Nyquist row or column set to zero (numpy reference)."""
    spectrum = np.fft.fft2(x, axes=(1, 2))
    for axis in (1, 2):
        n = x.shape[axis]
        if n % 2 == 0:
            index = [slice(None)] * 4
            index[axis] = n // 2
            spectrum[tuple(index)] = 0
    return np.fft.ifft2(spectrum, axes=(1, 2)).real


@pytest.mark.parametrize("shape", [(7, 9), (8, 8), (8, 7)])
def test_two_half_pixel_shifts_are_a_roll_by_one(shape):
    """Exact for images without Nyquist energy; with it, the Nyquist row/column is what a half shift drops."""
    x = np.random.default_rng(0).normal(size=(2, *shape, 3))
    clean = _without_nyquist(x)
    twice = metrics.half_pixel_shift(metrics.half_pixel_shift(clean))
    np.testing.assert_allclose(twice, np.roll(clean, (1, 1), axis=(1, 2)), atol=1e-12)
    twice = metrics.half_pixel_shift(metrics.half_pixel_shift(x, (2, -3)), (0, 0))  # moves (3, -2)
    np.testing.assert_allclose(twice, np.roll(clean, (3, -2), axis=(1, 2)), atol=1e-12)
    gap = np.abs(twice - np.roll(x, (3, -2), axis=(1, 2))).max()
    if shape == (7, 9):  # odd sides have no Nyquist bin: exact for any image
        assert gap < 1e-12
    else:
        assert gap > 1e-3


def test_half_pixel_shift_of_band_limited_images_is_the_closed_form():
    """A sum of cosines moves by exactly (sy + 1/2, sx + 1/2): the analytic reference."""
    n = 12
    p = np.arange(n)
    for (ky, kx), (sy, sx) in [((1, 2), (0, 0)), ((3, 5), (-4, 7)), ((0, 1), (5, -1))]:
        image = lambda dy, dx: (np.cos(2 * np.pi * ky * (p[:, None] - dy) / n)  # noqa: E731
                                + 0.5 * np.sin(2 * np.pi * kx * (p[None, :] - dx) / n + 0.3))
        x = image(0, 0)[None, :, :, None]  # (1, n, n, 1)
        moved = metrics.half_pixel_shift(x.astype("float32"), (sy, sx))
        assert moved.dtype == np.float32
        np.testing.assert_allclose(moved[0, :, :, 0], image(sy + 0.5, sx + 0.5), atol=1e-5)


def _pixel_reader(size, threshold=0.5):
    """Logits (0, x[0, 0] - threshold): class 1 iff the crop's top-left pixel exceeds `threshold`."""
    inputs = keras.Input((size, size, 1))
    first = keras.layers.Lambda(lambda x: x[:, 0, 0, :1])(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(first))


def _with_threshold(model, threshold=0.5):
    model.set_weights([np.array([[0.0, 1.0]], "float32"), np.array([0.0, -threshold], "float32")])
    return model


def test_fixed_pixel_reader_half_pixel_scores_match_hand_calculation():
    # Crops of 8 (from 10) whose columns are a + b cos(2 pi 2 j / 8). Moved by (1/2, 1/2)
    # (max_shift 0), pixel (0, 0) reads a + b cos(pi / 4): 0.6 -> 0.424 flips class,
    # 1.0 -> 0.707 and 0.3 -> 0.212 do not: consistency 2/3.
    crop = 8
    j = np.arange(10) - 1  # the crop starts at (1, 1)
    amplitudes = np.array([0.6, 1.0, 0.3])
    images = amplitudes[:, None, None, None] * np.cos(2 * np.pi * 2 * j / crop)[None, None, :, None]
    images = np.broadcast_to(images, (3, 10, 10, 1)).astype("float32")
    model = _with_threshold(_pixel_reader(crop))
    score = metrics.subpixel_consistency(model, images, crop_size=crop, max_shift=0)
    assert score == pytest.approx(200 / 3)
    sigmoid = lambda t: 1 / (1 + np.exp(-t))  # noqa: E731  p(class 1) of logits (0, t)
    before, after = sigmoid(amplitudes - 0.5), sigmoid(amplitudes * np.cos(np.pi / 4) - 0.5)
    expected = np.abs(before - after).mean()  # |change| of p(class 1) = |change| of p(class 0)
    mac = metrics.half_pixel_mac(model, (images, np.zeros(3)), crop_size=crop)
    assert mac == pytest.approx(expected, rel=1e-4)


def test_fixed_pixel_reader_fractional_worst_case_matches_hand_calculation():
    # One bright pixel v at the crop's (0, 0); bilinear offsets (dy, dx) in {0, +-1/4, +-1/2, +-3/4}^2
    # read it with weight (1 - |dy|)(1 - |dx|) >= 1/16. Class 1 iff the read value > 0.5:
    # v = 4 fails at the corners (0.25), v = 10 and 20 pass (>= 0.625), v = 0 (label 0) passes: 75%.
    images = np.zeros((4, 6, 6, 1), "float32")
    images[:, 1, 1, 0] = [4.0, 10.0, 20.0, 0.0]
    labels = np.array([1, 1, 1, 0])
    model = _with_threshold(_pixel_reader(4))
    result = metrics.fractional_worst_case_accuracy(model, images, labels, steps=4, crop_size=4)
    assert result == {"fractional_worst_case_accuracy": 75.0, "center_top1": 100.0, "offsets": 49, "images": 4}
    coarse = metrics.fractional_worst_case_accuracy(model, images, labels, steps=1, crop_size=4)  # (0, 0) only
    assert coarse["fractional_worst_case_accuracy"] == 100.0 and coarse["offsets"] == 1
    # v = 10: the worst offset reads 10 / 16 = 0.625 > 0.5; with threshold 0.7 it fails too: 50%.
    strict = _with_threshold(_pixel_reader(4), threshold=0.7)
    result = metrics.fractional_worst_case_accuracy(strict, images, labels, steps=4, crop_size=4)
    assert result["fractional_worst_case_accuracy"] == 50.0


def test_an_exactly_invariant_model_scores_100():
    """Global average pooling keeps the DC bin of a Fourier shift, and the mean of any bilinear
    resampling of a periodic image whose period divides the crop (here 8 | 16)."""
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(inputs)))
    rng = np.random.default_rng(1)
    tile = rng.normal(size=(64, 8, 8, 3)).astype("float32")
    images = np.tile(tile, (1, 3, 3, 1))[:, :20, :20]  # (64, 20, 20, 3), period 8
    labels = np.asarray(model.predict(images[:, 2:18, 2:18], verbose=0)).argmax(-1)
    assert len(set(labels)) > 1
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    assert metrics.subpixel_consistency(model, data, crop_size=16, max_shift=4, passes=3) == 100.0
    assert metrics.half_pixel_mac(model, data, crop_size=16) < 1e-6
    result = metrics.fractional_worst_case_accuracy(model, data, crop_size=16, steps=4)
    assert result["fractional_worst_case_accuracy"] == 100.0 and result["images"] == 64


def test_bilinear_crop_is_the_weighted_sum_of_four_neighbours():
    noise = np.random.default_rng(2).normal(size=(3, 20, 20, 2)).astype("float32")
    ours = metrics.bilinear_crop(noise, 2.5, 2.25, 16)  # rows 2 and 3 by halves, columns 2 and 3 by 3/4, 1/4
    reference = sum(wy * wx * noise[:, 2 + a : 18 + a, 2 + b : 18 + b]
                    for a, wy in ((0, 0.5), (1, 0.5)) for b, wx in ((0, 0.75), (1, 0.25)))
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    np.testing.assert_array_equal(metrics.bilinear_crop(noise, 3, 1, 16), noise[:, 3:19, 1:17])


def test_bad_input_is_refused_with_the_value():
    model = _with_threshold(_pixel_reader(4))
    images = np.zeros((2, 6, 6, 1), "float32")
    with pytest.raises(ValueError, match=r"Received: steps=0$"):
        metrics.fractional_worst_case_accuracy(model, images, np.zeros(2, int), steps=0, crop_size=4)
    with pytest.raises(ValueError, match=r"Received: image size 5$"):
        metrics.fractional_worst_case_accuracy(model, images[:, :5, :5], np.zeros(2, int), crop_size=4)
    with pytest.raises(ValueError, match=r"Received: max_shift=-1$"):
        metrics.subpixel_consistency(model, images, crop_size=4, max_shift=-1)
    with pytest.raises(ValueError, match=r"Received: shift=\(0.5, 0\)$"):
        metrics.half_pixel_shift(images, (0.5, 0))
    with pytest.raises(ValueError, match=r"Received: shape=\(6, 6, 1\)$"):
        metrics.half_pixel_shift(images[0])
    with pytest.raises(ValueError, match=r"Received: top=-0.5, left=0, crop_size=4$"):
        metrics.bilinear_crop(images, -0.5, 0, 4)


def test_lowpass_methods_put_a_stride_1_blur_right_before_the_phase_choice():
    x = keras.Input((16, 16, 4))
    conv = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="down")
    for name, expected in [
        ("blur-aps", ["Conv2D", "BlurPool2D", "AdaptivePolyphasePool2D"]),
        ("group-aps-lp", ["BlurPool2D", "PolyphaseDownsample"]),
        ("conv3d-aps-lp", ["BlurPool2D", "PolyphaseDownsample"]),
    ]:
        site = methods.get(name).strided_conv(conv, padding="circular", filt_size=3)
        site(x)
        layers = [layer for layer in site.layers if layer.__class__.__name__ != "SpatialPadding2D"]
        assert [layer.__class__.__name__ for layer in layers] == expected
        blur = layers[-2]
        assert (blur.stride, blur.filt_size, blur.padding, blur.name) == (1, 3, "circular", "down_lowpass")


def test_blur_aps_with_a_blur_of_size_1_is_aps():
    """The low-pass of size 1 is the identity: with the same conv weights, `aps` exactly; size 3 is not."""
    x = keras.Input((16, 16, 8))
    conv = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="down")

    def site_model(name, filt_size):
        y, phase = methods.get(name).strided_conv(conv, padding="circular", filt_size=filt_size)(x)
        return keras.Model(x, [y, phase])

    aps = site_model("aps", 4)
    z = np.random.default_rng(1).normal(size=(4, 16, 16, 8)).astype("float32")
    y_aps, phase_aps = (np.asarray(t) for t in aps(z))
    for filt_size, same in ((1, True), (3, False)):
        lowpass = site_model("blur-aps", filt_size)
        lowpass.set_weights(aps.get_weights())
        y, phase = (np.asarray(t) for t in lowpass(z))
        assert np.array_equal(y, y_aps) == same and (np.array_equal(phase, phase_aps) or not same)


def _shifts(seed):
    """Random circular shifts: odd and even on each axis."""
    rng = np.random.default_rng(seed)
    odd, even = 2 * rng.integers(-16, 16, size=(2, 2)) + np.array([[1], [0]])
    return [tuple(int(s) for s in odd), tuple(int(s) for s in even), (int(odd[0]), int(even[1]))]


@pytest.mark.parametrize("method", _one_default("group-aps-lp"))
def test_lowpass_resnet18_is_exactly_invariant_to_integer_circular_shifts(method):
    model = perturb(ks.resnet18(method, num_classes=5, input_shape=(32, 32, 3), width=0.125, padding="circular"),
                    seed=3)
    x = np.random.default_rng(2).normal(size=(2, 32, 32, 3)).astype("float32")
    batch = np.concatenate([x] + [np.roll(x, s, axis=(1, 2)) for s in _shifts(LOWPASS.index(method))])
    logits = np.asarray(model(batch)).reshape(4, 2, 5)  # (shift, image, class)
    scale = np.abs(logits).max()
    np.testing.assert_allclose(logits, np.broadcast_to(logits[0], logits.shape), atol=1e-5 * scale)
    assert np.abs(logits[0, 0] - logits[0, 1]).max() > 1e-3 * scale  # the two images differ


@pytest.mark.parametrize("method", _one_default("blur-aps"))
def test_converted_model_with_lowpass_is_exactly_invariant(method):
    from test_convert import _assert_invariant
    from test_convert import _residual_net

    converted, report = ks.convert(perturb(_residual_net()), method, padding="circular")
    assert report.circular_invariant is True and report.invariance_breaks == []
    assert any(layer.name.endswith("_lowpass") for layer in converted.layers)
    _assert_invariant(converted, 32)


def _export_matches_keras(method, fmt, tmp_path):
    from test_serving import assert_runtime_matches_keras

    model = perturb(ks.resnet18(method, num_classes=4, input_shape=(32, 32, 3), width=0.125, padding="circular"))
    if fmt != "saved_model":
        assert_runtime_matches_keras(model, fmt, tmp_path)
        return
    x = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype("float32")
    path = ks.export_saved_model(model, tmp_path / "sm", class_names=list("0123"))
    out = tf.saved_model.load(path).signatures["serve_float"](image=tf.constant(x))
    logits = np.asarray(model(x))
    np.testing.assert_allclose(out["logits"].numpy(), logits, atol=1e-4 * max(1.0, np.abs(logits).max()))


def test_a_converted_blur_aps_net_exports_to_a_saved_model_that_matches_keras(tmp_path):
    """The cheap export check: a two-site net, converted (the ResNets' exports are `slow`)."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    outputs = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x))
    model, report = ks.convert(keras.Model(inputs, outputs), "blur-aps", padding="circular")
    assert report.circular_invariant is True
    x = np.random.default_rng(0).normal(size=(3, 16, 16, 3)).astype("float32")
    path = ks.export_saved_model(model, tmp_path / "sm", class_names=list("0123"))
    out = tf.saved_model.load(path).signatures["serve_float"](image=tf.constant(x))
    np.testing.assert_allclose(out["logits"].numpy(), np.asarray(model(x)), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["saved_model", "litert", "onnx"])
@pytest.mark.parametrize("method", LOWPASS)
def test_every_lowpass_method_exports_and_matches_keras(method, fmt, tmp_path):
    _export_matches_keras(method, fmt, tmp_path)
