import keras
import numpy as np
import pytest
import tensorflow as tf

import reference
from keras_shiftinv.layers import AdaptivePolyphasePool2D
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import SpatialPadding2D
from keras_shiftinv.layers import binomial_filter
from keras_shiftinv.layers import polyphase_split

MODES = ["zeros", "reflect", "circular"]


def rand(*shape):
    return np.random.normal(size=shape).astype("float32")


# --- polyphase split -------------------------------------------------------


def test_polyphase_split_channel_major_order_by_hand():
    x = np.zeros((1, 4, 4, 2), "float32")
    x[0, :, :, 0] = np.arange(16).reshape(4, 4)
    x[0, :, :, 1] = 100 + np.arange(16).reshape(4, 4)
    out = np.asarray(polyphase_split(x))
    assert out.shape == (1, 2, 2, 8)
    # RRRRGGGGBBBB: the four phases (0,0),(0,1),(1,0),(1,1) of channel 0, then 1.
    np.testing.assert_array_equal(out[0, 0, 0], [0, 1, 4, 5, 100, 101, 104, 105])
    np.testing.assert_array_equal(out[0, 0, 1], [2, 3, 6, 7, 102, 103, 106, 107])
    np.testing.assert_array_equal(out[0, 1, 0], [8, 9, 12, 13, 108, 109, 112, 113])


def test_polyphase_split_is_space_to_depth_reordered():
    x = rand(2, 6, 8, 3)
    s2d = np.asarray(tf.nn.space_to_depth(x, 2))  # channel p*C + c
    expected = s2d.reshape(2, 3, 4, 4, 3).transpose(0, 1, 2, 4, 3).reshape(2, 3, 4, 12)
    np.testing.assert_array_equal(np.asarray(polyphase_split(x)), expected)


@pytest.mark.parametrize("mode", MODES)
def test_polyphase_split_odd_sizes_match_reference(mode):
    x = rand(2, 5, 7, 3)
    np.testing.assert_allclose(
        np.asarray(polyphase_split(x, padding=mode)), reference.split_channel_major(x, mode)
    )


# --- PolyphaseDownsample against the numpy reference ------------------------


def _weights(layer):
    return [np.asarray(w, "float64") for w in layer.get_weights()]


def _reference(layer, x):
    return reference.polyphase_downsample(
        x, _weights(layer), layer.mixing, layer.padding, layer.align, layer.use_bias
    )


@pytest.mark.parametrize("mixing", ["group", "conv3d"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [(8, 6), (7, 5), (1, 1), (3, 8)])
@pytest.mark.parametrize("fused", [True, False])
def test_module_matches_numpy_reference(mixing, mode, size, fused):
    x = rand(2, *size, 3)
    layer = PolyphaseDownsample(5, mixing=mixing, padding=mode, use_bias=True)
    layer.build(x.shape)
    # Random biases too, so they are checked (their initializer is zeros).
    layer.set_weights([rand(*w.shape) for w in layer.get_weights()])
    layer._fusing_pays = lambda pixels, **_: fused  # pin each of the two exact paths
    out = np.asarray(layer(x))
    assert out.shape == (2, (size[0] + 1) // 2, (size[1] + 1) // 2, 5)
    np.testing.assert_allclose(out, _reference(layer, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mixing", ["group", "conv3d"])
@pytest.mark.parametrize("kernel_size", [1, 5])
def test_module_kernel_sizes_match_reference(mixing, kernel_size):
    x = rand(2, 9, 10, 4)
    layer = PolyphaseDownsample(6, mixing=mixing, kernel_size=kernel_size, padding="reflect")
    out = np.asarray(layer(x))
    np.testing.assert_allclose(out, _reference(layer, x), rtol=1e-4, atol=1e-4)


def test_group_mixing_equals_plain_grouped_conv2d():
    x = rand(2, 8, 8, 6)
    layer = PolyphaseDownsample(4, mixing="group")
    layer.build(x.shape)
    assert layer.mixing_kernel.shape == (3, 3, 4, 12)  # lcm(6, 4) = 12 filters
    stack = polyphase_split(x)  # channel-major (B, 4, 4, 24)
    grouped = keras.layers.Conv2D(12, 3, padding="same", groups=6, use_bias=False)
    grouped.build(stack.shape)
    grouped.set_weights([np.asarray(layer.mixing_kernel)])
    np.testing.assert_allclose(np.asarray(layer.mix(x)), np.asarray(grouped(stack)), rtol=1e-5, atol=1e-5)


def test_conv3d_mixing_equals_keras_conv3d():
    x = rand(2, 8, 8, 5)
    layer = PolyphaseDownsample(3, mixing="conv3d")
    layer.build(x.shape)
    assert layer.mixing_kernel.shape == (3, 3, 3, 5, 3)
    stack5 = np.asarray(polyphase_split(x)).reshape(2, 4, 4, 5, 4).transpose(0, 4, 1, 2, 3)
    conv3d = keras.layers.Conv3D(3, (3, 3, 3), padding="valid", use_bias=False)
    padded = np.pad(stack5, ((0, 0), (0, 0), (1, 1), (1, 1), (0, 0)))
    conv3d.build(padded.shape)
    conv3d.set_weights([np.asarray(layer.mixing_kernel)])
    expected = np.asarray(conv3d(padded))  # (B, 2, h, w, O)
    expected = expected.transpose(0, 2, 3, 4, 1).reshape(2, 4, 4, 6)  # channel o*2 + d
    np.testing.assert_allclose(np.asarray(layer.mix(x)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mixing", ["group", "conv3d"])
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
def test_fused_and_unfused_paths_agree(mixing, padding):
    x = rand(3, 12, 10, 4)
    layer = PolyphaseDownsample(8, mixing=mixing, use_bias=True, padding=padding)
    layer.build(x.shape)
    layer.set_weights([rand(*w.shape) for w in layer.get_weights()])
    padded, _ = layer.padded_phases(x)  # (3, 16, 14, 4): every phase padded by 1
    fused = np.asarray(layer._fused(padded))
    np.testing.assert_allclose(fused, np.asarray(layer._unfused(padded)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fused, _reference(layer, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mixing", ["group", "conv3d"])
def test_dynamic_shapes_match_static(mixing):
    layer = PolyphaseDownsample(4, mixing=mixing, padding="reflect")
    x = rand(2, 9, 6, 3)
    static = np.asarray(layer(x))
    fn = tf.function(layer.__call__, input_signature=[tf.TensorSpec([None, None, None, 3])])
    np.testing.assert_allclose(np.asarray(fn(x)), static, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(static, _reference(layer, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mixing", ["group", "conv3d"])
def test_align_max_norm_matches_reference(mixing):
    x = rand(3, 8, 6, 2)
    layer = PolyphaseDownsample(4, mixing=mixing, padding="circular", align="max_norm")
    np.testing.assert_allclose(np.asarray(layer(x)), _reference(layer, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mixing", ["group", "conv3d"])
def test_circular_equivariance_two_pixel_roll(mixing):
    x = rand(2, 8, 12, 3)
    layer = PolyphaseDownsample(4, mixing=mixing, padding="circular")
    for shift in [(2, 0), (0, 2), (2, -4), (-6, 2)]:
        rolled_in = np.asarray(layer(np.roll(x, shift, axis=(1, 2))))
        rolled_out = np.roll(np.asarray(layer(x)), (shift[0] // 2, shift[1] // 2), axis=(1, 2))
        np.testing.assert_allclose(rolled_in, rolled_out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mixing", ["group", "conv3d"])
def test_aligned_module_output_shifts_by_whole_pixels_for_any_roll(mixing):
    x = rand(1, 8, 8, 3)
    layer = PolyphaseDownsample(4, mixing=mixing, padding="circular", align="max_norm")
    base = np.asarray(layer(x))
    for shift in [(1, 0), (0, 1), (1, 1), (3, 5)]:
        out = np.asarray(layer(np.roll(x, shift, axis=(1, 2))))
        # Some integer roll of the output matches exactly.
        best = min(
            np.abs(np.roll(base, (i, j), axis=(1, 2)) - out).max() for i in range(4) for j in range(4)
        )
        assert best < 1e-5


@pytest.mark.parametrize("mixing", ["group", "conv3d"])
@pytest.mark.parametrize("size", [(8, 6), (7, 9)])
def test_aligned_module_returns_the_numpy_argmax_phase(mixing, size):
    x = rand(4, *size, 3)
    x[1, 1::2, 1::2] *= 3.0  # make phase 3 the loudest of image 1
    layer = PolyphaseDownsample(4, mixing=mixing, padding="reflect", align="max_norm", return_index=True)
    out, index = layer(x)
    expected = reference.max_norm_phases(reference.pad_even(x, "reflect"))
    assert expected[1] == 3
    assert np.asarray(index).dtype == np.int32 and np.asarray(index).shape == (4,)
    np.testing.assert_array_equal(np.asarray(index), expected)
    np.testing.assert_allclose(np.asarray(out), _reference(layer, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("align", [None, "max_norm"])
def test_module_given_phase_rolls_by_that_phase(align):
    x = rand(4, 6, 8, 3)
    phases = np.array([3, 0, 1, 2])
    layer = PolyphaseDownsample(5, mixing="conv3d", padding="circular", align=align)
    out = np.asarray(layer(x, phase_index=phases))
    expected = reference.polyphase_downsample(x, _weights(layer), "conv3d", "circular", phases=phases)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    # The given phases, not the layer's own choice, decide the roll.
    own = reference.max_norm_phases(x)
    assert not np.array_equal(own, phases)


def test_module_phase_passing_in_functional_model_and_save(tmp_path):
    inputs = keras.Input((None, None, 3))
    main, index = PolyphaseDownsample(4, align="max_norm", return_index=True, name="main")(inputs)
    short = PolyphaseDownsample(4, kernel_size=1, align="max_norm", name="short")(inputs, phase_index=index)
    model = keras.Model(inputs, [main, short, index])
    x = rand(3, 8, 10, 3)
    m, s, i = (np.asarray(t) for t in model(x))
    phases = reference.max_norm_phases(x)
    np.testing.assert_array_equal(i, phases)
    short_layer = model.get_layer("short")
    expected = reference.polyphase_downsample(x, _weights(short_layer), "group", "zeros", phases=phases)
    np.testing.assert_allclose(s, expected, rtol=1e-4, atol=1e-4)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    for a, b in zip(loaded(x), (m, s, i)):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_module_return_index_config_and_output_shape():
    layer = PolyphaseDownsample(3, align="max_norm", return_index=True)
    config = layer.get_config()
    assert config["return_index"] is True
    assert PolyphaseDownsample.from_config(config).get_config() == config
    assert layer.compute_output_shape((2, 7, 4, 5)) == ((2, 4, 2, 3), (2,))
    with pytest.raises(ValueError, match="Received: align=None"):
        PolyphaseDownsample(3, return_index=True)


def test_plain_module_is_not_invariant_to_one_pixel_roll():
    x = rand(1, 8, 8, 3)
    layer = PolyphaseDownsample(4, padding="circular")
    base = np.asarray(layer(x))
    out = np.asarray(layer(np.roll(x, 1, axis=2)))
    best = min(np.abs(np.roll(base, (i, j), axis=(1, 2)) - out).max() for i in range(4) for j in range(4))
    assert best > 1e-2  # a 1-pixel shift permutes the phases; the mix is not symmetric


def test_module_mixed_precision_and_gradients():
    keras.mixed_precision.set_global_policy("mixed_float16")
    layer = PolyphaseDownsample(4, mixing="conv3d")
    x = tf.constant(rand(2, 8, 8, 3))
    with tf.GradientTape() as tape:
        y = layer(x)
        loss = tf.reduce_sum(tf.cast(y, "float32") ** 2)
    assert y.dtype == tf.float16
    assert layer.mixing_kernel.dtype == "float32"
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


def test_module_in_subclassed_model():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.down = PolyphaseDownsample(8)
            self.pool = keras.layers.GlobalAveragePooling2D()

        def call(self, x):
            return self.pool(self.down(x))

    net = Net()
    x = rand(2, 10, 10, 3)
    np.testing.assert_allclose(
        np.asarray(net(x)), _reference(net.down, x).mean(axis=(1, 2)), rtol=1e-4, atol=1e-4
    )


def test_module_config_round_trip_and_output_shape():
    layer = PolyphaseDownsample(7, mixing="conv3d", kernel_size=5, padding="circular", align="max_norm")
    clone = PolyphaseDownsample.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert layer.compute_output_shape((None, 9, 4, 3)) == (None, 5, 2, 7)
    assert layer.compute_output_shape((2, None, 1, 3)) == (2, None, 1, 7)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filters": 0}, "Received: filters=0"),
        ({"filters": -3}, "Received: filters=-3"),
        ({"filters": 2.5}, "Received: filters=2.5"),
        ({"filters": 4, "mixing": "dense"}, "Received: mixing='dense'"),
        ({"filters": 4, "padding": "foo"}, "Received: padding='foo'"),
        ({"filters": 4, "kernel_size": 4}, "Received: kernel_size=4"),
        ({"filters": 4, "kernel_size": 0}, "Received: kernel_size=0"),
        ({"filters": 4, "align": "min"}, "Received: align='min'"),
    ],
)
def test_module_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        PolyphaseDownsample(**kwargs)


def test_module_bad_input_shapes():
    with pytest.raises(ValueError, match=r"expects a 4D input.*Received: input_shape=\(2, 8, 3\)"):
        PolyphaseDownsample(4)(np.zeros((2, 8, 3), "float32"))
    with pytest.raises(ValueError, match="known number of input channels"):
        PolyphaseDownsample(4).build((None, 8, 8, None))


# --- BlurPool2D -------------------------------------------------------------


def test_binomial_filters_by_hand():
    np.testing.assert_allclose(binomial_filter(3), np.outer([1, 2, 1], [1, 2, 1]) / 16)
    np.testing.assert_allclose(binomial_filter(4), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64)
    np.testing.assert_allclose(binomial_filter(1), [[1.0]])


@pytest.mark.parametrize("filt_size", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [(8, 8), (7, 5), (1, 1)])
def test_blur_pool_matches_reference(filt_size, mode, size):
    x = rand(2, *size, 3)
    out = np.asarray(BlurPool2D(filt_size=filt_size, padding=mode)(x))
    np.testing.assert_allclose(out, reference.blur_pool(x, filt_size, 2, mode), rtol=1e-5, atol=1e-5)


def test_blur_pool_constant_is_preserved_and_not_trainable():
    layer = BlurPool2D(filt_size=5, stride=3)
    out = np.asarray(layer(np.full((1, 10, 10, 2), 3.0, "float32")))
    assert out.shape == (1, 4, 4, 2)
    np.testing.assert_allclose(out, 3.0, rtol=1e-6)
    assert layer.trainable_weights == [] and layer.weights == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filt_size": 0}, "Received: filt_size=0"),
        ({"filt_size": 8}, "Received: filt_size=8"),
        ({"stride": 0}, "Received: stride=0"),
        ({"padding": "same"}, "Received: padding='same'"),
    ],
)
def test_blur_pool_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BlurPool2D(**kwargs)


# --- AdaptivePolyphasePool2D -----------------------------------------------


def test_aps_keeps_highest_norm_phase_by_hand():
    x = np.zeros((2, 4, 4, 1), "float32")
    x[0, 1::2, 0::2] = 5.0  # phase (1, 0) is loudest in image 0
    x[1, 0::2, 1::2] = -2.0  # phase (0, 1) in image 1
    out, index = AdaptivePolyphasePool2D(return_index=True)(x)
    np.testing.assert_array_equal(np.asarray(index), [2, 1])
    np.testing.assert_array_equal(np.asarray(out)[0, ..., 0], np.full((2, 2), 5.0))
    np.testing.assert_array_equal(np.asarray(out)[1, ..., 0], np.full((2, 2), -2.0))


def test_aps_ties_go_to_the_lowest_phase():
    x = np.ones((1, 4, 4, 2), "float32")
    _, index = AdaptivePolyphasePool2D(return_index=True)(x)
    assert int(np.asarray(index)[0]) == 0


def test_aps_l1_and_l2_can_disagree():
    x = np.zeros((1, 2, 4, 1), "float32")
    x[0, 0, 0::2, 0] = [3.0, 0.0]  # phase 0: l1 3, l2 9
    x[0, 0, 1::2, 0] = [2.0, 2.0]  # phase 1: l1 4, l2 8
    _, l2 = AdaptivePolyphasePool2D(return_index=True)(x)
    _, l1 = AdaptivePolyphasePool2D(criterion="l1", return_index=True)(x)
    assert int(np.asarray(l2)[0]) == 0 and int(np.asarray(l1)[0]) == 1


def test_aps_reuses_a_given_phase_index():
    x = rand(3, 6, 6, 2)
    out = np.asarray(AdaptivePolyphasePool2D()(x, phase_index=np.array([3, 0, 1])))
    np.testing.assert_array_equal(out[0], x[0, 1::2, 1::2])
    np.testing.assert_array_equal(out[1], x[1, 0::2, 0::2])
    np.testing.assert_array_equal(out[2], x[2, 0::2, 1::2])


def test_aps_circular_shift_gives_shifted_output():
    x = rand(2, 8, 8, 3)
    base = np.asarray(AdaptivePolyphasePool2D()(x))
    out = np.asarray(AdaptivePolyphasePool2D()(np.roll(x, (3, 1), axis=(1, 2))))
    for b in range(2):  # each image's output is an exact integer roll of its original
        best = min(
            np.abs(np.roll(base[b], (i, j), axis=(0, 1)) - out[b]).max()
            for i in range(4)
            for j in range(4)
        )
        assert best == 0.0


def test_aps_odd_input_and_functional_use():
    inputs = keras.Input((7, 5, 3))
    pooled, index = AdaptivePolyphasePool2D(return_index=True)(inputs)
    reused = AdaptivePolyphasePool2D()(inputs, phase_index=index)
    model = keras.Model(inputs, [pooled, reused])
    a, b = model(rand(2, 7, 5, 3))
    assert a.shape == (2, 4, 3, 3)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_aps_bad_arguments():
    with pytest.raises(ValueError, match="Received: criterion='max'"):
        AdaptivePolyphasePool2D(criterion="max")
    with pytest.raises(ValueError, match="Received: padding='valid'"):
        AdaptivePolyphasePool2D(padding="valid")


# --- SpatialPadding2D -------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_spatial_padding_matches_numpy(mode):
    x = rand(2, 3, 2, 2)
    out = np.asarray(SpatialPadding2D(((2, 3), (4, 1)), mode=mode)(x))
    np.testing.assert_array_equal(out, reference.pad(x, 2, 3, 4, 1, mode))


def test_spatial_padding_bad_argument():
    with pytest.raises(ValueError, match="Received: padding=-1"):
        SpatialPadding2D(-1)
    with pytest.raises(ValueError, match="Received: mode='edge'"):
        SpatialPadding2D(1, mode="edge")
