"""`convert` and the method rules on 1-D, 3-D and mixed-stride 2-D models (issue 24)."""

import keras
import numpy as np
import pytest

from keras_shiftinv import convert
from keras_shiftinv.conversion.convert import ConversionError
from keras_shiftinv.conversion.invariance import invariance_breaks


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _model_1d(channels=2):
    inputs = keras.Input((32, channels))
    x = keras.layers.Conv1D(6, 5, strides=2, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv1D(6, 3, padding="same", name="c2")(x)
    x = keras.layers.MaxPooling1D(2, name="mp")(x)
    x = keras.layers.AveragePooling1D(3, strides=2, padding="same", name="ap")(x)
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(x)))


def _model_3d():
    inputs = keras.Input((8, 8, 8, 1))
    x = keras.layers.Conv3D(4, 3, strides=2, padding="same", name="c1")(inputs)
    x = keras.layers.Conv3D(4, 3, strides=(1, 2, 2), padding="same", name="c2")(x)
    x = keras.layers.MaxPooling3D(2, name="mp")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling3D()(x))


def _model_mixed_2d():
    inputs = keras.Input((8, 16, 2))
    x = keras.layers.Conv2D(4, 3, strides=(1, 2), padding="same", name="c1")(inputs)
    x = keras.layers.MaxPooling2D((2, 1), name="mp")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


CASES = [
    (_model_1d, (3, 32, 2), (1,), "BlurPool1D"),
    (_model_3d, (2, 8, 8, 8, 1), (1, 2, 3), "BlurPool3D"),
    (_model_mixed_2d, (2, 8, 16, 2), (1, 2), "BlurPoolMixed2D"),
]
IDS = ["1d", "3d", "mixed-2d"]


@pytest.mark.parametrize("make, shape, axes, blur", CASES, ids=IDS)
def test_size_one_blur_computes_the_original_model(make, shape, axes, blur):
    model = make()
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    new_model, report = convert(model, "blur", filt_size=1)
    n = len(report.sites)
    assert report.counts() == {"found": n, "replaced": n, "kept": 0, "refused": 0}
    assert all(blur in site.replacement for site in report.sites)
    np.testing.assert_array_equal(_np(new_model(x)), _np(model(x)))


def test_group_fit_is_exact_where_the_module_can_hold_the_op():
    # From one input channel the group module (width lcm(1, F) = F) can hold any strided conv,
    # and a 2-tap average pool is one 1x1 module: the fitted model computes the original one.
    rng = np.random.default_rng(1)
    inputs = keras.Input((16, 1))
    x = keras.layers.Conv1D(4, 4, strides=2, padding="same", use_bias=True, name="c1")(inputs)
    y = keras.layers.AveragePooling1D(2, name="ap")(keras.layers.Conv1D(1, 1, name="to_one")(x))
    model_1d = keras.Model(inputs, y)
    volumes = keras.Input((8, 6, 6, 1))
    v = keras.layers.Conv3D(3, 3, strides=(2, 1, 2), padding="same", name="c1")(volumes)
    model_3d = keras.Model(volumes, keras.layers.AveragePooling3D((2, 2, 1), name="ap")(v))
    for model, shape in [(model_1d, (3, 16, 1)), (model_3d, (2, 8, 6, 6, 1))]:
        for w in model.weights:
            w.assign(rng.normal(size=w.shape).astype("float32"))
        x = rng.normal(size=shape).astype("float32")
        new_model, report = convert(model, "group")
        assert [site.fit_error < 1e-6 for site in report.sites] == [True, True]
        np.testing.assert_allclose(_np(new_model(x)), _np(model(x)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("make, shape, axes, blur", CASES, ids=IDS)
def test_aligned_conversions_are_exactly_invariant_and_the_strided_model_is_not(make, shape, axes, blur):
    rng = np.random.default_rng(2)
    model = make()
    x = rng.normal(size=shape).astype("float32")
    shifts = [tuple(int(s) | 1 for s in rng.integers(0, 8, size=len(axes))) for _ in range(3)]  # odd on every axis
    for method in ("aps", "group-aps"):
        new_model, report = convert(model, method, padding="circular")
        assert report.circular_invariant and report.invariance_breaks == []
        base = _np(new_model(x))
        for shift in shifts:
            np.testing.assert_allclose(_np(new_model(np.roll(x, shift, axis=axes))), base, rtol=1e-5, atol=1e-5)
    strided, _ = convert(model, "stride", padding="circular")
    base = _np(strided(x))
    gaps = [np.abs(_np(strided(np.roll(x, shift, axis=axes))) - base).max() for shift in shifts]
    assert min(gaps) > 1e-3


def test_conv3d_mixing_is_refused_outside_square_2d_sites():
    with pytest.raises(ConversionError, match="'c1': strides \\(2,\\): the 'conv3d' mixing needs") as info:
        convert(_model_1d(), "conv3d-aps")
    assert info.value.report.fits_run == 0
    _, report = convert(_model_mixed_2d(), "conv3d", strict=False)
    assert [site.status for site in report.sites] == ["refused", "refused"]


def test_invariance_check_names_a_zero_padded_1d_conv():
    inputs = keras.Input((16, 2))
    x = keras.layers.Conv1D(4, 3, padding="same", name="same_conv")(inputs)
    x = keras.layers.Conv1D(4, 3, strides=2, padding="same", name="down")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(x))
    aligned, _ = convert(model, "aps")  # the model's own zero padding kept
    assert any(line.startswith("same_conv (Conv1D)") for line in invariance_breaks(aligned))
    circular, report = convert(model, "aps", padding="circular")
    assert report.circular_invariant and invariance_breaks(circular) == []


def test_converted_3d_model_is_exactly_invariant_on_stacked_fashion_mnist_volumes():
    # Volumes of 4 consecutive Fashion-MNIST test images stacked as slices: (B, 4, 28, 28, 1).
    from keras_shiftinv.data.fashion_mnist import load_arrays

    images, _ = load_arrays("test")
    volumes = (images[:24].reshape(6, 4, 28, 28, 1) / 255.0).astype("float32")
    inputs = keras.Input((4, 28, 28, 1))
    x = keras.layers.Conv3D(4, 3, strides=2, padding="same", activation="relu", name="down1")(inputs)
    x = keras.layers.Conv3D(8, 3, strides=(1, 2, 2), padding="same", activation="relu", name="down2")(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling3D()(x)))
    converted, report = convert(model, "group-aps", padding="circular")
    assert report.circular_invariant
    batch = np.concatenate([volumes] + [np.roll(volumes, s, axis=(1, 2, 3)) for s in [(1, 3, 5), (2, 13, 27), (3, 1, 0)]])
    out = _np(converted.predict_on_batch(batch)).reshape(4, 6, 10)  # (shift, volume, class)
    for shifted in out[1:]:
        np.testing.assert_allclose(shifted, out[0], rtol=1e-5, atol=1e-5)
    strided = _np(model.predict_on_batch(batch)).reshape(4, 6, 10)
    assert np.abs(strided[1] - strided[0]).max() > 1e-3
