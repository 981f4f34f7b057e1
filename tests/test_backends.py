"""Keras 3 on every backend (docs/backends.md).

The tests marked `backend_neutral` need only keras, numpy and one backend: `.ci/run` runs them a
second time with `KERAS_BACKEND=jax` in a venv without TensorFlow (`-m backend_neutral`). The
others need TensorFlow and JAX side by side (a `.keras` file moving between them, JAX training).
"""

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

import keras_shiftinv as ks
import reference
from helpers import small_residual_net
from keras_shiftinv import metrics
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import PolyphaseUpsample2D
from keras_shiftinv.saving import load_model
from keras_shiftinv.saving import read_metadata
from keras_shiftinv.saving import save_model

neutral = pytest.mark.backend_neutral
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_JAX = importlib.util.find_spec("jax") is not None
HAS_TF = importlib.util.find_spec("tensorflow") is not None


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def randomize(model, seed=0):
    """Random weights everywhere (positive BN variances), so nothing is trivially symmetric."""
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.weights:
        value = rng.normal(size=w.shape).astype("float32")
        weights.append(np.abs(value) + 0.5 if "variance" in w.path else value)
    model.set_weights(weights)
    return model


def run_python(code, env=None, timeout=300):
    """Runs `code` in a fresh interpreter that imports this tree."""
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


# --- the core on this process's backend --------------------------------------------------------


@neutral
@pytest.mark.parametrize("mixing", ["group", "conv3d"])
@pytest.mark.parametrize("padding,align", [("circular", "max_norm"), ("zeros", None), ("reflect", None)])
def test_polyphase_downsample_matches_numpy_reference(mixing, padding, align):
    x = rand(2, 7, 6, 3)
    layer = PolyphaseDownsample(5, mixing=mixing, padding=padding, align=align, use_bias=True)
    layer.build(x.shape)
    layer.set_weights([rand(*w.shape, seed=i + 1) for i, w in enumerate(layer.get_weights())])
    weights = [np.asarray(w, "float64") for w in layer.get_weights()]
    expected = reference.polyphase_downsample(x, weights, mixing, padding, align, use_bias=True)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-4)


@neutral
@pytest.mark.parametrize("filt_size", [1, 3, 4])
@pytest.mark.parametrize("padding", ["zeros", "reflect", "circular"])
def test_blur_pool_matches_numpy_reference(filt_size, padding):
    x = rand(2, 7, 8, 3)
    out = np.asarray(BlurPool2D(filt_size=filt_size, padding=padding)(x))
    np.testing.assert_allclose(out, reference.blur_pool(x, filt_size, 2, padding), rtol=1e-5, atol=1e-5)


@neutral
def test_polyphase_upsample_matches_numpy_reference():
    y = rand(3, 4, 5, 2)
    phases = np.array([3, 0, 2])
    layer = PolyphaseUpsample2D(6, kernel_size=3, padding="circular")
    layer.build(y.shape)
    layer.set_weights([rand(*w.shape, seed=i + 1) for i, w in enumerate(layer.get_weights())])
    kernel, bias = (np.asarray(w, "float64") for w in layer.get_weights())
    expected = reference.polyphase_upsample(y, phases, "learned", kernel, bias, "circular")
    np.testing.assert_allclose(np.asarray(layer(y, phase_index=phases)), expected, rtol=1e-4, atol=1e-4)


def _shifts(seed, span):
    rng = np.random.default_rng(seed)
    return [(1, 0), (0, 1), (1, 1), (2, 3)] + [tuple(int(v) for v in rng.integers(-span, span, 2)) for _ in range(3)]


@neutral
@pytest.mark.parametrize("method", ["aps", "group-aps", "conv3d-aps"])
def test_aligned_resnet18_is_exactly_invariant_to_circular_shifts(method):
    model = ks.resnet18(method, num_classes=5, input_shape=(32, 32, 3), width=0.125, padding="circular")
    x = rand(1, 32, 32, 3, seed=3)
    shifts = _shifts(7, 32)
    logits = np.asarray(model.predict(np.concatenate([np.roll(x, s, axis=(1, 2)) for s in shifts]), verbose=0))
    scale = np.abs(logits).max()
    np.testing.assert_allclose(logits, np.broadcast_to(logits[0], logits.shape), atol=1e-5 * scale)
    # ... and not trivially: the unaligned module with the same weights is not invariant.
    plain = ks.resnet18("group", num_classes=5, input_shape=(32, 32, 3), width=0.125, padding="circular")
    moved = np.asarray(plain.predict(np.concatenate([x, np.roll(x, (1, 0), axis=(1, 2))]), verbose=0))
    assert np.abs(moved[0] - moved[1]).max() > 1e-3 * np.abs(moved).max()


@neutral
def test_aligned_unet_is_exactly_equivariant_to_circular_shifts():
    model = randomize(ks.unet("aps", 4, (16, 24, 2), depth=3, width=0.0625, padding="circular"))
    x = rand(2, 16, 24, 2, seed=4)
    base = np.asarray(model(x))
    for shift in _shifts(8, 12):
        out = np.asarray(model(np.roll(x, shift, axis=(1, 2))))
        error = np.abs(out - np.roll(base, shift, axis=(1, 2))).max() / np.abs(base).max()
        assert error < 1e-5, (shift, error)


def _small_functional_net():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="down1")(inputs)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="down2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


@neutral
def test_convert_small_functional_model_to_an_exactly_invariant_one():
    model = randomize(_small_functional_net(), seed=5)
    converted, report = ks.convert(model, "aps", padding="circular")
    assert report.counts()["replaced"] == 3, str(report)
    x = rand(2, 32, 32, 3, seed=6)
    ref, orig = np.asarray(converted(x)), np.asarray(model(x))
    for shift in [(1, 0), (3, 5), (-7, 2)]:
        moved = np.roll(x, shift, axis=(1, 2))
        assert np.abs(np.asarray(converted(moved)) - ref).max() <= 1e-5 * np.abs(ref).max(), shift
    assert np.abs(np.asarray(model(np.roll(x, (1, 0), axis=(1, 2)))) - orig).max() > 1e-3 * np.abs(orig).max()


@neutral
def test_keras_file_round_trip_gives_equal_logits(tmp_path):
    model = randomize(ks.resnet18("conv3d-aps", num_classes=4, input_shape=(32, 32, 3), width=0.125))
    x = rand(2, 32, 32, 3, seed=9)
    path = save_model(model, str(tmp_path / "m.keras"), {"class_names": list("abcd")})
    loaded = load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert read_metadata(path)["class_names"] == list("abcd")


@neutral
def test_model_fit_learns_a_shift_invariant_task():
    # Class 1 iff the image holds a bright 2x2 square, anywhere: a few steps of SGD must learn it.
    rng = np.random.default_rng(0)
    x = rng.normal(scale=0.1, size=(64, 16, 16, 1)).astype("float32")
    y = np.arange(64) % 2
    for i in np.flatnonzero(y):
        top, left = rng.integers(0, 14, 2)
        x[i, top : top + 2, left : left + 2] += 3.0
    model = keras.Sequential([
        keras.Input((16, 16, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        PolyphaseDownsample(8, align="max_norm", padding="circular"),
        BlurPool2D(3),
        keras.layers.GlobalMaxPooling2D(),
        keras.layers.Dense(2),
    ])
    model.compile(keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=8, verbose=0, shuffle=False)
    loss = history.history["loss"]
    assert loss[-1] < 0.5 * loss[0], loss
    assert history.history["accuracy"][-1] >= 0.9, history.history["accuracy"]


# --- metrics on numpy arrays ----------------------------------------------------------------------


def _pixel_reader(size):
    """Logits (0, v) with v the crop's top-left pixel: class 1 iff it is > 0 (ties go to class 0)."""
    x = keras.Input((size, size, 1))
    top_left = keras.layers.Cropping2D(((0, size - 1), (0, size - 1)))(x)
    model = keras.Model(x, keras.layers.Dense(2)(keras.layers.Flatten()(top_left)))
    model.set_weights([np.array([[0.0, 1.0]]), np.zeros(2)])
    return model


@neutral
def test_worst_case_accuracy_on_numpy_arrays_by_hand():
    images = np.zeros((2, 3, 3, 1), "float32")
    images[0, 0, 0] = 1.0  # class 1 at offset (0, 0) only (the center one); image 1: class 0 everywhere
    result = metrics.worst_case_accuracy(_pixel_reader(2), (images, np.array([1, 0])), crop_size=2)
    assert result["worst_case_accuracy"] == 50.0  # image 0 is wrong at 3 of its 4 offsets
    assert result["flip_rate"] == 50.0
    assert result["center_top1"] == 100.0
    assert (result["offsets"], result["images"]) == (4, 2)


@neutral
def test_consistency_on_numpy_arrays_by_hand():
    # Image 0 is class 1 exactly when the crop starts in row 0: two uniform offsets in {0, 1}^2 agree
    # with probability 1/2; image 1 is class 0 at every offset. Expected 75%, 800 pairs per image.
    images = np.zeros((2, 3, 3, 1), "float32")
    images[0, 0, :] = 1.0
    data = (images, np.array([1, 0]))
    score = metrics.consistency(_pixel_reader(2), data, crop_size=2, passes=800, seed=0)
    assert abs(score - 75.0) < 5.0, score  # the binomial standard deviation is 1.25 points
    # The same pairs whether the arrays come whole or as a list of batches.
    assert metrics.consistency(_pixel_reader(2), [data], crop_size=2, passes=800, seed=0) == score


@neutral
def test_circular_consistency_on_numpy_arrays_by_hand():
    # 2x2 images, no crop; rolls in {-1, 0}^2. Class 1 only when the bright pixel (0, 0) stays in
    # place (1 of 4 rolls): P(agree) = (1/4)^2 + (3/4)^2 = 62.5%.
    images = np.zeros((1, 2, 2, 1), "float32")
    images[0, 0, 0] = 1.0
    score = metrics.circular_consistency(_pixel_reader(2), (images, np.array([1])), crop_size=2, max_shift=1,
                                         passes=800, seed=0)
    assert abs(score - 62.5) < 7.0, score  # standard deviation 1.7 points


@neutral
def test_segmentation_metrics_on_numpy_arrays_by_hand():
    # A per-pixel model: class 1 iff the pixel is > 0. Exactly equivariant and pointwise.
    x = keras.Input((4, 4, 1))
    model = keras.Model(x, keras.layers.Conv2D(2, 1)(x))
    model.set_weights([np.array([[[[0.0, 1.0]]]]), np.zeros(2)])
    images = np.zeros((1, 4, 4, 1), "float32")
    images[0, :2, :2] = 1.0  # predicted class 1 on 4 pixels
    masks = np.zeros((1, 4, 4), "int64")
    masks[0, :2, :3] = 1  # true class 1 on 6 pixels; 2 of them predicted 0
    scores = metrics.segmentation_scores(model, (images, masks), num_classes=2)
    assert scores["pixel_accuracy"] == 100.0 * 14 / 16
    # IoU class 1: 4 / 6; class 0: 10 / 12.
    np.testing.assert_allclose(scores["iou"], [10 / 12, 4 / 6])
    np.testing.assert_allclose(scores["miou"], 100.0 * (10 / 12 + 4 / 6) / 2)
    shifted = metrics.shift_metrics(model, (images, masks), [(1, 0), (1, 3), (-2, 1)])
    assert shifted == {"circular_massc": 100.0, "crop_massc": 100.0, "equivariance_error": 0.0}


@neutral
def test_numpy_input_with_unequal_lengths_is_a_value_error():
    with pytest.raises(ValueError, match="Received: len\\(images\\)=2, len\\(labels\\)=3"):
        metrics.worst_case_accuracy(_pixel_reader(2), (np.zeros((2, 3, 3, 1)), np.zeros(3)), crop_size=2)


# --- without TensorFlow, or without the backend: one line that says what to install ---------------

BLOCK = "import sys; sys.modules[{name!r}] = None  # as if not installed\n"


@neutral
@pytest.mark.skipif(not HAS_JAX, reason="needs jax")
def test_without_tensorflow_the_core_works_and_each_tf_entry_point_fails_in_one_line():
    code = BLOCK.format(name="tensorflow") + """
import numpy as np
import keras_shiftinv as ks
from keras_shiftinv import conversion, layers, methods, metrics, models, saving
import keras
assert keras.config.backend() == "jax"
print(ks.resnet18("aps", num_classes=2, input_shape=(32, 32, 3), width=0.125)(np.zeros((1, 32, 32, 3))).shape)
for what in ("import keras_shiftinv.export", "ks.export_saved_model", "import keras_shiftinv.data",
             "import keras_shiftinv.training", "from keras_shiftinv.export import export_onnx"):
    try:
        exec(what)
        print("NO ERROR", what)
    except ModuleNotFoundError as e:
        print(what, "->", e)
"""
    out = run_python(code, {"KERAS_BACKEND": "jax"})
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "(1, 2)"
    assert len(lines) == 6 and not any("NO ERROR" in line for line in lines), out.stdout
    for line in lines[1:]:
        assert 'needs TensorFlow, which is not installed: pip install "keras-shiftinv[tf]"' in line, line


@neutral
@pytest.mark.skipif(not HAS_JAX, reason="needs jax")
def test_cli_without_tensorflow_is_one_line_and_exit_2():
    code = BLOCK.format(name="tensorflow") + """
import runpy
sys.argv = ["shiftinv", "train", "--help"]
runpy.run_module("keras_shiftinv", run_name="__main__")
"""
    out = run_python(code, {"KERAS_BACKEND": "jax"})
    assert out.returncode == 2, out.stderr[-3000:]
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        'shiftinv: error: the shiftinv command needs TensorFlow (tf.data input, export), which is not '
        'installed: pip install "keras-shiftinv[tf]" (or pip install tensorflow)'
    ]


@neutral
def test_missing_backend_is_one_line_for_the_cli_and_the_package():
    code = BLOCK.format(name="jax") + """
import keras_shiftinv as ks  # imports: the names fail on use
try:
    ks.resnet18
except ModuleNotFoundError as e:
    print(e)
import runpy
sys.argv = ["shiftinv", "train", "--help"]
runpy.run_module("keras_shiftinv", run_name="__main__")
"""
    out = run_python(code, {"KERAS_BACKEND": "jax"})
    assert out.returncode == 2, out.stderr[-3000:]
    message = 'the Keras backend is jax (KERAS_BACKEND) but jax is not installed: pip install "keras-shiftinv[jax]"'
    assert out.stdout.splitlines() == [f"keras_shiftinv.resnet18: {message}"]
    assert out.stderr.splitlines() == [f"shiftinv: error: {message}"]


# --- TensorFlow and JAX side by side -------------------------------------------------------------

both = pytest.mark.skipif(not (HAS_JAX and HAS_TF), reason="needs TensorFlow and JAX")


@both
@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="this process must run TensorFlow")
def test_keras_file_moves_between_tensorflow_and_jax_with_equal_logits(tmp_path):
    x = 4 * rand(3, 32, 32, 3, seed=11)  # logits of order 1 from the small net's initial weights
    np.save(tmp_path / "x.npy", x)
    methods = ["conv3d-aps", "blur"]
    for i, method in enumerate(methods):  # saved on TF (this process); Keras's own initial weights
        keras.utils.set_random_seed(i)
        model, _ = small_residual_net(method)  # resnet18's layers, fewer ops for JAX to run one by one
        save_model(model, str(tmp_path / f"tf-{method}.keras"))
        np.save(tmp_path / f"tf-{method}.npy", np.asarray(model(x)))
    out = run_python(f"""
        import sys
        import numpy as np, keras
        from keras_shiftinv.saving import load_model, save_model
        sys.path.insert(0, {os.path.join(ROOT, "tests")!r})
        from helpers import small_residual_net
        assert keras.config.backend() == "jax"
        d = {str(tmp_path)!r}
        x = np.load(d + "/x.npy")
        for i, method in enumerate({methods!r}):
            logits = np.asarray(load_model(f"{{d}}/tf-{{method}}.keras")(x))
            print(method, float(np.abs(logits - np.load(f"{{d}}/tf-{{method}}.npy")).max()))
            keras.utils.set_random_seed(100 + i)
            model, _ = small_residual_net(method)
            save_model(model, f"{{d}}/jax-{{method}}.keras")
            np.save(f"{{d}}/jax-{{method}}.npy", np.asarray(model(x)))
    """, {"KERAS_BACKEND": "jax"})
    assert out.returncode == 0, out.stderr[-3000:]
    for line in out.stdout.splitlines():  # TF -> JAX
        method, diff = line.split()
        assert float(diff) <= 1e-4, line
    for method in methods:  # logits of a real scale: 1e-4 is a real bound
        assert 0.05 < np.abs(np.load(tmp_path / f"tf-{method}.npy")).max() < 100
    assert len(out.stdout.splitlines()) == len(methods)
    for method in methods:  # JAX -> TF
        expected = np.load(tmp_path / f"jax-{method}.npy")
        logits = np.asarray(load_model(str(tmp_path / f"jax-{method}.keras"))(x))
        assert np.abs(logits - expected).max() <= 1e-4, method
        assert not np.allclose(expected, np.load(tmp_path / f"tf-{method}.npy"), atol=1e-3)  # another model


# --- training on JAX: keras.distribution.DataParallel over 2 host devices ----------------------

TRAIN = ["train", "--model", "aps", "--epochs", "3", "--dataset", "fashion_mnist", "--width", "0.125",
         "--max-train-examples", "128", "--max-eval-examples", "64", "--batch-size", "32", "--verbose", "2",
         "--deterministic"]  # the same tf.data batches in every process


def _jax_train(model_dir, devices, kill_after=None):
    """`shiftinv train` on JAX with `devices` host devices; `kill_after`: SIGKILL once that file exists."""
    env = {**os.environ, "PYTHONPATH": ROOT, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    command = [sys.executable, "-m", "keras_shiftinv", *TRAIN, "--model-dir", str(model_dir)]
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    if kill_after is not None:
        while proc.poll() is None and not os.path.exists(model_dir / kill_after):
            time.sleep(0.2)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    output, _ = proc.communicate(timeout=900)
    return proc.returncode, output


def _losses(model_dir):
    return [float(row["loss"]) for row in csv.DictReader(open(model_dir / "training_log.csv"))]


jax_and_tf = pytest.mark.skipif(not (HAS_JAX and HAS_TF), reason="needs TensorFlow (tf.data input) and JAX")


@pytest.mark.slow
@jax_and_tf
@pytest.mark.parametrize("devices", [1, 2])
def test_jax_training_keeps_the_run_directory_contract_and_resumes(tmp_path, devices):
    code, output = _jax_train(tmp_path / "run", devices)
    assert code == 0, output[-3000:]
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert (config["strategy"], config["replicas"]) == ({1: "jax-default", 2: "DataParallel"}[devices], devices)
    for name in ("final.keras", "best.keras", "last.keras", "checkpoints/epoch-0003.keras"):
        assert (tmp_path / "run" / name).exists(), name
    # Killed after epoch 1's checkpoint, then rerun: resumes after epoch 1 and finishes.
    code, _ = _jax_train(tmp_path / "killed", devices, kill_after="checkpoints/epoch-0001.keras")
    assert code != 0
    assert not (tmp_path / "killed" / "final.keras").exists()
    code, output = _jax_train(tmp_path / "killed", devices)
    assert code == 0, output[-3000:]
    assert "Resuming" in output and (tmp_path / "killed" / "final.keras").exists()
    full, resumed = _losses(tmp_path / "run"), _losses(tmp_path / "killed")
    assert len(full) == len(resumed) == 3
    assert resumed[0] == full[0]  # epoch 1 is the killed process's own row
    # The resumed epochs repeat the uninterrupted ones: same batches, same restored state
    # (fit.build_compiled_state; docs/backends.md, "Same loss curve").
    np.testing.assert_allclose(resumed, full, rtol=1e-5)
    assert len(set(full)) == 3  # the loss moves: equal curves are not three equal constants


@pytest.mark.slow
@jax_and_tf
def test_jax_data_parallel_loss_curve_matches_one_device(tmp_path):
    for devices in (1, 2):
        code, output = _jax_train(tmp_path / str(devices), devices)
        assert code == 0, output[-3000:]
    one, two = _losses(tmp_path / "1"), _losses(tmp_path / "2")
    assert len(one) == len(two) == 3
    # Same batches, same arithmetic up to the order in which two devices sum the batch (float32):
    # epoch 1 agrees to 1e-5; later the ~1e-6 differences grow (APS's argmax picks another
    # polyphase component now and then; train_on_batch shows the same drift), 1e-2 bounds it.
    np.testing.assert_allclose(two[0], one[0], rtol=1e-5)
    np.testing.assert_allclose(two, one, rtol=1e-2)
    assert len(set(one)) == 3
