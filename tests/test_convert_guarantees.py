"""What `convert` guarantees (issue 18): the circular-invariance flag, SeparableConv2D sites,
graphs that change size under circular padding (NASNet), refusals before any fit, and the
convert matrix over keras.applications models.

References are independent of the conversion: the original model (`blur` with `filt_size=1`
computes it), `np.roll` for circular shifts, and a count of the weight fits that ran.
"""

import functools

import keras
import numpy as np
import pytest

import keras_shiftinv as ks
from keras_shiftinv.conversion.convert import ConversionError

ALIGNED = ("aps", "group-aps", "conv3d-aps")


def _rel(a, b):
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))


def _images(n, size, channels=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, size, size, channels)).astype("float32")


def _roll_difference(model, size):
    """Max relative logit change over odd and even circular shifts."""
    x = _images(2, size, seed=1)
    reference = model(x)
    shifts = [(5, -7), (2, 4), (-3, 6), (1, 1)]
    return max(_rel(reference, model(np.roll(x, s, axis=(1, 2)))) for s in shifts)


def _separable_net(size=32):
    """Strided SeparableConv2Ds ("same", and "valid" after a pad), with bias, activation and
    depth multiplier, in a residual block with a strided 1x1 shortcut."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.SeparableConv2D(
        8, 3, strides=2, padding="same", depth_multiplier=2, use_bias=True, activation="relu",
        bias_initializer="random_normal", name="sep_same")(inputs)
    y = keras.layers.ZeroPadding2D(((1, 1), (1, 1)))(x)
    y = keras.layers.SeparableConv2D(12, 3, strides=2, name="sep_valid")(y)
    y = keras.layers.SeparableConv2D(12, 3, padding="same", name="sep_flat")(y)
    shortcut = keras.layers.Conv2D(12, 1, strides=2, name="projection")(x)
    x = keras.layers.Add()([y, shortcut])
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(5)(x), name="separable")


def test_separable_conv_is_a_site_and_blur_of_size_1_reproduces_it():
    model = _separable_net()
    converted, report = ks.convert(model, "blur", filt_size=1)
    x = _images(2, 32)
    assert _rel(model(x), converted(x)) < 1e-5
    sites = {site.path: site for site in report.sites}
    # The depthwise part at stride 1, the pool, then the pointwise part at the output resolution.
    assert sites["sep_same"].replacement.endswith("DepthwiseConv2D, BlurPool2D, Conv2D")
    assert report.counts() == {"found": 3, "replaced": 3, "kept": 0, "refused": 0}
    original = model.get_layer("sep_same").get_weights()  # depthwise, pointwise, bias
    np.testing.assert_array_equal(converted.get_layer("sep_same").get_weights()[0], original[0])
    for a, b in zip(converted.get_layer("sep_same_pointwise").get_weights(), original[1:]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["stride", "blur", "group", "conv3d", "aps", "group-aps", "conv3d-aps"])
def test_separable_conv_converts_for_every_method(method):
    model = _separable_net()
    converted, report = ks.convert(model, method, padding="circular")
    expected = "kept" if method == "stride" else "replaced"
    assert [site.status for site in report.sites] == [expected] * 3
    if method in ("group", "group-aps"):
        # The depthwise part of a separable conv is per channel: the group module fits it exactly.
        assert report.sites[0].fit_error < 1e-6
    if method in ALIGNED:
        assert report.circular_invariant is True
        assert _roll_difference(converted, 32) < 1e-4


def test_group_module_at_a_separable_site_computes_the_original_conv():
    model = _separable_net()
    converted, _ = ks.convert(model, "group")
    first = keras.Model(model.input, model.get_layer("sep_same").output)
    new_first = keras.Model(converted.input, converted.get_layer("sep_same_pointwise").output)
    x = _images(2, 32)
    assert _rel(first(x), new_first(x)) < 1e-5


def _net_with(tail, size=32):
    """Three aligned-able sites, then `tail` (a function of the 8x8 map), then pooling."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = tail(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="down")(x)
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(5)(x), name="tail")


BREAKERS = {
    "shrinking_valid_conv": (
        lambda x: keras.layers.Conv2D(8, 3, padding="valid", name="shrink")(x),
        "shrink (Conv2D): a stride-1 'valid' 3x3 window shrinks the map (8x8 -> 6x6)",
    ),
    "crop": (
        lambda x: keras.layers.Cropping2D(((1, 0), (1, 0)), name="crop")(keras.layers.ZeroPadding2D(((0, 0), (1, 0)))(x)),
        "crop (Cropping2D): crops the map",
    ),
    "flatten_before_dense": (
        lambda x: keras.layers.Reshape((4, 4, 32))(keras.layers.Dense(512)(keras.layers.Flatten(name="flat")(x))),
        "flat (Flatten): reshapes a feature map",
    ),
    "valid_pool": (
        lambda x: keras.layers.AveragePooling2D(3, strides=1, name="valid_pool")(x),
        "valid_pool (AveragePooling2D): a stride-1 'valid' 3x3 window shrinks the map (8x8 -> 6x6)",
    ),
}


@pytest.mark.parametrize("case", sorted(BREAKERS))
@pytest.mark.parametrize("method", ALIGNED)
def test_circular_invariant_is_false_and_names_the_layer_where_invariance_breaks(case, method):
    tail, line = BREAKERS[case]
    converted, report = ks.convert(_net_with(tail), method, padding="circular")
    assert report.circular_invariant is False
    assert line in report.invariance_breaks, report.invariance_breaks
    assert "circular_invariant: False" in str(report) and line in str(report)
    assert "circular_invariant=False" in repr(report)
    assert _roll_difference(converted, 32) > 1e-3  # the roll test agrees


@pytest.mark.parametrize("method", ALIGNED)
def test_circular_invariant_is_true_where_the_roll_test_holds(method):
    # A circular pad cropped back is a roll (NASNet's adjust block): still invariant.
    def tail(x):
        x = keras.layers.Cropping2D(((1, 0), (1, 0)))(keras.layers.ZeroPadding2D(((0, 1), (0, 1)))(x))
        return keras.layers.Conv2D(8, 3, padding="same")(x)

    converted, report = ks.convert(_net_with(tail), method, padding="circular")
    assert report.circular_invariant is True and report.invariance_breaks == []
    assert _roll_difference(converted, 32) < 1e-4


def test_circular_invariant_is_none_where_it_does_not_apply():
    model = _net_with(lambda x: x)
    for method in ("stride", "blur", "group", "conv3d"):
        assert ks.convert(model, method, padding="circular")[1].circular_invariant is None
    assert ks.convert(model, "aps")[1].circular_invariant is None
    assert "circular_invariant" not in str(ks.convert(model, "aps")[1])


def _nasnet_like_cell(size=47):
    """NASNet's reduction cell in small, on an odd map: one pad read by two "valid" pools,
    a padded "valid" strided SeparableConv2D, and the adjust block's pad-and-crop branch."""
    inputs = keras.Input((size, size, 8))
    h3 = keras.layers.ZeroPadding2D(1, name="shared_pad")(inputs)
    left = keras.layers.MaxPooling2D(3, strides=2, name="left_pool")(h3)
    middle = keras.layers.AveragePooling2D(3, strides=2, name="middle_pool")(h3)
    right = keras.layers.ZeroPadding2D(2)(keras.layers.Activation("relu")(inputs))
    right = keras.layers.SeparableConv2D(8, 5, strides=2, name="right_sep")(right)
    shifted = keras.layers.Cropping2D(((1, 0), (1, 0)))(keras.layers.ZeroPadding2D(((0, 1), (0, 1)))(inputs))
    shifted = keras.layers.AveragePooling2D(1, strides=2, name="adjust_pool")(shifted)
    x = keras.layers.Add()([left, right])
    x = keras.layers.Add()([x, keras.layers.AveragePooling2D(3, strides=1, padding="same")(middle)])
    x = keras.layers.Concatenate()([x, shifted])
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, padding="same")(x))
    return keras.Model(inputs, keras.layers.Dense(4)(x), name="nasnet_like")


@pytest.mark.parametrize("method", ["stride", "blur", "group", "conv3d", "aps", "group-aps", "conv3d-aps"])
def test_nasnet_like_cell_converts_with_circular_padding(method):
    """Before: `Inputs have incompatible shapes (25, 25, 8) and (24, 24, 8)` from the merge."""
    model = _nasnet_like_cell()
    converted, report = ks.convert(model, method, padding="circular")
    assert report.counts()["refused"] == 0
    if method in ALIGNED:
        # 47 is odd: the first sites see an odd map, which the flag must say.
        assert report.circular_invariant is False
        assert any("odd map" in line for line in report.invariance_breaks), report.invariance_breaks
    even, even_report = ks.convert(_nasnet_like_cell(48), method, padding="circular")
    if method in ALIGNED:
        assert even_report.circular_invariant is True, even_report.invariance_breaks
        x = _images(2, 48, channels=8, seed=1)
        reference = even(x)
        for shift in [(1, 3), (2, -5), (7, 0)]:
            assert _rel(reference, even(np.roll(x, shift, axis=(1, 2)))) < 1e-4, shift


def test_nasnet_like_cell_blur_of_size_1_is_exact():
    model = _nasnet_like_cell()
    converted, report = ks.convert(model, "blur", filt_size=1)
    x = _images(2, 47, channels=8)
    assert _rel(model(x), converted(x)) < 1e-5
    assert report.counts() == {"found": 4, "replaced": 4, "kept": 0, "refused": 0}


def test_a_keras_error_in_the_new_graph_is_one_line_naming_the_layer():
    # A "valid" strided conv on an odd map gives 4x4; made circular it gives 5x5, which the
    # fixed Reshape cannot take.
    inputs = keras.Input((9, 9, 3))
    x = keras.layers.Conv2D(2, 3, strides=2, name="down")(inputs)
    x = keras.layers.Reshape((32,), name="fixed_reshape")(x)
    model = keras.Model(inputs, x, name="fixed")
    for method in ("blur", "aps", "group"):
        with pytest.raises(ValueError) as info:
            ks.convert(model, method, padding="circular")
        message = str(info.value)
        assert "\n" not in message, message
        assert message.startswith("convert() could not rebuild 'fixed_reshape' (Reshape)"), message
        assert message.endswith(f"Received: model='fixed', method='{method}'"), message
        assert info.value.report.fits_run == 0
    # Inside a nested model: the path names it, the message the outer model.
    outer_inputs = keras.Input((9, 9, 3))
    outer = keras.Model(outer_inputs, keras.layers.Dense(2)(model(outer_inputs)), name="outer")
    with pytest.raises(ValueError) as info:
        ks.convert(outer, "aps", padding="circular")
    message = str(info.value)
    assert message.startswith("convert() could not rebuild 'fixed/fixed_reshape' (Reshape)"), message
    assert message.endswith("Received: model='outer', method='aps'") and "\n" not in message


def _late_refusal_net(refuse=True):
    inputs = keras.Input((32, 32, 16))
    x = inputs
    for i in range(3):
        x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name=f"down{i}")(x)
    if refuse:
        x = keras.layers.Conv2D(16, 3, strides=(4, 4), padding="same", name="late")(x)  # (1, 2) is a site now
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x), name="late_refusal")


@pytest.mark.parametrize("method", ["group", "conv3d-aps"])
def test_a_strict_refusal_comes_before_any_weight_fit(method):
    with pytest.raises(ValueError, match="'late': strides \\(4, 4\\)") as info:
        ks.convert(_late_refusal_net(), method)
    report = info.value.report
    assert report.fits_run == 0  # the counter of least-squares fits of modules
    assert [site.status for site in report.sites] == ["planned"] * 3 + ["refused"]
    assert all(site.fit_error is None for site in report.sites)
    # The same counter counts the fits where the conversion goes through.
    _, kept = ks.convert(_late_refusal_net(), method, strict=False)
    assert kept.fits_run == 3 and [s.status for s in kept.sites] == ["replaced"] * 3 + ["refused"]
    _, done = ks.convert(_late_refusal_net(refuse=False), method)
    assert done.fits_run == 3


# --- slow: the convert matrix over keras.applications --------------------------------------

MATRIX_MODELS = ["Xception", "InceptionV3", "NASNetMobile", "MobileNetV3Small", "EfficientNetV2B0", "ResNet50"]


@functools.lru_cache(maxsize=1)
def _application(name):
    return getattr(keras.applications, name)(weights=None, input_shape=(96, 96, 3), classifier_activation=None)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["stride", "blur", "group", "conv3d", "aps", "group-aps", "conv3d-aps"])
@pytest.mark.parametrize("name", MATRIX_MODELS)  # the slowest-varying: one model built at a time
def test_convert_matrix(name, method):
    """Each model converts or refuses in one line; the flag agrees with the roll test."""
    model = _application(name)
    try:
        converted, report = ks.convert(model, method, padding="circular")
    except ValueError as error:
        assert "\n" not in str(error) and str(error).startswith("convert()"), str(error)
        return
    difference = _roll_difference(converted, 96)
    if method in ALIGNED:
        assert report.circular_invariant is (not report.invariance_breaks)
        if report.circular_invariant:
            assert difference < 1e-4, difference
        else:
            assert difference > 1e-4, (difference, report.invariance_breaks)
    else:
        assert report.circular_invariant is None
