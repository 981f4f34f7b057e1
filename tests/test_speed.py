"""The gather-based phase selection and the inference path choice (docs/guide-speed.md, "Inference")."""

import numpy as np
import pytest
import tensorflow as tf

from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers._utils import shifted_pixels


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
    padded = tf.pad(tf.nn.space_to_depth(x, 2), [[0, 0], [1, 1], [1, 1], [0, 0]])  # zeros, k // 2 = 1
    np.testing.assert_allclose(inference, np.asarray(layer._fused(padded)), rtol=0, atol=0)
