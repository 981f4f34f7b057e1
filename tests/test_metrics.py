import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_shiftinv as ks
from keras_shiftinv import metrics


def dataset(images, labels=None, batch=1):
    labels = np.zeros(len(images), "int64") if labels is None else labels
    return tf.data.Dataset.from_tensor_slices((images.astype("float32"), labels)).batch(batch)


def pixel_reader(size):
    """Logits (x[0, 0], -x[0, 0]): class 0 iff the crop's top-left pixel is positive."""
    inputs = keras.Input((size, size, 3))
    first = keras.layers.Lambda(lambda x: x[:, 0, 0, :1])(inputs)
    return keras.Model(inputs, keras.layers.Concatenate()([first, -first]))


def global_pool_model(size):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def test_consistency_of_a_fixed_pixel_reader_matches_hand_calculation():
    # Crops of 8 from 12: left offsets 0..4, uniform. Columns 0-1 positive, so
    # class 0 has p = 2/5 and two crops agree with p^2 + (1-p)^2 = 13/25 = 52%.
    images = -np.ones((3000, 12, 12, 3))
    images[:, :, :2] = 1.0
    score = metrics.consistency(pixel_reader(8), dataset(images, batch=1), crop_size=8, passes=1, seed=0)
    assert abs(score - 52.0) < 3.0  # 3000 draws: standard error 0.9


def test_circular_consistency_of_a_fixed_pixel_reader_matches_hand_calculation():
    # 8x8 crop, 16 of 64 pixels positive; rolls uniform over all 64 positions
    # (max_shift 4): p = 1/4, agreement 1/16 + 9/16 = 62.5%.
    images = -np.ones((3000, 8, 8, 3))
    images[:, :4, :4] = 1.0
    score = metrics.circular_consistency(pixel_reader(8), dataset(images), crop_size=8, max_shift=4)
    assert abs(score - 62.5) < 3.0


def test_zero_shift_range_gives_exactly_100():
    images = np.random.normal(size=(20, 8, 8, 3))
    model = pixel_reader(8)
    assert metrics.consistency(model, dataset(images, batch=5), crop_size=8) == 100.0
    assert metrics.circular_consistency(model, dataset(images, batch=5), crop_size=8, max_shift=0) == 100.0


def test_circularly_invariant_models_score_exactly_100():
    images = np.random.normal(size=(64, 40, 40, 3))
    assert metrics.circular_consistency(global_pool_model(32), dataset(images, batch=16), crop_size=32,
                                        max_shift=4, passes=3) == 100.0
    model = ks.resnet18("group-aps", num_classes=10, input_shape=(32, 32, 3), width=0.125, padding="circular")
    assert metrics.circular_consistency(model, dataset(images, batch=16), crop_size=32, max_shift=4,
                                        passes=2) == 100.0


def test_top_k_accuracy_by_hand():
    inputs = keras.Input((1, 1, 3))
    model = keras.Model(inputs, keras.layers.Flatten()(inputs))  # logits = the 3 pixel values
    images = np.array([[3, 2, 1], [1, 3, 2], [2, 1, 3], [1, 2, 3]], "float32").reshape(4, 1, 1, 3)
    labels = np.array([0, 2, 1, 0])  # top-1 hits: 1st; top-2 hits: 1st, 2nd
    acc = metrics.top_k_accuracy(model, dataset(images, labels, 2), crop_size=1, k=(1, 2, 3))
    assert acc == {1: 25.0, 2: 50.0, 3: 100.0}


def test_stability_curves_of_a_fixed_pixel_reader():
    # The top-left pixel walks (0,0), (0,1), (1,1), (1,2), ...; values chosen so
    # p(class 0) = sigmoid(2 * v) is known at each position.
    images = np.zeros((1, 12, 12, 3))
    values = np.arange(144).reshape(12, 12) / 100.0
    images[0] = values[..., None]
    out = metrics.stability_curves(pixel_reader(4), dataset(images), crop_size=4, positions=16)
    expected = [1 / (1 + np.exp(-2 * values[t, l])) for t, l in metrics.shift_offsets(16)]
    np.testing.assert_allclose(out["curves"][0], expected, rtol=1e-5)
    assert out["mean_std"] == pytest.approx(np.std(expected), rel=1e-5)
    assert out["mean_range"] == pytest.approx(max(expected) - min(expected), rel=1e-5)
    assert metrics.shift_offsets(5) == [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2)]


def test_mean_absolute_change_by_hand():
    images = np.zeros((1, 5, 5, 3))
    images[0, 0, 1] = 1.0  # right neighbour of the top-left crop pixel (start 0)
    out = metrics.mean_absolute_change(pixel_reader(4), dataset(images), crop_size=4)
    # unshifted p(class 0) = 0.5; right shift: sigmoid(2) ; down shift: 0.5
    assert out == pytest.approx((abs(0.5 - 1 / (1 + np.exp(-2))) + 0) / 2, rel=1e-6)


def test_bad_protocols():
    images = np.zeros((2, 8, 8, 3))
    with pytest.raises(ValueError, match="Received: crop_size=10"):
        metrics.consistency(pixel_reader(10), dataset(images), crop_size=10)
    with pytest.raises(ValueError, match="Received: max_shift=9"):
        metrics.circular_consistency(pixel_reader(8), dataset(images), crop_size=8, max_shift=9)
    with pytest.raises(ValueError, match="16 positions need images at least"):
        metrics.stability_curves(pixel_reader(8), dataset(images), crop_size=8, positions=16)
