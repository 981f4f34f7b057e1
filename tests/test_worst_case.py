"""Worst-case shift accuracy against hand calculations and exact invariance."""

import keras
import numpy as np
import pytest

from keras_shiftinv.layers import SpatialPadding2D
from keras_shiftinv.metrics import crop_offsets
from keras_shiftinv.metrics import worst_case_accuracy


def pixel_model(side=32):
    """Class 1 iff channel 0 of the crop's top-left pixel is > 0, else class 0."""
    x = keras.Input((side, side, 3))
    pixel = keras.layers.Cropping2D(((0, side - 1), (0, side - 1)))(x)  # (B, 1, 1, 3)
    logits = keras.layers.Dense(2)(keras.layers.Flatten()(pixel))
    model = keras.Model(x, logits)
    model.set_weights([np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]), np.zeros(2)])
    return model


def test_crop_offsets_cover_the_window():
    offsets = crop_offsets(40, 32)
    assert len(offsets) == 81 == len(set(offsets))
    assert {t for t, _ in offsets} == set(range(9)) == {l for _, l in offsets}
    with pytest.raises(ValueError, match="Received: crop_size=41"):
        crop_offsets(40, 41)


def test_fixed_pixel_model_hand_calculation():
    # The crop at offset (t, l) reads image[t, l]: the model sees image[0:9, 0:9]; the center
    # crop (offset 4) reads image[4, 4].
    images = np.zeros((6, 40, 40, 3), "float32")
    labels = np.array([1, 0, 1, 0, 0, 1])
    images[0, :9, :9, 0] = 1.0  # 1 everywhere, label 1: correct at all 81 offsets
    #         image 1: all 0, label 0: correct at all 81 offsets
    images[2, 4, 4, 0] = 1.0  # 1 only at the center, label 1: top-1 right, 80 offsets wrong
    images[3, 8, 8, 0] = 1.0  # 1 only at the last offset, label 0: top-1 right, offset (8, 8) wrong
    images[4, 4, 4, 0] = 1.0  # 1 at the center, label 0: top-1 wrong
    images[5, :9, :9, 0] = 1.0
    images[5, 0, 8, 0] = -1.0  # label 1, wrong only at offset (0, 8)
    images[:, 9:, :, 0] = images[:, :, 9:, 0] = 5.0  # never read by any crop
    # By hand: worst-case correct {0, 1} = 2/6; center correct {0, 1, 2, 3, 5} = 5/6;
    # labels not constant over offsets {2, 3, 4, 5} = 4/6.
    dataset = [(images[:4], labels[:4]), (images[4:], labels[4:])]  # two batches
    for crops_per_call in (1, 7, 10_000):  # one offset per call, uneven groups, all at once
        result = worst_case_accuracy(pixel_model(), dataset, crop_size=32, crops_per_call=crops_per_call)
        assert result["worst_case_accuracy"] == pytest.approx(100 * 2 / 6)
        assert result["center_top1"] == pytest.approx(100 * 5 / 6)
        assert result["flip_rate"] == pytest.approx(100 * 4 / 6)
        assert result["offsets"] == 81 and result["images"] == 6
    assert worst_case_accuracy(pixel_model(), dataset, 32, max_images=2)["worst_case_accuracy"] == 100.0


def test_fixed_pixel_model_matches_numpy_on_random_images():
    rng = np.random.default_rng(0)
    images = rng.choice([-1.0, 1.0], size=(50, 36, 36, 3), p=[0.03, 0.97]).astype("float32")
    labels = rng.integers(0, 2, 50)
    labels[:25] = 1
    seen = images[:, :5, :5, 0] > 0  # (N, 5, 5): what the 25 offsets read
    expect_worst = np.mean(np.all(seen == labels[:, None, None].astype(bool), axis=(1, 2)))
    expect_flip = np.mean(np.any(seen != seen[:, :1, :1], axis=(1, 2)))
    result = worst_case_accuracy(pixel_model(), [(images, labels)], crop_size=32, crops_per_call=300)
    assert result["offsets"] == 25
    assert 0 < expect_worst < 1 and 0 < expect_flip < 1  # the case is not degenerate
    assert result["worst_case_accuracy"] == pytest.approx(100 * expect_worst)
    assert result["flip_rate"] == pytest.approx(100 * expect_flip)


def circular_max_model(num_classes=4):
    """Circular 3x3 convs, ReLU, global max: exactly invariant to circular shifts.

    Each output pixel of a circular conv is the same sum in the same order for a
    rolled input, and the max of a permuted set is the same float: bit-exact.
    """
    x = keras.Input((32, 32, 3))
    h = keras.layers.Conv2D(8, 3)(SpatialPadding2D(1, mode="circular")(x))
    h = keras.layers.Conv2D(8, 3, activation="relu")(SpatialPadding2D(1, mode="circular")(h))
    return keras.Model(x, keras.layers.Dense(num_classes)(keras.layers.GlobalMaxPooling2D()(h)))


def test_exactly_invariant_model_worst_case_equals_top1():
    # Objects inside rows/cols 8..31 of a zero 40x40 image lie inside every 32x32 crop
    # (offsets 0..8), so each crop is a circular shift of the center crop: the model's
    # logits are bit-identical at all 81 offsets.
    model = circular_max_model()
    rng = np.random.default_rng(1)
    images = np.zeros((40, 40, 40, 3), "float32")
    images[:, 8:32, 8:32] = rng.normal(size=(40, 24, 24, 3))
    center = np.asarray(model.predict_on_batch(images[:, 4:36, 4:36])).argmax(-1)
    labels = np.where(np.arange(40) % 3 == 0, (center + 1) % 4, center)  # a third wrong
    for t, l in ((0, 0), (8, 3), (5, 8)):
        shifted = np.asarray(model.predict_on_batch(images[:, t : t + 32, l : l + 32]))
        np.testing.assert_array_equal(shifted, model.predict_on_batch(images[:, 4:36, 4:36]))
    result = worst_case_accuracy(model, [(images, labels)], crop_size=32)
    assert result["center_top1"] == pytest.approx(100 * np.mean(center == labels))
    assert result["worst_case_accuracy"] == result["center_top1"] and result["flip_rate"] == 0.0

    # The same model is not crop-invariant once a shift reveals new content.
    images[:, :8] = rng.normal(size=(40, 8, 40, 3))
    revealed = worst_case_accuracy(model, [(images, labels)], crop_size=32)
    assert revealed["flip_rate"] > 0 and revealed["worst_case_accuracy"] < revealed["center_top1"]


@pytest.mark.parametrize(
    "images, crop_size, message",
    [
        (np.zeros((2, 40, 36, 3), "float32"), 32, "square image batches"),
        (np.zeros((2, 30, 30, 3), "float32"), 32, "Received: crop_size=32"),
        (np.zeros((0, 40, 40, 3), "float32"), 32, "at least one image"),
    ],
)
def test_bad_input(images, crop_size, message):
    with pytest.raises(ValueError, match=message):
        worst_case_accuracy(pixel_model(), [(images, np.zeros(len(images), "int64"))], crop_size)
