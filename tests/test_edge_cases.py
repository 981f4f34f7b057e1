"""Issue 18 (layers and models): precision, input dtypes, NaN, the group module's width,
channels_first and any-size U-Nets. Each test names the finding it covers."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import reference
from keras_shiftinv import convert
from keras_shiftinv import methods
from keras_shiftinv.layers import AdaptivePolyphasePool2D
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import CropLike2D
from keras_shiftinv.layers import PadToMultiple2D
from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import PolyphaseUpsample2D
from keras_shiftinv.layers import SpatialPadding2D
from keras_shiftinv.models import resnet18
from keras_shiftinv.models import unet

ALIGNED = ["aps", "group-aps", "conv3d-aps"]
POLICIES = ["mixed_float16", "mixed_bfloat16"]
# Logit tolerance under mixed precision, relative to the largest |logit| (about 2.5 bfloat16
# rounding steps; measured: 0 on CPU at 64x64, width 0.25): with consistent
# phases, what is left is the 16-bit rounding of the (order-dependent) global average pool
# (ResNet) or nothing (U-Net, whose maps are exactly equivariant).
LOW_PRECISION_RTOL = 1e-2
NP_MODES = {"zeros": "constant", "reflect": "reflect", "circular": "wrap"}


# --- phase-consistency probe ---------------------------------------------------


def phase_probe(model):
    """A model giving every phase-choosing layer's `(B,)` index (outermost first) and the output.

    Each choosing layer halves the map, and the functional model lists them in graph order.
    """
    choosers = [
        layer for layer in model.layers
        if isinstance(layer, (AdaptivePolyphasePool2D, PolyphaseDownsample)) and layer.return_index
    ]
    return keras.Model(model.input, [layer.output[1] for layer in choosers] + [model.output])


def consistent_phases(phases, shifted_phases, shift, size):
    """Per image: whether each layer chose the phase a circular `shift` of the input predicts.

    A layer whose input (of size `(h, w)`) is rolled by `t` must choose `(p + t) mod 2` per
    axis if it chose `p` unshifted; its output is then rolled by `(t + p - p') / 2` (mod the
    halved size), the next layer's `t`.
    """
    batch = phases[0].shape[0]
    ok = np.ones(batch, bool)
    (ty, tx), (h, w) = (np.full(batch, shift[0]), np.full(batch, shift[1])), size
    for p, q in zip(phases, shifted_phases):
        py, px, qy, qx = p // 2, p % 2, q // 2, q % 2
        ok &= (qy == (py + ty) % 2) & (qx == (px + tx) % 2)
        h, w = (h + 1) // 2, (w + 1) // 2
        ty, tx = ((ty + py - qy) // 2) % h, ((tx + px - qx) // 2) % w
    return ok


def roll_trials(model, x, shifts, equivariant=False):
    """(all phases consistent per trial, max |output diff|, largest |output|, argmax agreement)."""
    probe = phase_probe(model)
    base = [np.asarray(t) for t in probe(x, training=False)]
    oks, diffs, agree = [], [], []
    for shift in shifts:
        out = [np.asarray(t) for t in probe(np.roll(x, shift, axis=(1, 2)), training=False)]
        oks.append(consistent_phases(base[:-1], out[:-1], shift, x.shape[1:3]))
        expected = np.asarray(base[-1], "float64")
        if equivariant:
            expected = np.roll(expected, shift, axis=(1, 2))
        got = np.asarray(out[-1], "float64")
        diffs.append(np.abs(got - expected).max())
        agree.append(np.argmax(got, -1) == np.argmax(expected, -1))
    return np.concatenate(oks), max(diffs), np.abs(base[-1]).max(), np.concatenate(agree), base[-1].dtype


# --- finding 1: mixed precision ------------------------------------------------


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("method", ALIGNED)
def test_resnet18_mixed_precision_keeps_phases_logits_and_argmax(method, policy):
    keras.mixed_precision.set_global_policy(policy)
    model = resnet18(method, num_classes=10, input_shape=(64, 64, 3), width=0.125, padding="circular")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 64, 64, 3)).astype("float32")
    shifts = [tuple(int(v) for v in rng.integers(0, 64, 2)) for _ in range(4)]
    ok, diff, scale, agree, dtype = roll_trials(model, x, shifts)
    assert dtype == np.float32 and model.output.dtype == "float32"
    assert ok.all(), f"{ok.sum()}/{ok.size} trials shift-consistent"
    assert diff <= LOW_PRECISION_RTOL * scale, (diff, scale)
    assert agree.all()


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("method", ALIGNED)
def test_unet_mixed_precision_stays_equivariant(method, policy):
    keras.mixed_precision.set_global_policy(policy)
    model = unet(method, num_classes=3, input_shape=(32, 32, 1), depth=3, width=0.125, padding="circular")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 32, 32, 1)).astype("float32")
    shifts = [tuple(int(v) for v in rng.integers(0, 32, 2)) for _ in range(4)]
    ok, diff, scale, agree, dtype = roll_trials(model, x, shifts, equivariant=True)
    assert dtype == np.float32 and model.output.dtype == "float32"
    assert ok.all(), f"{ok.sum()}/{ok.size} trials shift-consistent"
    assert diff <= LOW_PRECISION_RTOL * scale, (diff, scale)
    assert agree.all()


@pytest.mark.parametrize("policy", POLICIES)
def test_aps_layer_on_relu_maps_picks_the_shifted_phase_under_mixed_precision(policy):
    # The measurement: one APS over ReLU-like 56x56x64 maps and a one-pixel shift. At
    # this scale (std 2) a float16 sum of squares overflows to inf and bfloat16 sums round to ties.
    layer = AdaptivePolyphasePool2D(return_index=True, dtype=policy)
    rng = np.random.default_rng(2)
    x = np.maximum(rng.normal(scale=2.0, size=(40, 56, 56, 64)), 0).astype("float32")
    _, index = layer(x)
    _, shifted = layer(np.roll(x, 1, axis=2))
    index, shifted = np.asarray(index), np.asarray(shifted)
    np.testing.assert_array_equal(shifted, 2 * (index // 2) + (index % 2 + 1) % 2)


def test_exact_norm_ties_go_to_the_larger_peak_for_every_shift():
    # Phases (0, 0) and (1, 1) have the same L2 norm (3^2 + 4^2 = 5^2); (1, 1) has the larger
    # peak. The old rule (lowest index) picked phase 0 of every shifted copy: not shift-consistent.
    x = np.zeros((1, 4, 4, 1), "float32")
    x[0, 0, 0, 0], x[0, 0, 2, 0], x[0, 1, 1, 0] = 3.0, 4.0, 5.0
    layer = AdaptivePolyphasePool2D(return_index=True)
    for dy in (0, 1):
        for dx in (0, 1):
            shifted = np.roll(x, (dy, dx), axis=(1, 2))
            _, index = layer(shifted)
            expected = 2 * ((1 + dy) % 2) + (1 + dx) % 2
            assert int(np.asarray(index)[0]) == expected == reference.max_norm_phases(shifted)[0]
            _, module_index = PolyphaseDownsample(2, align="max_norm", return_index=True)(shifted)
            assert int(np.asarray(module_index)[0]) == expected


@pytest.mark.slow
def test_cli_mixed_precision_training_writes_an_invariant_model(tmp_path):
    d = tmp_path / "run"
    args = ["train", "--model", "group-aps", "--padding", "circular", "--mixed-precision", "--epochs", "1",
            "--dataset", "fashion_mnist", "--width", "0.125", "--max-train-examples", "64",
            "--max-eval-examples", "32", "--batch-size", "32", "--verbose", "0", "--model-dir", str(d)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-m", "keras_shiftinv", *args], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    model = keras.saving.load_model(d / "final.keras")
    assert any(layer.dtype_policy.name == "mixed_float16" for layer in model.layers)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, *model.input.shape[1:])).astype("float32")
    shifts = [tuple(int(v) for v in rng.integers(0, x.shape[1], 2)) for _ in range(4)]
    ok, diff, scale, agree, dtype = roll_trials(model, x, shifts)
    assert dtype == np.float32
    assert ok.all() and agree.all() and diff <= LOW_PRECISION_RTOL * scale, (ok, diff, scale)


# --- finding 2: integer and bool inputs ----------------------------------------


LAYERS = {
    "group": lambda: PolyphaseDownsample(4, mixing="group"),
    "conv3d-aligned": lambda: PolyphaseDownsample(4, mixing="conv3d", align="max_norm"),
    "aps": lambda: AdaptivePolyphasePool2D(),
    "blur": lambda: BlurPool2D(3, padding="circular"),
    "upsample-place": lambda: PolyphaseUpsample2D(mode="place"),
    "upsample-learned": lambda: PolyphaseUpsample2D(3),
    "pad": lambda: SpatialPadding2D(1, mode="reflect"),
    "pad-multiple": lambda: PadToMultiple2D(4),
}


@pytest.mark.parametrize("dtype", ["int32", "uint8", "bool"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_integer_and_bool_inputs_give_the_float32_result(name, dtype):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, size=(2, 6, 6, 3)).astype(dtype)
    layer = LAYERS[name]()
    out = layer(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    np.testing.assert_array_equal(np.asarray(out), np.asarray(layer(x.astype("float32"))))


def test_uint8_images_pick_the_float32_phase():
    # Squares of uint8 overflowed: another phase than float32's in 149 of 200 images.
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, size=(200, 8, 8, 3)).astype("uint8")
    layer = AdaptivePolyphasePool2D(return_index=True)
    np.testing.assert_array_equal(np.asarray(layer(x)[1]), reference.max_norm_phases(x))


@pytest.mark.parametrize("dtype", ["int32", "uint8"])
@pytest.mark.parametrize("method", ["group-aps", "conv3d", "aps", "blur"])
def test_integer_input_model_returns_its_declared_dtype(method, dtype):
    inputs = keras.Input((16, 16, 3), dtype=dtype)
    site = methods.get(method).strided_conv(keras.layers.Conv2D(4, 3, strides=2, padding="same"), padding="circular")
    y, _ = site(SpatialPadding2D(1, mode="circular")(inputs))
    model = keras.Model(inputs, y)
    x = np.random.default_rng(6).integers(0, 256, size=(2, 16, 16, 3))
    out = model(x.astype(dtype))
    assert keras.backend.standardize_dtype(out.dtype) == model.output.dtype == "float32"
    expected = x.astype("float32")  # the same layers, eagerly, on the float32 image
    for layer in model.layers[1:]:
        expected = layer(expected)
        expected = expected[0] if isinstance(expected, (tuple, list)) else expected
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), rtol=1e-6)


# --- finding 3: NaN and inf ------------------------------------------------------


def test_nan_and_inf_never_give_an_out_of_range_phase():
    x = np.ones((5, 4, 4, 1), "float32")
    x[0, 1, 1, 0] = np.nan  # phase 3 is NaN: ranks lowest, an all-ones phase is kept
    x[1] = np.nan  # every phase NaN: phase 0, output NaN
    x[2, 0, 1, 0] = np.inf  # phase 1 infinite: kept
    x[3, 1, 0, 0] = -np.inf  # phase 2: |-inf| is the largest norm
    x[4, 0, 0, 0], x[4, 1, 1, 0] = np.inf, np.inf  # phases 0 and 3 tie at inf (norm and peak)
    pooled, index = AdaptivePolyphasePool2D(return_index=True)(x)
    np.testing.assert_array_equal(np.asarray(index), [0, 0, 1, 2, 0])
    np.testing.assert_array_equal(np.asarray(index), reference.max_norm_phases(x))
    pooled = np.asarray(pooled)
    assert np.isfinite(pooled[0]).all() and np.isnan(pooled[1]).all()
    _, module_index = PolyphaseDownsample(2, align="max_norm", return_index=True)(x)
    np.testing.assert_array_equal(np.asarray(module_index), [0, 0, 1, 2, 0])


# --- finding 4: the group module's width -----------------------------------------


@pytest.mark.parametrize("mode", ["zeros", "circular"])
@pytest.mark.parametrize("filters", [5, 2, 12])
def test_min_width_module_matches_numpy_reference(filters, mode):
    x = np.random.default_rng(7).normal(size=(2, 8, 6, 3)).astype("float32")
    layer = PolyphaseDownsample(filters, mixing="group", padding=mode, align="max_norm", mixing_width="min")
    layer.build(x.shape)
    assert layer.mixing_kernel.shape[-1] == 3 * -(-filters // 3) == reference.group_width(3, filters, "min")
    weights = [np.asarray(w, "float64") for w in layer.get_weights()]
    expected = reference.polyphase_downsample(x, weights, "group", mode, "max_norm", mixing_width="min")
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-4)


def test_lcm_width_is_bounded_and_min_is_the_way_out():
    with pytest.raises(ValueError, match="mixing_width='min'") as info:
        PolyphaseDownsample(256, name="wide")(np.zeros((1, 4, 4, 255), "float32"))
    assert "\n" not in str(info.value) and "lcm(255, 256) = 65280" in str(info.value)
    layer = PolyphaseDownsample(256, mixing_width="min")
    layer.build((1, 4, 4, 255))
    assert layer.mixing_kernel.shape == (3, 3, 4, 510)
    for c, f in [(3, 64), (64, 128), (128, 64), (1, 8), (3, 8)]:  # the builders' channels stay lcm
        built = PolyphaseDownsample(f)
        built.build((1, 4, 4, c))
        assert built.mixing_kernel.shape[-1] == np.lcm(c, f)
    with pytest.raises(ValueError, match="Received: mixing_width='max'"):
        PolyphaseDownsample(4, mixing_width="max")


def test_mixing_width_config_round_trip_and_old_configs():
    layer = PolyphaseDownsample(5, mixing_width="min")
    config = layer.get_config()
    assert config["mixing_width"] == "min"
    assert PolyphaseDownsample.from_config(config).mixing_width == "min"
    del config["mixing_width"]  # a config saved before the option existed
    assert PolyphaseDownsample.from_config(config).mixing_width == "lcm"


def test_builders_and_convert_take_mixing_width():
    with pytest.raises(ValueError, match="mixing_width='min'"):
        resnet18("group", num_classes=4, input_shape=(32, 32, 3), width=0.3)  # lcm(38, 77) = 2926
    model = resnet18("group", num_classes=4, input_shape=(32, 32, 3), width=0.3, mixing_width="min")
    module = model.get_layer("stage3_block1_conv1")
    assert module.mixing_width == "min" and module.mixing_kernel.shape[-1] == 38 * 3
    assert methods.get("group-aps", mixing_width="min").mixing_width == "min"
    inputs = keras.Input((16, 16, 5))
    plain = keras.Model(inputs, keras.layers.Conv2D(7, 3, strides=2, padding="same", name="down")(inputs))
    converted, _ = convert(plain, "group", mixing_width="min")
    assert converted.get_layer("down").mixing_kernel.shape[-1] == 10
    with pytest.raises(ValueError, match="mixing_width='min'") as info:
        convert(plain, "group")  # lcm(5, 7) = 35 > 4 * 7: never built silently
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="Received: mixing_width='wide'"):
        convert(plain, "group", mixing_width="wide")


# --- finding 7: channels_first, any-size U-Nets -------------------------------------


@pytest.mark.parametrize("build", [
    lambda: PolyphaseDownsample(4)(np.zeros((1, 4, 4, 3), "float32")),
    lambda: AdaptivePolyphasePool2D()(np.zeros((1, 4, 4, 3), "float32")),
    lambda: BlurPool2D()(np.zeros((1, 4, 4, 3), "float32")),
    lambda: SpatialPadding2D(1)(np.zeros((1, 4, 4, 3), "float32")),
    lambda: PolyphaseUpsample2D(2)(np.zeros((1, 4, 4, 3), "float32")),
    lambda: resnet18("group-aps", input_shape=(32, 32, 3), width=0.125),
    lambda: unet("aps", input_shape=(32, 32, 3), depth=2, width=0.125),
])
def test_global_channels_first_is_a_one_line_error(build):
    keras.config.set_image_data_format("channels_first")
    try:
        with pytest.raises(ValueError, match="Received: image_data_format='channels_first'") as info:
            build()
    finally:
        keras.config.set_image_data_format("channels_last")
    assert "\n" not in str(info.value) and "set_image_data_format('channels_last')" in str(info.value)


@pytest.mark.parametrize("method", ALIGNED)
def test_any_size_unet_is_exactly_equivariant_on_multiples(method):
    model = unet(method, num_classes=3, input_shape=(None, None, 1), depth=2, width=0.125, padding="circular")
    rng = np.random.default_rng(8)
    for size in [(16, 16), (24, 20)]:
        x = rng.normal(size=(2, *size, 1)).astype("float32")
        shifts = [tuple(int(v) for v in (rng.integers(0, size[0]), rng.integers(0, size[1]))) for _ in range(3)]
        ok, diff, scale, _, _ = roll_trials(model, x, shifts, equivariant=True)
        assert ok.all() and diff <= 1e-4 * scale, (size, diff, scale)


@pytest.mark.parametrize("method,padding", [("group-aps", "circular"), ("stride", "reflect"), ("aps", "zeros")])
def test_any_size_unet_pads_and_crops_inside_the_graph(method, padding):
    model = unet(method, num_classes=3, input_shape=(None, None, 2), depth=2, width=0.125, padding=padding)
    x = np.random.default_rng(9).normal(size=(2, 9, 14, 2)).astype("float32")
    out = np.asarray(model(x))
    assert out.shape == (2, 9, 14, 3)
    padded = np.pad(x, ((0, 0), (0, 3), (0, 2), (0, 0)), mode=NP_MODES[padding])
    expected = np.asarray(model(padded))[:, :9, :14]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_pad_to_multiple_and_crop_like_round_trip_and_config():
    x = np.random.default_rng(10).normal(size=(1, 5, 7, 2)).astype("float32")
    pad = PadToMultiple2D(4, mode="reflect")
    padded = np.asarray(pad(x))
    np.testing.assert_array_equal(padded, np.pad(x, ((0, 0), (0, 3), (0, 1), (0, 0)), mode="reflect"))
    np.testing.assert_array_equal(np.asarray(CropLike2D()([padded, x])), x)
    assert PadToMultiple2D.from_config(pad.get_config()).get_config() == pad.get_config()
    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, CropLike2D()([PadToMultiple2D(8, mode="circular")(inputs), inputs]))
    assert model.output_shape == (None, None, None, 2)
    np.testing.assert_array_equal(np.asarray(model(x)), x)


def test_any_size_unet_saves_and_reloads(tmp_path):
    model = unet("group-aps", num_classes=3, input_shape=(None, None, 1), depth=2, width=0.125, padding="circular")
    x = np.random.default_rng(11).normal(size=(1, 11, 6, 1)).astype("float32")
    model.save(tmp_path / "unet.keras")
    loaded = keras.saving.load_model(tmp_path / "unet.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-6, atol=1e-6)
