import keras
import numpy as np
import pytest

import reference
from keras_shiftinv import methods
from keras_shiftinv.layers import AdaptivePolyphasePool2D
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import PolyphaseDownsample


def rand(*shape):
    return np.random.normal(size=shape).astype("float32")


def run_site(site, x, phase_index=None):
    """Builds `site` on an Input and runs it: (y, phase) as numpy (phase None if none)."""
    inputs = keras.Input(x.shape[1:])
    given = None if phase_index is None else np.asarray(phase_index, "int32")
    y, phase = site(inputs, phase_index=given)
    if not isinstance(phase, keras.KerasTensor):
        return np.asarray(keras.Model(inputs, y)(x)), phase
    y, phase = keras.Model(inputs, [y, phase])(x)
    return np.asarray(y), np.asarray(phase)


def test_methods_are_the_contract_list_and_get_checks_the_name():
    assert methods.METHODS == ("stride", "blur", "group", "conv3d", "aps", "group-aps", "conv3d-aps", "blur-aps",
                               "group-aps-lp", "conv3d-aps-lp")
    rule = methods.get("conv3d-aps")
    assert (rule.mixing, rule.align, rule.pool, rule.chooses_phase) == ("conv3d", "max_norm", None, True)
    assert methods.get(rule) is rule
    assert not methods.get("group").chooses_phase and methods.get("aps").chooses_phase
    with pytest.raises(ValueError, match=r"Received: method='foo'$"):
        methods.get("foo")


def test_the_old_keyword_downsample_still_builds_and_converts_the_same():
    """`method` was `downsample` before: the old keyword gives the same model, with a DeprecationWarning."""
    import keras_shiftinv as ks

    assert ks.METHODS == ks.DOWNSAMPLE_METHODS == methods.METHODS
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    for build in (ks.resnet18, ks.unet):
        new = build(method="blur", input_shape=(32, 32, 3), width=0.125)
        with pytest.warns(DeprecationWarning, match="downsample"):
            old = build(downsample="blur", input_shape=(32, 32, 3), width=0.125)
        assert old.name == new.name and [w.shape for w in old.weights] == [w.shape for w in new.weights]
        old.set_weights(new.get_weights())
        np.testing.assert_array_equal(old(x), new(x))
        with pytest.raises(TypeError, match="Received: method='aps', downsample='blur'"):
            build(method="aps", downsample="blur")
    base = ks.resnet18("stride", num_classes=3, input_shape=(32, 32, 3), width=0.125)
    converted, report = ks.convert(base, method="aps")
    with pytest.warns(DeprecationWarning, match="downsample"):
        converted_old, report_old = ks.convert(base, downsample="aps")
    assert report.method == report_old.method == "aps" and str(report) == str(report_old)
    np.testing.assert_array_equal(converted(x), converted_old(x))
    with pytest.raises(TypeError, match="Received: method=None"):
        ks.convert(base)


# --- A blur of size 1 is plain subsampling: each rule then equals the original op.


def _exact_cases():
    conv = keras.layers.Conv2D
    return [
        ("strided_conv", conv(5, 3, strides=2, padding="same", use_bias=True), None),
        ("strided_conv", conv(5, 7, strides=2, padding="same"), None),
        ("strided_conv", conv(5, 4, strides=2, padding="valid"), ((2, 1), (1, 2))),
        ("strided_conv", keras.layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2), None),
        ("strided_pool", keras.layers.MaxPooling2D(3, strides=2, padding="same"), None),
        ("strided_pool", keras.layers.AveragePooling2D(3, strides=2, padding="same"), None),
        ("strided_pool", keras.layers.MaxPooling2D(3, strides=2), ((1, 1), (1, 1))),
        ("strided_pool", keras.layers.MaxPooling2D(1, strides=2), None),
        ("shortcut", conv(6, 1, strides=2, padding="same"), None),
    ]


@pytest.mark.parametrize("size", [(8, 10), (7, 9)])
@pytest.mark.parametrize("method", ["stride", "blur"])
def test_size_one_blur_rule_equals_the_original_strided_op(size, method):
    x = rand(2, *size, 3)
    for kind, op, pads in _exact_cases():
        padded = x if pads is None else reference.pad(x, *pads[0], *pads[1], "zeros")
        expected = np.asarray(op(padded))  # the original op (Keras's own stride 2)
        site = getattr(methods.get(method), kind)(op, pads=pads, filt_size=1, name="new")
        inputs = keras.Input(x.shape[1:])
        model = keras.Model(inputs, site(inputs)[0])
        if op.weights:
            model.get_layer("new").set_weights(op.get_weights())
        out = np.asarray(model(x))
        assert out.shape == expected.shape, (kind, op.name)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5, err_msg=op.name)


# --- Each rule against numpy.


def test_blur_rule_runs_after_conv_before_the_blur():
    x = rand(2, 8, 8, 3)
    conv = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False, name="down")
    site = methods.get("blur").strided_conv(
        conv, padding="reflect", after_conv=keras.layers.ReLU(name="relu"), filt_size=3
    )
    y, phase = run_site(site, x)
    assert phase is None
    assert [type(layer).__name__ for layer in site.layers] == ["SpatialPadding2D", "Conv2D", "BlurPool2D"]
    assert [layer.name for layer in site.layers] == ["down_pad", "down", "down_blur"]
    kernel = site.layers[1].get_weights()[0]
    assert site.layers[1].strides == (1, 1)
    # TF's "same" at stride 2 on an even side pads (0, 1); the stride-1 conv keeps the top pad 0.
    conv1 = reference.conv2d_valid(reference.pad(x.astype("float64"), 0, 2, 0, 2, "reflect"), kernel)
    expected = reference.blur_pool(np.maximum(conv1, 0.0), 3, 2, "reflect")
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("given", [None, [3, 1]])
def test_aps_rule_subsamples_the_stride_one_conv_on_its_loudest_or_given_phase(given):
    x = rand(2, 8, 6, 3)
    conv = keras.layers.Conv2D(4, 3, strides=2, use_bias=False, name="down")
    site = methods.get("aps").strided_conv(conv, padding="circular", pads=1)
    y, phase = run_site(site, x, given)
    kernel = site.layers[1].get_weights()[0]
    conv1 = reference.conv2d_valid(reference.pad(x.astype("float64"), 1, 1, 1, 1, "circular"), kernel)
    phases = reference.max_norm_phases(conv1) if given is None else np.array(given)
    np.testing.assert_array_equal(phase, phases)
    expected = np.stack([c[p // 2 :: 2, p % 2 :: 2] for c, p in zip(conv1, phases)])
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_module_rules_per_site_kind():
    conv = keras.layers.Conv2D(6, 7, strides=2, padding="same", use_bias=True, name="stem")
    shortcut = keras.layers.Conv2D(6, 1, strides=2, use_bias=False, name="proj")
    pool = keras.layers.MaxPooling2D(3, strides=2, name="pool")
    rule = methods.get("conv3d")
    for site, kernel_size, use_bias, filters in [
        (rule.strided_conv(conv, padding="reflect"), 3, True, 6),
        (rule.shortcut(shortcut, padding="reflect"), 1, False, 6),
        (rule.strided_pool(pool, padding="reflect"), 1, False, 3),
    ]:
        x = rand(2, 9, 8, 3)
        y, phase = run_site(site, x)
        (module,) = site.layers
        assert isinstance(module, PolyphaseDownsample) and phase is None
        assert (module.mixing, module.align, module.kernel_size) == ("conv3d", None, kernel_size)
        assert (module.use_bias, module.filters, module.padding) == (use_bias, filters, "reflect")
        expected = reference.polyphase_downsample(
            x, [np.asarray(w, "float64") for w in module.get_weights()], "conv3d", "reflect", use_bias=use_bias
        )
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_aligned_module_shortcut_reuses_the_given_phase():
    x = rand(3, 8, 8, 4)
    conv = keras.layers.Conv2D(5, 1, strides=2, name="proj")
    site = methods.get("group-aps").shortcut(conv, padding="circular")
    given = [2, 0, 3]
    y, phase = run_site(site, x, given)
    (module,) = site.layers
    assert module.align == "max_norm"
    np.testing.assert_array_equal(phase, given)
    weights = [np.asarray(w, "float64") for w in module.get_weights()]
    expected = reference.polyphase_downsample(x, weights, "group", "circular", use_bias=True, phases=given)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_pool_site_adds_after_module_only_behind_a_module():
    pool = keras.layers.MaxPooling2D(3, strides=2, name="pool")
    calls = []

    def after(y):
        calls.append(y)
        return keras.layers.ReLU()(y)

    for method, expected_types, expected_calls in [
        ("blur", ["SpatialPadding2D", "MaxPooling2D", "BlurPool2D"], 0),
        ("aps", ["SpatialPadding2D", "MaxPooling2D", "AdaptivePolyphasePool2D"], 0),
        ("group", ["PolyphaseDownsample"], 1),
    ]:
        calls.clear()
        site = methods.get(method).strided_pool(pool, pads=1, after_module=after)
        site(keras.Input((8, 8, 3)))
        assert [type(layer).__name__ for layer in site.layers] == expected_types
        assert site.layers[1 if method != "group" else 0].name == "pool"
        assert len(calls) == expected_calls


def test_aps_pool_of_size_one_is_just_the_aps():
    site = methods.get("aps").strided_pool(keras.layers.MaxPooling2D(1, strides=2, name="p"))
    x = rand(2, 6, 6, 3)
    y, phase = run_site(site, x)
    assert [type(layer) for layer in site.layers] == [AdaptivePolyphasePool2D]
    np.testing.assert_array_equal(phase, reference.max_norm_phases(x))


def test_serialized_layer_gives_the_same_rule():
    conv = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c")
    from_layer = methods.get("blur").strided_conv(conv)
    from_dict = methods.get("blur").strided_conv(keras.layers.serialize(conv))
    assert from_layer.description[1] == from_dict.description[1]
    from_dict(keras.Input((8, 8, 3)))
    assert [type(layer) for layer in from_dict.layers][-1] is BlurPool2D


@pytest.mark.parametrize(
    "kind, op, kwargs, error, message",
    [
        ("strided_conv", keras.layers.Conv2D(4, 3, strides=4), {}, ValueError, r"Received: strides=\(4, 4\)"),
        ("strided_conv", keras.layers.Conv2D(4, 3, strides=1), {}, ValueError, r"Received: strides=\(1, 1\)"),
        ("strided_conv", keras.layers.Conv2D(4, 3, strides=2), {"padding": "same"}, ValueError, "Received: padding='same'"),
        (
            "strided_conv",
            keras.layers.Conv2D(4, 3, strides=2, padding="same"),
            {"pads": 1},
            ValueError,
            "Received: padding='same'",
        ),
        ("strided_conv", keras.layers.Dense(3), {}, TypeError, "Received: layer=<Dense"),
        ("strided_pool", keras.layers.Conv2D(4, 3, strides=2), {}, TypeError, "Received: layer=<Conv2D"),
        ("shortcut", keras.layers.Conv2D(4, 3, strides=2), {}, ValueError, r"Received: kernel_size=\(3, 3\)"),
    ],
)
def test_rules_refuse_what_they_cannot_replace(kind, op, kwargs, error, message):
    with pytest.raises(error, match=message):
        getattr(methods.get("group-aps"), kind)(op, **kwargs)


def test_a_site_is_built_once():
    site = methods.get("stride").strided_conv(keras.layers.Conv2D(4, 3, strides=2, name="c"))
    site(keras.Input((8, 8, 3)))
    with pytest.raises(ValueError, match=r"Received: layers=\['c'\]"):
        site(keras.Input((8, 8, 3)))
