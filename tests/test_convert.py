"""`keras_shiftinv.convert`: exactness, invariance, weights, keras-hub / keras-cv, saving.

References are independent of the conversion code: the original Keras model
itself (a blur of size 1 is plain subsampling, so `blur` with `filt_size=1`
must give the original outputs; a `group` module fitted to a 1x1 strided
conv must too), `np.roll` for circular shifts, and, for fit errors, the
output error on white noise (which equals the kernel error for a linear map).
"""

import json

import keras
import numpy as np
import pytest

import keras_shiftinv as ks
from helpers import shiftinv

ALIGNED = ("aps", "group-aps", "conv3d-aps")


def _rel(a, b):
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))


def _images(n, size, seed=0):
    return np.random.default_rng(seed).normal(size=(n, size, size, 3)).astype("float32")


def _shifts(seed=0):
    """Random circular shifts, one odd and one even per axis at least."""
    rng = np.random.default_rng(seed)
    odd = 2 * rng.integers(-8, 8, size=2) + 1
    even = 2 * rng.integers(-8, 8, size=2)
    return [tuple(int(s) for s in odd), tuple(int(s) for s in even), (int(odd[0]), int(even[1]))]


def _assert_weights_kept(original, converted, replaced=()):
    """Every weighted layer not replaced is in `converted` under its name, with equal weights."""
    new_layers = {layer.name: layer for layer in converted.layers}
    checked = 0
    for layer in original.layers:
        if not layer.weights or layer.name in replaced or isinstance(layer, keras.Model):
            continue  # nested models are checked on their own
        twin = new_layers[layer.name]
        assert type(twin) is type(layer), layer.name
        for a, b in zip(layer.get_weights(), twin.get_weights()):
            np.testing.assert_array_equal(a, b, err_msg=layer.name)
        checked += 1
    assert checked > 0


def _assert_exact(model, size, **kwargs):
    converted, report = ks.convert(model, "blur", filt_size=1, **kwargs)
    x = _images(2, size)
    assert _rel(model(x), converted(x)) < 1e-5
    return converted, report


def _assert_invariant(model, size, tol=1e-4):
    x = _images(2, size, seed=1)
    reference = model(x)
    for shift in _shifts():
        assert _rel(reference, model(np.roll(x, shift, axis=(1, 2)))) < tol, shift


def _assert_not_invariant(model, size):
    x = _images(2, size, seed=1)
    reference = model(x)
    worst = max(_rel(reference, model(np.roll(x, s, axis=(1, 2)))) for s in _shifts())
    assert worst > 1e-3


def _residual_net(size=32):
    """A small functional net with every kind of site: a ZeroPadding2D'd 7x7 stem,
    an asymmetric pad before a depthwise conv, a "same" max-pool, a ResNet-V2-like
    block with a pool-size-1 max-pool shortcut, a V1-like block with a 1x1
    projection, an average pool and a nested Sequential."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.ZeroPadding2D(3)(inputs)
    x = keras.layers.Conv2D(8, 7, strides=2, name="stem")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool")(x)
    pre = keras.layers.ReLU(name="pre")(keras.layers.BatchNormalization()(x))
    y = keras.layers.ZeroPadding2D(((0, 1), (0, 1)))(pre)
    y = keras.layers.DepthwiseConv2D(3, strides=2, name="dw")(y)
    y = keras.layers.Conv2D(8, 1, name="dw_project")(y)
    shortcut = keras.layers.MaxPooling2D(1, strides=2, name="skip_pool")(x)
    x = keras.layers.Add()([shortcut, y])
    y = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=True, name="down")(x)
    y = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(y)
    shortcut = keras.layers.Conv2D(16, 1, strides=2, name="projection")(x)
    x = keras.layers.Add()([shortcut, y])
    inner = keras.Sequential(
        [keras.layers.Conv2D(16, 3, padding="same"), keras.layers.AveragePooling2D(2, name="avg")],
        name="inner",
    )
    x = inner(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(5)(x), name="small")


def test_blur_of_size_1_reproduces_every_kind_of_site():
    model = _residual_net()
    converted, report = _assert_exact(model, 32)
    assert report.counts() == {"found": 7, "replaced": 7, "kept": 0, "refused": 0}
    _assert_weights_kept(model, converted)
    _assert_weights_kept(model.get_layer("inner"), converted.get_layer("inner"))
    sites = {site.path: site for site in report.sites}
    assert set(sites) >= {"stem", "pool", "dw", "skip_pool", "down", "projection", "inner/avg"}
    assert "projection" in str(report) and "replaced" in str(report)


def test_group_fits_exactly_where_the_rank_allows():
    """1x1 strided convs, a 7x7 stem (kernel 5 on the half grid), depthwise convs and
    average pools are exact for `group`; a max-pool is not linear (reported as unfitted)."""
    model = _residual_net()
    converted, report = ks.convert(model, "group")
    errors = {site.path: site.fit_error for site in report.sites}
    for name in ("stem", "dw", "skip_pool", "projection", "inner/avg"):
        assert errors[name] < 1e-6, (name, errors[name])
    assert errors["pool"] is None and "not linear" in str(report)
    assert converted.get_layer("stem").kernel_size == 5
    # The stem alone: the fitted module computes the original strided conv.
    stem = keras.Model(model.input, model.get_layer("stem").output)
    new_stem = keras.Model(converted.input, converted.get_layer("stem").output)
    x = _images(2, 32)
    assert _rel(stem(x), new_stem(x)) < 1e-5


@pytest.mark.parametrize("mixing", ["group", "conv3d"])
def test_reported_fit_error_is_the_output_error_on_white_noise(mixing):
    inputs = keras.Input((64, 64, 16))
    outputs = keras.layers.Conv2D(32, 3, strides=2, padding="same", name="down")(inputs)
    model = keras.Model(inputs, outputs)
    converted, report = ks.convert(model, mixing)
    error = report.sites[0].fit_error
    assert 0.01 < error < 1.0  # a 3x3 stride-2 conv is not exactly a module
    x = np.random.default_rng(0).normal(size=(4, 64, 64, 16)).astype("float32")
    y, z = np.asarray(model(x)), np.asarray(converted(x))
    inner = (slice(None), slice(2, -2), slice(2, -2))
    measured = np.linalg.norm((y - z)[inner]) / np.linalg.norm(y[inner])
    assert abs(measured - error) < 0.05 * error + 0.01, (measured, error)


@pytest.mark.parametrize("method", ALIGNED)
def test_small_net_is_exactly_invariant_after_conversion(method):
    model = _residual_net()
    converted, report = ks.convert(model, method, padding="circular")
    phases = {site.path: site.phase for site in report.sites}
    assert phases["skip_pool"] == "reuses dw" and phases["projection"] == "reuses down"
    assert report.circular_invariant is True and report.invariance_breaks == []
    _assert_invariant(converted, 32)


def test_resnet50_blur_of_size_1_is_exact_and_keeps_weights():
    model = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classifier_activation=None)
    converted, report = _assert_exact(model, 32)
    assert report.counts()["replaced"] == 8
    _assert_weights_kept(model, converted)


def test_resnet50_group_aps_is_exactly_invariant():
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    converted, report = ks.convert(model, "group-aps", padding="circular")
    assert report.counts() == {"found": 8, "replaced": 8, "kept": 0, "refused": 0}
    fitted = [s.fit_error for s in report.sites if s.fit_error is not None]
    assert len(fitted) == 7 and max(fitted) < 1e-6  # 1x1 sites and the 7x7 stem fit exactly
    _assert_weights_kept(model, converted, replaced={s.path for s in report.sites})
    assert report.circular_invariant is True
    _assert_invariant(converted, 64)
    circular_copy, _ = ks.convert(model, "stride", padding="circular")
    _assert_not_invariant(circular_copy, 64)


def test_bad_input_is_one_line():
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    cases = [
        (TypeError, lambda: ks.convert(Subclassed(), "blur"), "Received: model=Subclassed"),
        (ValueError, lambda: ks.convert(_residual_net(), "median"), "Received: method='median'"),
        (ValueError, lambda: ks.convert(_residual_net(), "blur", padding="zeros"), "Received: padding='zeros'"),
    ]
    inputs = keras.Input((8, 8, 3))
    flat = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same")(inputs), name="flat")
    cases.append((ValueError, lambda: ks.convert(flat, "blur"), "Received: model='flat'"))
    for error, call, ending in cases:
        with pytest.raises(error) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and message.endswith(ending), message


def test_stride_4_is_refused_by_name_and_kept_when_not_strict():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 4, strides=4, name="patchify")(inputs)
    x = keras.layers.Conv2D(8, 2, strides=2, name="down")(x)
    model = keras.Model(inputs, x)
    with pytest.raises(ValueError, match="'patchify': strides \\(4, 4\\)"):
        ks.convert(model, "aps")
    converted, report = ks.convert(model, "blur", filt_size=1, strict=False)
    assert [s.status for s in report.sites] == ["refused", "replaced"]
    x = _images(1, 32)
    assert _rel(model(x), converted(x)) < 1e-5


def test_converted_model_reloads_in_a_fresh_process_and_exports(tmp_path, fresh_process):
    import tensorflow as tf

    model = _residual_net()
    converted, _ = ks.convert(model, "group-aps", padding="circular")
    x = _images(2, 32)
    path = str(tmp_path / "converted.keras")
    converted.save(path)
    np.save(tmp_path / "x.npy", x)
    reloaded = np.array(fresh_process.load([path], x=tmp_path / "x.npy")[path]["outputs"], "float32")
    np.testing.assert_allclose(reloaded, converted(x), rtol=1e-5, atol=1e-5)
    served = ks.export_saved_model(converted, str(tmp_path / "serving"), version=1)
    outputs = tf.saved_model.load(served).signatures["serve_float"](image=tf.constant(x))
    np.testing.assert_allclose(outputs["logits"], converted(x), rtol=1e-4, atol=1e-4)


def _hub_backbones():
    keras_hub = pytest.importorskip("keras_hub")
    common = dict(stackwise_num_filters=[64, 32, 64], stackwise_num_blocks=[1, 1, 1],
                  stackwise_num_strides=[1, 2, 2], image_shape=(64, 64, 3))
    return {
        "resnet_v1": keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[7], block_type="bottleneck_block",
            use_pre_activation=False, **common),
        "resnet_v2": keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[7], block_type="basic_block",
            use_pre_activation=True, **common),
        "resnet_vd": keras_hub.models.ResNetBackbone(
            input_conv_filters=[16, 16, 64], input_conv_kernel_sizes=[3, 3, 3],
            block_type="bottleneck_block_vd", use_pre_activation=False, **common),
        "densenet": keras_hub.models.DenseNetBackbone(stackwise_num_repeats=[2, 2, 2], image_shape=(64, 64, 3)),
    }


def test_keras_hub_backbones_convert_exactly_and_opaque_blocks_are_refused():
    for name, backbone in _hub_backbones().items():
        converted, report = _assert_exact(backbone, 64)
        assert report.counts()["refused"] == 0, name
        _assert_weights_kept(backbone, converted)
    import keras_hub

    efficientnet = keras_hub.models.EfficientNetBackbone(
        stackwise_width_coefficients=[1.0] * 2, stackwise_depth_coefficients=[1.0] * 2,
        stackwise_kernel_sizes=[3, 3], stackwise_num_repeats=[1, 1], stackwise_input_filters=[16, 16],
        stackwise_output_filters=[16, 24], stackwise_expansion_ratios=[1, 4],
        stackwise_squeeze_and_excite_ratios=[0, 0], stackwise_strides=[1, 2],
        stackwise_block_types=["fused", "fused"], input_shape=(64, 64, 3), num_features=64)
    with pytest.raises(ValueError, match="'block2a_': a subclassed layer \\(FusedMBConvBlock\\)"):
        ks.convert(efficientnet, "group")


def test_keras_cv_resnet_v2_backbone_converts_exactly():
    keras_cv = pytest.importorskip("keras_cv")
    backbone = keras_cv.models.ResNetV2Backbone(
        stackwise_filters=[16, 32, 64], stackwise_blocks=[2, 2, 2], stackwise_strides=[1, 2, 2],
        include_rescaling=False, input_shape=(64, 64, 3))
    converted, report = _assert_exact(backbone, 64)
    assert report.counts() == {"found": 6, "replaced": 6, "kept": 0, "refused": 0}
    _assert_weights_kept(backbone, converted)
    aligned, report = ks.convert(backbone, "aps", padding="circular")
    pooled = keras.Model(aligned.input, keras.layers.GlobalAveragePooling2D()(aligned.output))
    _assert_invariant(pooled, 64)


# --- slow: the other keras.applications models ----------------------------------------------

APPLICATIONS = ["ResNet50V2", "MobileNetV2", "DenseNet121", "EfficientNetB0", "VGG16", "ConvNeXtTiny"]


@pytest.mark.slow
@pytest.mark.parametrize("name", APPLICATIONS)
def test_applications_blur_of_size_1_is_exact(name):
    model = getattr(keras.applications, name)(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    strict = name != "ConvNeXtTiny"  # its 4x4 stride-4 stem is refused
    converted, report = _assert_exact(model, 64, strict=strict)
    refused = [s.path for s in report.refused]
    assert refused == ([] if strict else ["convnext_tiny_stem/convnext_tiny_stem_conv"])
    _assert_weights_kept(model, converted)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ResNet50", "ResNet50V2", "DenseNet121"])
@pytest.mark.parametrize("method", ALIGNED)
def test_applications_aligned_conversions_are_exactly_invariant(name, method):
    model = getattr(keras.applications, name)(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    _assert_not_invariant(model, 64)
    converted, report = ks.convert(model, method, padding="circular")
    assert report.circular_invariant is True, report.invariance_breaks
    _assert_invariant(converted, 64)


@pytest.mark.slow
def test_keras_hub_backbones_aligned_are_exactly_invariant():
    for name, backbone in _hub_backbones().items():
        converted, _ = ks.convert(backbone, "group-aps", padding="circular")
        pooled = keras.Model(converted.input, keras.layers.GlobalAveragePooling2D()(converted.output))
        _assert_invariant(pooled, 64)


@pytest.mark.slow
def test_finetune_command_end_to_end(tmp_path):
    pytest.importorskip("keras_shiftinv.data.fashion_mnist")
    out = tmp_path / "finetune"
    done = shiftinv("finetune", "--out", out, "--train-examples", "256", "--eval-examples", "100",
                    "--base-epochs", "1", "--epochs", "1", "--methods", "aps", timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    row = results["methods"]["aps"]
    # aps with circular padding is exactly invariant to circular shifts, from conversion on.
    assert row["converted"]["circular_consistency"] == 100.0
    assert row["finetuned"]["circular_consistency"] == 100.0
    # Worst case: every crop offset right, so never above the center-crop top-1 of the same images.
    assert all(row[s]["worst_case_accuracy"] <= row[s]["top1"] for s in ("before", "converted", "finetuned"))
    assert row["before"] == results["methods"]["aps"]["before"]
    assert (out / "aps" / "finetuned.keras").exists() and "aps" in (out / "results.md").read_text()
    # A rerun resumes: the finished method's record is reused, nothing retrained or rewritten.
    from keras_shiftinv.cli import main

    record = out / "aps" / "record.json"
    assert json.loads(record.read_text())["row"] == row
    stamps = {p: p.stat().st_mtime_ns for p in (out / "aps").rglob("*") if p.is_file()}
    args = ["finetune", "--out", str(out), "--train-examples", "256", "--eval-examples", "100",
            "--base-epochs", "1", "--epochs", "1", "--methods", "aps"]
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "aps").rglob("*") if p.is_file()} == stamps
    assert json.loads((out / "results.json").read_text())["methods"]["aps"] == row
    # Other settings: refused in one line naming the flag, nothing written.
    assert main([*args, "--finetune-learning-rate", "0.01"]) == 2
    assert {p: p.stat().st_mtime_ns for p in (out / "aps").rglob("*") if p.is_file()} == stamps
