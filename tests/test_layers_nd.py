"""The 1-D and 3-D layers against tests/reference_nd.py (docs/design.md, "Other ranks")."""

import json

import keras
import numpy as np
import pytest
from keras import ops

import reference_nd as ref
from keras_shiftinv.layers import AdaptivePolyphasePool1D
from keras_shiftinv.layers import AdaptivePolyphasePool3D
from keras_shiftinv.layers import AdaptivePolyphasePoolMixed2D
from keras_shiftinv.layers import BlurPool1D
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import BlurPool3D
from keras_shiftinv.layers import BlurPoolMixed2D
from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import PolyphaseDownsample1D
from keras_shiftinv.layers import PolyphaseDownsample3D
from keras_shiftinv.layers import PolyphaseDownsampleMixed2D
from keras_shiftinv.layers import PolyphaseUpsample1D
from keras_shiftinv.layers import PolyphaseUpsample2D
from keras_shiftinv.layers import PolyphaseUpsample3D
from keras_shiftinv.layers import SpatialPadding1D
from keras_shiftinv.layers import SpatialPadding3D
from keras_shiftinv.layers._nd import PolyphaseUpsampleND

MODES = ("zeros", "reflect", "circular")


def _np(x):
    return ops.convert_to_numpy(x)


def _random_weights(layer, rng):
    weights = [rng.normal(size=w.shape).astype("float32") for w in layer.weights]
    layer.set_weights(weights)
    return weights


# --- PolyphaseDownsample1D / 3D against the reference -------------------------------------


@pytest.mark.parametrize("padding", MODES)
@pytest.mark.parametrize("align", [None, "max_norm"])
def test_downsample_1d_matches_reference(padding, align):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 11, 3)).astype("float32")  # odd length: padded by one sample
    layer = PolyphaseDownsample1D(4, padding=padding, align=align, use_bias=True)
    layer.build(x.shape)
    weights = _random_weights(layer, rng)
    assert weights[0].shape == (3, 2, 12)  # (k, P, lcm(3, 4))
    expected = ref.polyphase_downsample(x, weights, (2,), padding, align, use_bias=True)
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "strides, padding, align, width",
    [
        ((2, 2, 2), "zeros", None, "lcm"),
        ((2, 2, 2), "circular", "max_norm", "min"),
        ((2, 2, 2), "reflect", "max_norm", "lcm"),
        ((1, 2, 2), "circular", "max_norm", "lcm"),
        ((2, 1, 2), "reflect", None, "min"),
    ],
)
def test_downsample_3d_matches_reference(strides, padding, align, width):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 6, 7, 2)).astype("float32")
    layer = PolyphaseDownsample3D(3, padding=padding, align=align, mixing_width=width, strides=strides)
    layer.build(x.shape)
    weights = _random_weights(layer, rng)
    phases = int(np.prod(strides))
    assert weights[0].shape == (3, 3, 3, phases, 6 if width == "lcm" else 4)
    expected = ref.polyphase_downsample(x, weights, strides, padding, align)
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-4, atol=1e-4)


def test_downsample_phase_index_reuse_and_return():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 4, 6, 4, 2)).astype("float32")
    layer = PolyphaseDownsample3D(2, kernel_size=1, align="max_norm", return_index=True, padding="circular")
    y, index = layer(x)
    expected_index = [ref.max_norm_phase(item, (2, 2, 2)) for item in x]
    np.testing.assert_array_equal(_np(index), expected_index)
    # Another layer, given a phase chosen elsewhere, rolls by it.
    other = PolyphaseDownsample3D(3, kernel_size=1, padding="circular")
    given = np.array([7, 0, 3, 5], "int32")
    out = other(x, phase_index=given)
    expected = ref.polyphase_downsample(x, [w.numpy() for w in other.weights], (2, 2, 2), "circular", phases=given)
    np.testing.assert_allclose(_np(out), expected, rtol=1e-4, atol=1e-4)


def test_downsample_3d_with_strides_1_2_2_equals_2d_per_frame():
    # strides (1, 2, 2) with kernel 1 is PolyphaseDownsample (2-D, group, kernel 1) per frame.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 6, 6, 4)).astype("float32")
    layer3 = PolyphaseDownsample3D(8, kernel_size=1, strides=(1, 2, 2))
    layer2 = PolyphaseDownsample(8, kernel_size=1)
    layer3.build(x.shape)
    layer2.build((None, 6, 6, 4))
    mix, merge = [w.numpy() for w in layer3.weights]
    layer2.set_weights([mix[0], merge])  # (1, 1, 1, 4, 8) -> the 2-D layout (1, 1, 4, 8)
    frames = _np(layer2(x.reshape(6, 6, 6, 4))).reshape(2, 3, 3, 3, 8)  # (B*D, h, w, F) -> (B, D, h, w, F)
    np.testing.assert_allclose(_np(layer3(x)), frames, rtol=1e-5, atol=1e-5)


# --- identity-like weights: the aligned module reproduces APS ------------------------------


@pytest.mark.parametrize("rank, strides", [(1, (2,)), (3, (2, 2, 2)), (3, (1, 2, 2))])
def test_aligned_identity_weights_equal_aps_and_up_restores(rank, strides):
    rng = np.random.default_rng(4)
    c = 3
    x = rng.normal(size=(3, *[4] * rank, c)).astype("float32")
    if rank == 1:
        layer = PolyphaseDownsample1D(c, kernel_size=1, align="max_norm", return_index=True, padding="circular")
        pool = AdaptivePolyphasePool1D(return_index=True)
    else:
        layer = PolyphaseDownsample3D(c, kernel_size=1, align="max_norm", return_index=True, padding="circular", strides=strides)
        pool = AdaptivePolyphasePool3D(return_index=True, strides=strides)
    layer.build(x.shape)
    phases = int(np.prod(strides))
    mix = np.zeros((*[1] * rank, phases, c), "float32")
    mix[..., 0, :] = 1.0  # group c reads only phase 0 (after the roll: the chosen phase) of channel c
    layer.set_weights([mix, np.eye(c, dtype="float32")])
    y, index = layer(x)
    pooled, pool_index = pool(x)
    np.testing.assert_array_equal(_np(index), _np(pool_index))
    np.testing.assert_array_equal(_np(y), _np(pooled))
    # Up again by hand (zeros elsewhere, placed at the chosen phase) restores the kept samples.
    up = np.zeros_like(x)
    for b, p in enumerate(_np(index)):
        where = (b, *[slice(o, None, s) for o, s in zip(ref.offsets(strides)[p], strides)])
        up[where] = _np(y)[b]
    kept = up != 0
    np.testing.assert_array_equal(up[kept], x[kept])
    assert kept.sum() == x.size // phases  # exactly one phase of each item, all of it non-zero


# --- APS and BlurPool against the reference ------------------------------------------------


@pytest.mark.parametrize("criterion", ["l2", "l1"])
@pytest.mark.parametrize("padding", MODES)
def test_aps_matches_reference(criterion, padding):
    rng = np.random.default_rng(5)
    x1 = rng.normal(size=(5, 9, 2)).astype("float32")
    out, index = AdaptivePolyphasePool1D(criterion, padding, return_index=True)(x1)
    expected, phases = ref.aps(x1, (2,), padding, criterion)
    np.testing.assert_array_equal(_np(index), phases)
    np.testing.assert_array_equal(_np(out), expected.astype("float32"))
    for strides in [(2, 2, 2), (1, 2, 2)]:
        x3 = rng.normal(size=(4, 3, 5, 4, 2)).astype("float32")
        out, index = AdaptivePolyphasePool3D(criterion, padding, return_index=True, strides=strides)(x3)
        expected, phases = ref.aps(x3, strides, padding, criterion)
        np.testing.assert_array_equal(_np(index), phases)
        np.testing.assert_array_equal(_np(out), expected.astype("float32"))


def test_aps_ties_go_to_peak_then_lowest_index():
    x = np.zeros((3, 8, 1), "float32")
    x[0, 0::2, 0] = 2.0  # even phase: norm 16, peak 2
    x[0, 1, 0] = 4.0  # odd phase: norm 16 (exact tie), peak 4 -> odd wins
    x[2, :, 0] = 1.0  # constant: ties on norm and peak -> lowest index; item 1 all zero -> 0
    _, index = AdaptivePolyphasePool1D(return_index=True)(x)
    np.testing.assert_array_equal(_np(index), [1, 0, 0])


def test_dynamic_sizes_match_reference():
    import tensorflow as tf

    rng = np.random.default_rng(11)
    layer = PolyphaseDownsample3D(3, padding="reflect", align="max_norm")
    x = rng.normal(size=(2, 5, 3, 7, 2)).astype("float32")
    layer.build(x.shape)
    weights = _random_weights(layer, rng)
    traced = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, None, 2), "float32")])
    expected = ref.polyphase_downsample(x, weights, (2, 2, 2), "reflect", "max_norm")
    np.testing.assert_allclose(_np(traced(x)), expected, rtol=1e-4, atol=1e-4)
    blur = tf.function(BlurPool1D(4, padding="circular"), input_signature=[tf.TensorSpec((None, None, 2), "float32")])
    x1 = rng.normal(size=(2, 9, 2)).astype("float32")
    np.testing.assert_allclose(_np(blur(x1)), ref.blur_pool(x1, 4, (2,), "circular"), atol=1e-5)


@pytest.mark.parametrize("padding", MODES)
@pytest.mark.parametrize("filt_size", [1, 3, 4, 5])
def test_blur_pool_matches_reference(padding, filt_size):
    rng = np.random.default_rng(6)
    x1 = rng.normal(size=(2, 11, 3)).astype("float32")
    np.testing.assert_allclose(
        _np(BlurPool1D(filt_size, 2, padding)(x1)), ref.blur_pool(x1, filt_size, (2,), padding), atol=1e-5
    )
    np.testing.assert_allclose(
        _np(BlurPool1D(filt_size, 3, padding)(x1)), ref.blur_pool(x1, filt_size, (3,), padding), atol=1e-5
    )
    x3 = rng.normal(size=(2, 5, 6, 7, 2)).astype("float32")
    for strides in [(2, 2, 2), (1, 2, 2), (3, 1, 2)]:
        np.testing.assert_allclose(
            _np(BlurPool3D(filt_size, strides, padding)(x3)), ref.blur_pool(x3, filt_size, strides, padding), atol=1e-5
        )


def test_blur_pool_3d_frames_equal_blur_pool_2d():
    x = np.random.default_rng(7).normal(size=(2, 3, 9, 8, 4)).astype("float32")
    frames = _np(BlurPool2D(4, 2, "reflect")(x.reshape(6, 9, 8, 4))).reshape(2, 3, 5, 4, 4)  # (B*D, h, w, C) -> (B, D, h, w, C)
    np.testing.assert_allclose(_np(BlurPool3D(4, (1, 2, 2), "reflect")(x)), frames, atol=1e-6)


# --- exact invariance to circular shifts ---------------------------------------------------


def _model_1d():
    inputs = keras.Input((32, 2))
    x = PolyphaseDownsample1D(4, padding="circular", align="max_norm")(inputs)
    x = keras.layers.ReLU()(x)
    x = AdaptivePolyphasePool1D(padding="circular")(x)
    x = PolyphaseDownsample1D(6, padding="circular", align="max_norm")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(x))


def _model_3d(strides):
    inputs = keras.Input((8, 8, 8, 2))
    x = PolyphaseDownsample3D(4, padding="circular", align="max_norm", strides=strides)(inputs)
    x = keras.layers.ReLU()(x)
    x = AdaptivePolyphasePool3D(padding="circular")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling3D()(x))


def test_aligned_1d_is_invariant_to_circular_shifts_and_strided_is_not():
    rng = np.random.default_rng(8)
    model = _model_1d()
    x = rng.normal(size=(4, 32, 2)).astype("float32")
    base = _np(model(x))
    strided = lambda s: s[:, ::2].mean(axis=1)  # noqa: E731  the plain stride-2 baseline + global pool
    baseline_gaps = []
    for shift in [1, 2, 3, 6, 13, 31]:  # odd and even
        shifted = np.roll(x, shift, axis=1)
        np.testing.assert_allclose(_np(model(shifted)), base, rtol=1e-5, atol=1e-5)
        baseline_gaps.append(np.abs(strided(shifted) - strided(x)).max())
    assert min(baseline_gaps[i] for i in (0, 2, 4, 5)) > 1e-2  # every odd shift moves the baseline


def test_aligned_3d_is_invariant_to_circular_shifts_and_strided_is_not():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2, 8, 8, 8, 2)).astype("float32")
    for strides in [(2, 2, 2), (1, 2, 2)]:
        model = _model_3d(strides)
        base = _np(model(x))
        for _ in range(4):
            shift = tuple(int(s) for s in rng.integers(0, 8, size=3))
            shift = (shift[0] | 1, shift[1], shift[2] | 1)  # at least two odd shifts each time
            shifted = np.roll(x, shift, axis=(1, 2, 3))
            np.testing.assert_allclose(_np(model(shifted)), base, rtol=1e-5, atol=1e-5)
    strided = lambda v: v[:, ::2, ::2, ::2].mean(axis=(1, 2, 3))  # noqa: E731
    assert np.abs(strided(np.roll(x, (1, 0, 1), axis=(1, 2, 3))) - strided(x)).max() > 1e-2


# --- validation and serialization ----------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: PolyphaseDownsample1D(4, mixing="conv3d"), "Received: mixing='conv3d'"),
        (lambda: PolyphaseDownsample3D(4, strides=(1, 1, 1)), r"Received: strides=\(1, 1, 1\)"),
        (lambda: PolyphaseDownsample3D(4, strides=(2, 2)), r"Received: strides=\(2, 2\)"),
        (lambda: PolyphaseDownsample3D(4, strides=3), "Received: strides=3"),
        (lambda: PolyphaseDownsample1D(4, return_index=True), "Received: align=None"),
        (lambda: PolyphaseDownsample1D(4, kernel_size=2), "Received: kernel_size=2"),
        (lambda: PolyphaseDownsample1D(4, padding="same"), "Received: padding='same'"),
        (lambda: AdaptivePolyphasePool3D(criterion="max"), "Received: criterion='max'"),
        (lambda: BlurPool1D(stride=1), "Received: stride=1"),
        (lambda: BlurPool3D(filt_size=8), "Received: filt_size=8"),
    ],
)
def test_bad_arguments_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_wrong_rank_and_unknown_channels_are_refused():
    with pytest.raises(ValueError, match=r"3D input .*Received: input_shape=\(1, 4, 4, 2\)"):
        PolyphaseDownsample1D(4)(np.zeros((1, 4, 4, 2)))
    with pytest.raises(ValueError, match=r"5D input .*Received: input_shape=\(1, 4, 2\)"):
        AdaptivePolyphasePool3D()(np.zeros((1, 4, 2)))
    with pytest.raises(ValueError, match="mixing_width='min'"):
        PolyphaseDownsample1D(256)(np.zeros((1, 4, 255)))


def test_get_config_round_trip():
    for layer in [
        PolyphaseDownsample1D(4, align="max_norm", return_index=True, padding="circular", mixing_width="min"),
        PolyphaseDownsample3D(4, strides=(1, 2, 2), use_bias=True),
        AdaptivePolyphasePool1D("l1", "reflect"),
        AdaptivePolyphasePool3D(strides=(2, 1, 2)),
        BlurPool1D(5, 3, "circular"),
        BlurPool3D(3, (1, 2, 2), "zeros"),
        PolyphaseDownsampleMixed2D(4, strides=(2, 1), align="max_norm"),
        AdaptivePolyphasePoolMixed2D(strides=(1, 2)),
        BlurPoolMixed2D(5, (1, 3), "circular"),
        SpatialPadding1D((1, 2), mode="reflect"),
        SpatialPadding3D(((0, 1), (2, 2), (1, 0)), mode="circular"),
    ]:
        config = json.loads(json.dumps(layer.get_config()))
        clone = layer.__class__.from_config(config)
        assert clone.get_config() == layer.get_config()


def test_keras_file_round_trip_in_a_fresh_process(tmp_path, fresh_process):
    rng = np.random.default_rng(10)
    inputs = keras.Input((None, 3))
    x = BlurPool1D(3, padding="circular")(inputs)
    x, index = PolyphaseDownsample1D(4, align="max_norm", return_index=True, padding="circular", use_bias=True)(x)
    shortcut = AdaptivePolyphasePool1D()(BlurPool1D(3)(inputs), phase_index=index)
    x = keras.layers.Concatenate()([x, shortcut])
    x = PolyphaseUpsample1D(5, kernel_size=3, padding="circular")(x, phase_index=index)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(x))
    volumes = keras.Input((4, 6, 6, 2))
    v, v_index = PolyphaseDownsample3D(3, align="max_norm", return_index=True, strides=(1, 2, 2))(volumes)
    v = PolyphaseUpsample3D(mode="place", strides=(1, 2, 2))(v, phase_index=v_index)
    model_3d = keras.Model(volumes, v)
    for m in (model, model_3d):
        for w in m.weights:  # off the initial values, so a lost weight shows
            w.assign(rng.normal(size=w.shape).astype("float32"))
    x_np = rng.normal(size=(2, 21, 3)).astype("float32")
    v_np = rng.normal(size=(2, 4, 6, 6, 2)).astype("float32")
    np.save(tmp_path / "x.npy", x_np)
    np.save(tmp_path / "v.npy", v_np)
    model.save(tmp_path / "m.keras")
    model_3d.save(tmp_path / "m3.keras")
    loaded = fresh_process.load([tmp_path / "m.keras"], x=tmp_path / "x.npy")
    np.testing.assert_array_equal(np.array(loaded[str(tmp_path / "m.keras")]["outputs"], "float32"), _np(model(x_np)))
    loaded = fresh_process.load([tmp_path / "m3.keras"], x=tmp_path / "v.npy")
    np.testing.assert_array_equal(np.array(loaded[str(tmp_path / "m3.keras")]["outputs"], "float32"), _np(model_3d(v_np)))


def test_saved_model_export_of_a_1d_classifier(tmp_path):
    import tensorflow as tf

    inputs = keras.Input((None, 2))
    x = keras.layers.Conv1D(4, 3, padding="same")(inputs)
    x = BlurPool1D(3, padding="circular")(x)
    x = PolyphaseDownsample1D(8, align="max_norm", padding="circular")(x)
    x = AdaptivePolyphasePool1D(padding="circular")(keras.layers.ReLU()(x))
    model = keras.Model(inputs, keras.layers.Dense(5)(keras.layers.GlobalAveragePooling1D()(x)))
    model.export(str(tmp_path / "sm"), format="tf_saved_model", verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    rng = np.random.default_rng(12)
    for length in (40, 33):  # any length, odd included
        signal = rng.normal(size=(3, length, 2)).astype("float32")
        out = loaded.serve(tf.constant(signal)).numpy()
        np.testing.assert_allclose(out, _np(model(signal)), rtol=1e-5, atol=1e-5)


# --- PolyphaseUpsample1D / 3D --------------------------------------------------------------


@pytest.mark.parametrize(
    "rank, strides, mode, padding",
    [
        (1, (2,), "place", "zeros"),
        (1, (2,), "learned", "circular"),
        (1, (2,), "learned", "reflect"),
        (3, (2, 2, 2), "learned", "zeros"),
        (3, (1, 2, 2), "learned", "circular"),
        (3, (2, 1, 2), "place", "zeros"),
    ],
)
def test_upsample_matches_reference(rank, strides, mode, padding):
    rng = np.random.default_rng(20)
    y = rng.normal(size=(3, *[3] * rank, 2)).astype("float32")
    filters = None if mode == "place" else 3
    kernel_size = 1 if mode == "place" else 3
    if rank == 1:
        layer = PolyphaseUpsample1D(filters, mode=mode, kernel_size=kernel_size, padding=padding)
    else:
        layer = PolyphaseUpsample3D(filters, mode=mode, kernel_size=kernel_size, padding=padding, strides=strides)
    layer.build(y.shape)
    weights = _random_weights(layer, rng)
    kernel, bias = (weights + [None, None])[:2]
    phases = rng.integers(0, int(np.prod(strides)), size=3)
    expected = ref.polyphase_upsample(y, strides, mode, kernel, bias, padding, phases)
    np.testing.assert_allclose(_np(layer(y, phase_index=phases)), expected, rtol=1e-5, atol=1e-5)
    unrolled = ref.polyphase_upsample(y, strides, mode, kernel, bias, padding)
    np.testing.assert_allclose(_np(layer(y)), unrolled, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rank, strides", [(1, (2,)), (3, (2, 2, 2)), (3, (1, 2, 2))])
def test_aligned_down_then_up_with_identity_weights_is_the_identity(rank, strides):
    # Down keeps every phase (filters = P*C, identity-like weights), up puts each back at its offset:
    # with the down layer's phase passed to the up layer, the input comes back exactly.
    rng = np.random.default_rng(21)
    c, n_phases = 2, int(np.prod(strides))
    x = rng.normal(size=(4, *[6] * rank, c)).astype("float32")
    if rank == 1:
        down = PolyphaseDownsample1D(n_phases * c, kernel_size=1, align="max_norm", return_index=True, padding="circular")
        up = PolyphaseUpsample1D(c, use_bias=False)
    else:
        down = PolyphaseDownsample3D(
            n_phases * c, kernel_size=1, align="max_norm", return_index=True, padding="circular", strides=strides
        )
        up = PolyphaseUpsample3D(c, use_bias=False, strides=strides)
    down.build(x.shape)
    mix = np.zeros((*[1] * rank, n_phases, c * n_phases), "float32")  # group ch has width P: channel ch*P + q
    merge = np.zeros((c * n_phases, n_phases * c), "float32")
    for ch in range(c):
        for p in range(n_phases):
            mix[..., p, ch * n_phases + p] = 1.0  # group ch, column q = p copies phase p
            merge[ch * n_phases + p, p * c + ch] = 1.0  # to the phase-major channel p*C + ch
    down.set_weights([mix, merge])
    up.build((None, *[3] * rank, n_phases * c))
    kernel = np.eye(n_phases * c, dtype="float32").reshape(*[1] * rank, n_phases * c, n_phases * c)
    up.set_weights([kernel])
    y, index = down(x)
    assert len(set(_np(index).tolist())) > 1  # the items chose different phases
    np.testing.assert_array_equal(_np(up(y, phase_index=index)), x)
    # Without the phase the roll is lost wherever the chosen phase is not 0.
    moved = [b for b, p in enumerate(_np(index)) if p != 0]
    assert not np.allclose(_np(up(y))[moved], x[moved])


@pytest.mark.parametrize("mode, padding", [("place", "zeros"), ("learned", "circular"), ("learned", "reflect")])
def test_the_2d_upsample_is_the_generic_base_bit_for_bit(mode, padding):
    # PolyphaseUpsample2D keeps depth_to_space and one gather; the base interleaves with a
    # reshape/transpose and rolls by slices and a select. Pure data movement: equal bit for bit.
    class Generic2D(PolyphaseUpsampleND):
        rank = 2

    rng = np.random.default_rng(23)
    y = rng.normal(size=(4, 3, 5, 2)).astype("float32")
    filters, kernel_size = (None, 1) if mode == "place" else (3, 3)
    fast = PolyphaseUpsample2D(filters, mode=mode, kernel_size=kernel_size, padding=padding)
    generic = Generic2D(filters, mode=mode, kernel_size=kernel_size, padding=padding, strides=2)
    fast.build(y.shape)
    generic.build(y.shape)
    generic.set_weights(_random_weights(fast, rng))
    phases = np.array([0, 1, 2, 3])
    np.testing.assert_array_equal(_np(fast(y, phase_index=phases)), _np(generic(y, phase_index=phases)))
    np.testing.assert_array_equal(_np(fast(y)), _np(generic(y)))
    # The 2-D layer's saved config has today's keys (no `strides`): older .keras files load.
    assert set(fast.get_config()) == set(generic.get_config()) - {"strides"}


def test_upsample_validation_and_config():
    with pytest.raises(ValueError, match="Received: filters=4"):
        PolyphaseUpsample1D(4, mode="place")
    with pytest.raises(ValueError, match=r"Received: strides=\(1, 1, 1\)"):
        PolyphaseUpsample3D(4, strides=(1, 1, 1))
    with pytest.raises(ValueError, match=r"3D input .*Received: input_shape=\(1, 4, 4, 2\)"):
        PolyphaseUpsample1D(4)(np.zeros((1, 4, 4, 2)))
    for layer in [PolyphaseUpsample1D(mode="place"), PolyphaseUpsample3D(3, kernel_size=3, strides=(1, 2, 2))]:
        config = json.loads(json.dumps(layer.get_config()))
        assert layer.__class__.from_config(config).get_config() == layer.get_config()


# --- SpatialPadding1D / 3D and the mixed-stride 2-D layers --------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_spatial_padding_matches_np_pad(mode):
    rng = np.random.default_rng(22)
    x1 = rng.normal(size=(2, 5, 3)).astype("float32")
    np.testing.assert_array_equal(_np(SpatialPadding1D((2, 3), mode=mode)(x1)), ref.pad(x1, [(2, 3)], mode))
    x3 = rng.normal(size=(1, 3, 4, 5, 2)).astype("float32")
    pads = ((0, 1), (2, 2), (1, 0))
    np.testing.assert_array_equal(_np(SpatialPadding3D(pads, mode=mode)(x3)), ref.pad(x3, pads, mode))
    with pytest.raises(ValueError, match=r"Received: padding=\(1, 2\)"):
        SpatialPadding3D((1, 2))


@pytest.mark.parametrize("strides", [(1, 2), (2, 1), (2, 2)])
def test_mixed_2d_layers_match_the_reference(strides):
    rng = np.random.default_rng(23)
    x = rng.normal(size=(3, 5, 7, 2)).astype("float32")
    layer = PolyphaseDownsampleMixed2D(3, strides=strides, padding="circular", align="max_norm", use_bias=True)
    layer.build(x.shape)
    weights = _random_weights(layer, rng)
    expected = ref.polyphase_downsample(x, weights, strides, "circular", "max_norm", use_bias=True)
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-4, atol=1e-4)
    pooled, index = AdaptivePolyphasePoolMixed2D(padding="reflect", return_index=True, strides=strides)(x)
    expected, phases = ref.aps(x, strides, "reflect")
    np.testing.assert_array_equal(_np(index), phases)
    np.testing.assert_array_equal(_np(pooled), expected.astype("float32"))
    blurred = BlurPoolMixed2D(3, strides=strides, padding="zeros")(x)
    np.testing.assert_allclose(_np(blurred), ref.blur_pool(x, 3, strides, "zeros"), atol=1e-5)
    if strides == (2, 2):  # the same function as the 2-D layer
        np.testing.assert_allclose(_np(blurred), _np(BlurPool2D(3, 2, "zeros")(x)), atol=1e-6)


@pytest.mark.parametrize("path", ["fused", "factored"])
def test_2d_module_is_the_rank_2_nd_module_on_both_paths(path):
    # PolyphaseDownsample subclasses PolyphaseDownsampleND: with group mixing each of its two exact
    # paths computes the rank-generic numpy reference at strides (2, 2), and its config keeps
    # the 2-D keys (no "strides": the stride is fixed at 2).
    from keras_shiftinv.layers import PolyphaseDownsampleND
    from keras_shiftinv.layers.polyphase_algebra import inference_path

    rng = np.random.default_rng(29)
    x = rng.normal(size=(2, 7, 6, 3)).astype("float32")
    layer = PolyphaseDownsample(4, padding="reflect", align="max_norm", return_index=True, use_bias=True)
    layer.build(x.shape)
    weights = _random_weights(layer, rng)
    with inference_path(path):
        y, index = layer(x)
    expected = ref.polyphase_downsample(x, weights, (2, 2), "reflect", "max_norm", use_bias=True)
    np.testing.assert_allclose(_np(y), expected, rtol=1e-4, atol=1e-4)
    assert isinstance(layer, PolyphaseDownsampleND) and "strides" not in layer.get_config()
    assert sorted(layer.get_config()) == [  # the keys of the files saved before the 2-D layer joined the base
        "align", "bias_initializer", "dtype", "filters", "kernel_initializer", "kernel_size", "mixing",
        "mixing_width", "name", "padding", "return_index", "trainable", "use_bias",
    ]
    nd = PolyphaseDownsampleMixed2D(4, strides=(2, 2), padding="reflect", use_bias=True)
    nd.build(x.shape)
    nd.set_weights(weights)
    np.testing.assert_allclose(_np(nd(x, phase_index=index)), _np(y), rtol=1e-5, atol=1e-5)
