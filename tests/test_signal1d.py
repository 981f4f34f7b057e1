"""The 1-D example: MNIST-1D data, `models.resnet1d`, the experiment's metrics, saving and export."""

import os

import keras
import numpy as np
import pytest

from helpers import perturb
from keras_shiftinv.data.signal1d import mnist1d
from keras_shiftinv.experiments import signal1d
from keras_shiftinv.models import METHODS_1D
from keras_shiftinv.models import resnet1d

SMALL = (4, 8, 8)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def test_mnist1d_is_generated_locally_reproducibly_and_leaves_global_rngs_alone():
    np.random.seed(123)
    expected_next = np.random.rand()
    np.random.seed(123)
    a = mnist1d(num_samples=200)
    assert np.random.rand() == expected_next  # the generator's global seeding was undone
    b = mnist1d(num_samples=200)
    other = mnist1d(seed=7, num_samples=200)
    assert a["x_train"].shape == (160, 40, 1) and a["x_test"].shape == (40, 40, 1)
    assert a["x_train"].dtype == np.float32 and set(a["y_train"].tolist()) == set(range(10))
    np.testing.assert_array_equal(a["x_train"], b["x_train"])
    assert not np.array_equal(a["x_train"], other["x_train"])


@pytest.mark.slow  # five builds; resnet1d's docstring example checks group-aps in the default suite
def test_resnet1d_aligned_methods_are_exactly_invariant_and_the_others_are_not():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 40, 1)).astype("float32")
    shifts = [0, 1, 3, 17, 38]  # odd and even
    batch = np.concatenate([np.roll(x, s, axis=1) for s in shifts])  # (5 * 2, 40, 1), one call per model
    for method in METHODS_1D:
        keras.utils.set_random_seed(1)
        model = perturb(resnet1d(method, filters=SMALL, padding="circular"))
        out = _np(model.predict_on_batch(batch)).reshape(len(shifts), 2, -1)  # (shift, item, class)
        gaps = [np.abs(out[i] - out[0]).max() for i in range(1, len(shifts))]
        if method in ("aps", "group-aps"):
            assert max(gaps) < 1e-4, (method, gaps)
        else:
            assert gaps[0] > 1e-3, (method, gaps)  # a one-sample shift moves the logits


def test_resnet1d_refuses_conv3d_and_bad_arguments():
    with pytest.raises(ValueError, match="Received: method='conv3d-aps'"):
        resnet1d("conv3d-aps")
    with pytest.raises(ValueError, match=r"Received: input_shape=\(40, 40, 1\)"):
        resnet1d(input_shape=(40, 40, 1))
    with pytest.raises(ValueError, match=r"Received: filters=\(8, 0\)"):
        resnet1d(filters=(8, 0))


@pytest.mark.slow  # tests/test_layers_nd.py has the default-suite round trip and export of 1-D layers
def test_resnet1d_keras_file_in_a_fresh_process_and_saved_model_export(tmp_path, fresh_process):
    import tensorflow as tf

    keras.utils.set_random_seed(2)
    model = perturb(resnet1d("group-aps", filters=SMALL, padding="circular", input_shape=(None, 1)))
    x = np.random.default_rng(3).normal(size=(3, 40, 1)).astype("float32")
    expected = _np(model(x))
    np.save(tmp_path / "x.npy", x)
    model.save(tmp_path / "m.keras")
    loaded = fresh_process.load([tmp_path / "m.keras"], x=tmp_path / "x.npy")[str(tmp_path / "m.keras")]
    np.testing.assert_array_equal(np.array(loaded["outputs"], "float32"), expected)
    model.export(str(tmp_path / "sm"), format="tf_saved_model", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(served.serve(tf.constant(x)).numpy(), expected, rtol=1e-5, atol=1e-5)
    rolled = served.serve(tf.constant(np.roll(x, 5, axis=1))).numpy()  # still invariant when served
    np.testing.assert_allclose(rolled, expected, rtol=1e-4, atol=1e-4)
    longer = np.random.default_rng(4).normal(size=(2, 64, 1)).astype("float32")  # any length
    np.testing.assert_allclose(served.serve(tf.constant(longer)).numpy(), _np(model(longer)), rtol=1e-5, atol=1e-5)


def test_shift_helpers_and_scores_against_hand_computed_values():
    x = np.arange(1.0, 6.0, dtype="float32").reshape(1, 5, 1)
    assert signal1d.shift_signals(x, [-2])[0, :, 0].tolist() == [3.0, 4.0, 5.0, 0.0, 0.0]
    assert signal1d.roll_signals(x, [2])[0, :, 0].tolist() == [4.0, 5.0, 1.0, 2.0, 3.0]
    # A global-average classifier is invariant to circular shifts: 100% circular consistency,
    # and its accuracy is the numpy argmax's.
    inputs = keras.Input((40, 2))
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling1D()(inputs)))
    rng = np.random.default_rng(5)
    model.get_layer("head").set_weights([rng.normal(size=(2, 3)).astype("float32"), np.zeros(3, "float32")])
    signals = rng.normal(size=(50, 40, 2)).astype("float32")
    labels = rng.integers(0, 3, size=50)
    scores = signal1d.evaluate(model, signals, labels, passes=2)
    predicted = (signals.mean(axis=1) @ model.get_layer("head").get_weights()[0]).argmax(-1)
    assert scores["accuracy"] == pytest.approx(100.0 * np.mean(predicted == labels))
    assert scores["circular_consistency"] == 100.0
    assert scores["circular_accuracy"] == pytest.approx(scores["accuracy"])
    assert scores["consistency"] < 100.0  # zero-filled shifts drop samples and change the means


def test_command_refuses_unknown_methods_in_one_line(tmp_path, capsys):
    assert signal1d.main(["--out", str(tmp_path / "out"), "--methods", "conv3d"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Received: methods=['conv3d']" in err[0]
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.slow
def test_command_trains_and_writes_the_table(tmp_path):
    assert signal1d.main(["--out", str(tmp_path), "--methods", "stride", "aps", "--seeds", "0", "--epochs", "1"]) == 0
    import json

    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["summary"]) == {"stride", "aps"}
    assert results["runs"][1]["circular_consistency"] == 100.0  # aps, exactly invariant
    assert "| `aps` |" in (tmp_path / "results.md").read_text()
    assert results["provenance"]["wall_seconds"] > 0
