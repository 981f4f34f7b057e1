"""The gather-based phase selection and the inference path choice (docs/guide-speed.md, "Inference")."""

import numpy as np
import pytest
import tensorflow as tf

from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import _utils
from keras_shiftinv.layers._utils import shifted_pixels
from keras_shiftinv.layers._utils import phase_pad


@pytest.mark.parametrize("stride", [1, 2])
def test_shifted_pixels_reads_exactly_the_chosen_pixels(stride):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6, 8, 3)).astype("float32")
    phases = np.array([0, 1, 2, 3], "int32")
    for b, p in enumerate(phases):
        dy, dx = divmod(int(p), 2)
        keep = np.zeros((6, 8), bool)
        if stride == 2:
            keep[dy::2, dx::2] = True
        else:
            keep[:] = True
        x[b][~keep] = np.nan  # another phase's NaN must not leak
    want = []
    for b, p in enumerate(phases):
        dy, dx = divmod(int(p), 2)
        rolled = np.roll(x[b], (-dy, -dx), axis=(0, 1))
        want.append(rolled if stride == 1 else x[b, dy::2, dx::2])
    # Dynamic batch and spatial sizes too (the exported signatures' batch None).
    fn = tf.function(lambda v, i: shifted_pixels(v, i, stride),
                     input_signature=[tf.TensorSpec([None, None, None, 3]), tf.TensorSpec([None], tf.int32)])
    for got in (shifted_pixels(x, phases, stride), fn(x, phases)):
        np.testing.assert_array_equal(np.asarray(got), np.stack(want))  # bit for bit


def test_inference_and_training_path_choices_compute_the_same_function():
    layer = PolyphaseDownsample(32, mixing="group")
    x = np.random.default_rng(1).normal(size=(8, 32, 32, 16)).astype("float32")
    layer.build(x.shape)
    pixels = 8 * 16 * 16
    # This site is one where the two cost models disagree (docs/guide-speed.md, "Inference").
    assert layer._fusing_pays(pixels) and not layer._fusing_pays(pixels, training=True)
    inference = np.asarray(layer(x))
    training = np.asarray(layer(x, training=True))
    np.testing.assert_allclose(inference, training, rtol=1e-4, atol=1e-4)
    padded = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]])  # zeros: each phase padded by k // 2 = 1
    np.testing.assert_allclose(inference, np.asarray(layer._fused(padded)), rtol=0, atol=0)


def numpy_split(x, strides, pad, mode, phase_index):
    """Roll each item by minus its phase's offsets, stack the phases (phase-major channels), pad: numpy."""
    offsets = [np.unravel_index(p, strides) for p in range(int(np.prod(strides)))]
    if phase_index is not None:
        x = np.stack([np.roll(item, [-o for o in offsets[p]], axis=tuple(range(len(strides))))
                      for item, p in zip(x, phase_index)])
    parts = [x[(slice(None), *[slice(o, None, s) for o, s in zip(offset, strides)])] for offset in offsets]
    stack = np.concatenate(parts, axis=-1)  # channel p*C + c
    numpy_mode = {"circular": "wrap", "reflect": "reflect", "zeros": "constant"}[mode]
    return np.pad(stack, [(0, 0)] + [(pad, pad)] * len(strides) + [(0, 0)], mode=numpy_mode)


def numpy_phase_pad(x, strides, pad, mode, phase_index):
    """`numpy_split`, then each padded phase map put back in place: entry `s*i + q` from phase `q`."""
    stack = numpy_split(x, strides, pad, mode, phase_index)  # (B, *half, P*C)
    b, c = x.shape[0], x.shape[-1]
    half = stack.shape[1:-1]
    out = np.zeros((b, *[h * s for h, s in zip(half, strides)], c), x.dtype)
    for p, offset in enumerate(np.ndindex(*strides)):
        out[(slice(None), *[slice(o, None, s) for o, s in zip(offset, strides)])] = stack[..., p * c:(p + 1) * c]
    return out


@pytest.mark.parametrize("strides, shape", [((2, 2), (3, 6, 8, 5)), ((2,), (2, 10, 3)), ((1, 2, 2), (2, 3, 4, 6, 2)),
                                            ((2, 2), (2, 2, 2, 3))])
@pytest.mark.parametrize("mode", ["circular", "reflect", "zeros"])
def test_phase_pad_is_roll_split_pad_and_put_back_as_numpy_does_them(strides, shape, mode, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype("float32")
    phases = rng.integers(0, int(np.prod(strides)), shape[0]).astype("int32")
    for pad in (0, 1, 2):
        if mode == "reflect" and pad >= min(n // s for n, s in zip(shape[1:-1], strides)):
            continue  # np.pad's reflect differs from the package's for pads as wide as the axis
        for index in (None, phases):
            want = numpy_phase_pad(x, strides, pad, mode, index)
            got = phase_pad(x, strides, pad, mode, index)  # static: one gather from a table
            np.testing.assert_array_equal(np.asarray(got), want)
            spec = tf.TensorSpec([None] * (len(shape) - 1) + [shape[-1]])  # dynamic: roll, then pad per axis
            fn = tf.function(lambda v, i: phase_pad(v, strides, pad, mode, i),
                             input_signature=[spec, tf.TensorSpec([None], tf.int32)])
            if index is not None:
                np.testing.assert_array_equal(np.asarray(fn(x, index)), want)
    monkeypatch.setattr(_utils, "PAD_TABLE_LIMIT", 0)  # a table too large: roll, then pad per axis, same values
    np.testing.assert_array_equal(np.asarray(phase_pad(x, strides, 1, mode, phases)),
                                  numpy_phase_pad(x, strides, 1, mode, phases))


def test_phase_pad_moves_nan_only_where_its_pixel_goes():
    """One gather, no arithmetic: a NaN lands exactly where numpy's roll, split, pad and put-back put its pixel."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 6, 6, 2)).astype("float32")
    x[rng.random(x.shape) < 0.05] = np.nan
    phases = np.array([0, 1, 2, 3], "int32")
    got = np.asarray(phase_pad(x, (2, 2), 1, "circular", phases))
    want = numpy_phase_pad(x, (2, 2), 1, "circular", phases)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got, want)
