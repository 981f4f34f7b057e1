"""Data-aware conversion (`convert(..., calibration_data=...)`) and `distill` (issue 25)."""

import dataclasses
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_shiftinv as ks
from keras_shiftinv.distill import Distiller
from keras_shiftinv.distill import distillation_loss
from keras_shiftinv.distill import feature_loss


def strided_conv_circular(x, kernel, bias=None):
    """numpy reference: a stride-2 conv, circular "same" padding of even sides, output H/2.

    As TF's "same" at stride 2 on an even side: `k - 2` pads in all, `(k - 2) // 2` before.
    """
    kh, kw = kernel.shape[:2]
    top, left = max(kh - 2, 0) // 2, max(kw - 2, 0) // 2
    padded = np.pad(x, ((0, 0), (top, kh), (left, kw), (0, 0)), mode="wrap")
    h, w = -(-x.shape[1] // 2), -(-x.shape[2] // 2)
    out = np.zeros((x.shape[0], h, w, kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            patch = padded[:, i : i + 2 * h : 2, j : j + 2 * w : 2, :]  # (B, h, w, C)
            out += patch @ kernel[i, j]
    return out if bias is None else out + bias


def smooth_images(n, size=16, channels=3, seed=0):
    """Correlated, offset inputs (far from white noise): blurred noise plus a ramp."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size, size, channels))
    x = (x + np.roll(x, 1, 1) + np.roll(x, 1, 2) + np.roll(np.roll(x, 1, 1), 1, 2)) / 2
    ramp = np.linspace(0, 1, size)[None, :, None, None]
    return (x + 2 * ramp + 1).astype("float32")


def one_site_model(kernel_size, channels=3, filters=8, seed=0):
    inputs = keras.Input((16, 16, channels))
    y = keras.layers.Conv2D(filters, kernel_size, strides=2, padding="same", name="site",
                            kernel_initializer=keras.initializers.GlorotNormal(seed))(inputs)
    return keras.Model(inputs, y)


def relative(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_calibration_reproduces_an_exact_1x1_site():
    model = one_site_model(1)
    data = smooth_images(64)
    new, report = ks.convert(model, "group", padding="circular", calibration_data=data)
    kernel, bias = model.get_layer("site").get_weights()
    reference = strided_conv_circular(data, kernel, bias)
    assert relative(np.asarray(new(data)), reference) < 1e-5
    assert report.sites[0].calibration_error < 1e-5


@pytest.mark.parametrize("method", ["group", pytest.param("conv3d", marks=pytest.mark.slow)])
def test_calibration_beats_the_white_noise_fit_on_a_3x3_site(method):
    model = one_site_model(3, channels=8, filters=16)  # neither module is exact here
    data, held_out = smooth_images(96, channels=8, seed=0), smooth_images(32, channels=8, seed=1)
    white, _ = ks.convert(model, method, padding="circular")
    calibrated, report = ks.convert(model, method, padding="circular", calibration_data=data)
    kernel, bias = model.get_layer("site").get_weights()
    for x in (data, held_out):
        reference = strided_conv_circular(x, kernel, bias)
        assert relative(np.asarray(calibrated(x)), reference) < 0.9 * relative(np.asarray(white(x)), reference)
    site = report.sites[0]
    assert site.calibration_error < site.calibration_error_before
    # The reported errors are those of the models on the calibration set.
    reference = strided_conv_circular(data, kernel, bias)
    assert site.calibration_error_before == pytest.approx(relative(np.asarray(white(data)), reference), rel=1e-3)
    assert "->" in str(report)


def test_batch_norm_statistics_are_those_of_the_calibration_set():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.BatchNormalization(name="bn_in")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="site")(x)
    x = keras.layers.BatchNormalization(name="bn_out")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    data = smooth_images(40)  # two batches of 32 and 8: the statistics are over all 40
    new, report = ks.convert(model, "group-aps", padding="circular", calibration_data=iter([data[:32], data[32:]]))
    bn_in = new.get_layer("bn_in")
    np.testing.assert_allclose(bn_in.moving_mean.numpy(), data.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(bn_in.moving_variance.numpy(), data.var(axis=(0, 1, 2)), rtol=1e-4)
    # bn_out: statistics of what reaches it in the converted model (after bn_in's re-estimation).
    site_out = keras.Model(new.input, new.get_layer("bn_out").input)(data)
    site_out = np.asarray(site_out, "float64")
    bn_out = new.get_layer("bn_out")
    np.testing.assert_allclose(bn_out.moving_mean.numpy(), site_out.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn_out.moving_variance.numpy(), site_out.var(axis=(0, 1, 2)), rtol=1e-4)
    assert "2 batch-norm layer(s) re-estimated on 40 calibration image(s)" in str(report)


def test_calibration_data_bad_input():
    model = one_site_model(1)
    with pytest.raises(TypeError, match="Received: calibration_data=str"):
        ks.convert(model, "group", calibration_data="images/")
    with pytest.raises(ValueError, match=r"Received: calibration_data with shape \(16, 16\)"):
        ks.convert(model, "group", calibration_data=np.zeros((16, 16)))


def tiny_classifier(seed=0):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu",
                            kernel_initializer=keras.initializers.GlorotNormal(seed))(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu",
                            kernel_initializer=keras.initializers.GlorotNormal(seed + 1))(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(5, kernel_initializer=keras.initializers.GlorotNormal(seed + 2))(x))


def test_distillation_loss_matches_numpy():
    rng = np.random.default_rng(0)
    t, s = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    temperature = 3.0
    p = np.exp(t / temperature) / np.exp(t / temperature).sum(-1, keepdims=True)
    q = np.exp(s / temperature) / np.exp(s / temperature).sum(-1, keepdims=True)
    expected = temperature**2 * np.mean(np.sum(p * np.log(p / q), axis=-1))
    assert float(distillation_loss(t, s, temperature)) == pytest.approx(expected, rel=1e-5)


def distilled():
    teacher = tiny_classifier()
    student, _ = ks.convert(teacher, "group", padding="circular")
    train, held_out = smooth_images(128, seed=2), smooth_images(64, seed=3)
    teacher_before = teacher.get_weights()
    before = float(distillation_loss(teacher(held_out), student(held_out)))
    student, history = ks.distill(student, teacher, train, epochs=3, learning_rate=3e-3, batch_size=32)
    after = float(distillation_loss(teacher(held_out), student(held_out)))
    assert after < 0.7 * before
    assert all(np.array_equal(a, b) for a, b in zip(teacher.get_weights(), teacher_before))  # frozen
    assert teacher.trainable and len(history.history["loss"]) == 3
    return student, held_out


def test_distill_lowers_the_kl_on_held_out_data():
    distilled()


@pytest.mark.slow
def test_distilled_model_reloads_in_a_fresh_process(tmp_path):
    student, held_out = distilled()
    path = str(tmp_path / "distilled.keras")
    student.save(path)
    np.save(tmp_path / "x.npy", held_out)
    np.save(tmp_path / "y.npy", np.asarray(student(held_out)))
    code = (
        "import sys, numpy as np, keras, keras_shiftinv; "
        f"m = keras.models.load_model({path!r}); d = {str(tmp_path)!r}; "
        "y = np.asarray(m(np.load(d + '/x.npy'))); "
        "sys.exit(0 if np.allclose(y, np.load(d + '/y.npy'), atol=1e-5) else 3)"
    )
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(ks.__file__)))}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_distiller_in_plain_fit_ignores_labels():
    teacher = tiny_classifier()
    student = tiny_classifier(seed=10)
    x = smooth_images(64, seed=4)
    labels = np.zeros((64,), "int32")  # present but unused: the loss is the teacher's
    distiller = Distiller(student, teacher, temperature=2.0)
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = float(distillation_loss(teacher(x), student(x), 2.0))
    distiller.fit(x, labels, epochs=4, batch_size=16, verbose=0)
    assert float(distillation_loss(teacher(x), student(x), 2.0)) < before


def test_distill_bad_input():
    teacher = tiny_classifier()
    with pytest.raises(ValueError, match="Received: epochs=0"):
        ks.distill(teacher, teacher, smooth_images(4), epochs=0)
    with pytest.raises(ValueError, match="Received: temperature=0"):
        Distiller(teacher, teacher, temperature=0)


def bn_classifier():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1",
                            kernel_initializer=keras.initializers.GlorotNormal(0))(inputs)
    x = keras.layers.ReLU(name="block_out")(keras.layers.BatchNormalization(name="bn")(x))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="down",
                            kernel_initializer=keras.initializers.GlorotNormal(1))(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(5, kernel_initializer=keras.initializers.GlorotNormal(2))(x))


def test_feature_loss_matches_numpy_and_is_zero_for_the_teacher():
    rng = np.random.default_rng(0)
    t = [rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 6))]
    s = [rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 6))]
    expected = np.mean([np.mean((t[0].mean((1, 2)) - s[0].mean((1, 2))) ** 2), np.mean((t[1] - s[1]) ** 2)])
    assert float(feature_loss(t, s)) == pytest.approx(expected, rel=1e-5)
    teacher, x = bn_classifier(), smooth_images(8)
    distiller = Distiller(teacher, teacher, feature_layers=["block_out", "pool"], feature_weight=5.0)
    assert float(distiller.compute_loss(x, None, distiller(x))) == pytest.approx(0.0, abs=1e-6)
    student, _ = ks.convert(teacher, "group-aps", padding="circular")  # a different student: a positive term
    distiller = Distiller(student, teacher, feature_layers=["block_out", "pool"], feature_weight=5.0)
    outputs, reference = distiller(x), [teacher.get_layer(n).output for n in ("block_out", "pool")]
    teacher_features = keras.Model(teacher.input, reference)(x)
    expected = distillation_loss(teacher(x), outputs[0]) + 5.0 * feature_loss(teacher_features, outputs[1:])
    assert float(distiller.compute_loss(x, None, outputs)) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match=r"Received: feature_layers=\['nope'\]"):
        Distiller(teacher, teacher, feature_layers=["nope"], feature_weight=1.0)


def test_pixelwise_feature_loss_matches_numpy_and_reaches_the_distiller():
    rng = np.random.default_rng(1)
    t = [rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 6))]
    s = [rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 6))]
    expected = np.mean([np.mean((t[0] - s[0]) ** 2), np.mean((t[1] - s[1]) ** 2)])  # no spatial mean
    assert float(feature_loss(t, s, pooling="none")) == pytest.approx(expected, rel=1e-5)
    assert float(feature_loss(t, s, pooling="none")) > float(feature_loss(t, s))  # means hide pixel errors here
    teacher, x = bn_classifier(), smooth_images(8)
    student, _ = ks.convert(teacher, "blur")  # the teacher's grid: pixelwise matching is meaningful
    kernel = student.get_layer("conv1").kernel
    kernel.assign(rng.normal(size=kernel.shape).astype("float32"))  # another block_out: a positive term
    distiller = Distiller(student, teacher, feature_layers=["block_out"], feature_weight=2.0, feature_pooling="none")
    outputs = distiller(x)
    teacher_map = keras.Model(teacher.input, teacher.get_layer("block_out").output)(x)
    expected = distillation_loss(teacher(x), outputs[0]) + 2.0 * feature_loss([teacher_map], outputs[1:], "none")
    assert float(distiller.compute_loss(x, None, outputs)) == pytest.approx(float(expected), rel=1e-5)
    assert float(feature_loss([teacher_map], outputs[1:], "none")) > float(feature_loss([teacher_map], outputs[1:]))
    with pytest.raises(ValueError, match=r"Received: feature_pooling='max'"):
        Distiller(teacher, teacher, feature_pooling="max")


def test_teacher_shifts_averages_the_teacher_over_circular_shifts():
    teacher, x, t = tiny_classifier(), smooth_images(6, seed=6), 2.0
    student = tiny_classifier(seed=20)
    softmax = lambda z: np.exp(z - z.max(-1, keepdims=True)) / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)
    p = np.mean([softmax(np.asarray(teacher(np.roll(x, (i, j), (1, 2)))) / t)
                 for i in range(2) for j in range(2)], axis=0)  # numpy: the mean of 4 shifted teachers
    q = softmax(np.asarray(student(x)) / t)
    expected = t**2 * np.mean(np.sum(p * np.log(p / q), axis=-1))
    distiller = Distiller(student, teacher, temperature=t, teacher_shifts=2)
    assert float(distiller.compute_loss(x, None, student(x))) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="Received: teacher_shifts=0"):
        Distiller(student, teacher, teacher_shifts=0)


def test_fine_tuning_schedule_warmup_then_cosine():
    from keras_shiftinv.distill import fine_tuning_schedule

    rate = fine_tuning_schedule(1e-3, 100, warmup=0.1)  # 10 steps up, cosine over 90
    lr = [float(rate(step)) for step in (0, 5, 10, 55, 100)]
    assert lr == pytest.approx([0.0, 5e-4, 1e-3, 5e-4, 0.0], abs=1e-9)  # cos(pi / 2) at 45 of 90 steps
    plain = fine_tuning_schedule(1e-3, 100)  # no warm-up: the cosine from step 0
    assert [float(plain(step)) for step in (0, 50, 100)] == pytest.approx([1e-3, 5e-4, 0.0], abs=1e-9)
    with pytest.raises(ValueError, match="Received: warmup=1"):
        ks.distill(tiny_classifier(), tiny_classifier(), smooth_images(4), warmup=1)


def test_finetune_pair_settings_leave_out_a_default_warmup():
    from keras_shiftinv.experiments.finetune import FinetuneConfig
    from keras_shiftinv.experiments.finetune import pair_settings
    from keras_shiftinv.experiments.finetune import title

    plain = pair_settings(FinetuneConfig(distill=True), "aps")  # as recorded before the option existed
    assert "distill_warmup" not in plain and plain["temperature"] == 4.0
    warm = FinetuneConfig(distill=True, distill_warmup=0.1)
    assert pair_settings(warm, "aps") == {**plain, "distill_warmup": 0.1}
    assert "warm-up 0.1 of the steps" in title(dataclasses.asdict(warm))


def test_distill_freeze_batch_norm_keeps_the_statistics():
    teacher, x = bn_classifier(), smooth_images(32, seed=5)
    student, _ = ks.convert(teacher, "group", padding="circular")
    bn = student.get_layer("bn")
    before = [w.numpy().copy() for w in bn.weights]  # gamma, beta, moving mean and variance
    ks.distill(student, teacher, x, learning_rate=1e-2, batch_size=16, freeze_batch_norm=True,
               feature_layers=["block_out"], feature_weight=1.0)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, bn.weights)) and bn.trainable
    ks.distill(student, teacher, x, learning_rate=1e-2, batch_size=16)  # default: batch statistics, updated
    assert not np.array_equal(before[2], bn.moving_mean.numpy())


def test_finetune_cli_refuses_bad_calibration_and_distill_flags(capsys, tmp_path):
    from keras_shiftinv.cli import main

    for args, message in (
        (["--calibration-examples", "-1"], "--calibration-examples must be >= 0; got -1"),
        (["--distill", "--temperature", "0"], "--temperature and --distill-learning-rate must be > 0"),
        (["--distill", "--distill-warmup", "1"], "--distill-warmup must be in [0, 1); got 1.0"),
    ):
        code = main(["finetune", "--out", str(tmp_path / "out"), *args])
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("shiftinv")]
        assert code == 2 and len(lines) == 1 and message in lines[0], (args, lines)
    assert not (tmp_path / "out").exists()


def test_finetune_config_takes_each_datasets_table1_learning_rate_unless_given():
    from keras_shiftinv.experiments.finetune import FinetuneConfig

    assert FinetuneConfig().learning_rate == 0.5  # fashion_mnist's Table 1 rate (data/registry.py)
    assert FinetuneConfig(dataset="fashion_mnist_photo").learning_rate == 0.1
    assert FinetuneConfig(dataset="fashion_mnist_photo", learning_rate=0.2).learning_rate == 0.2
    with pytest.raises(ValueError, match="Received: dataset='imagenet2012'"):
        FinetuneConfig(dataset="imagenet2012")  # no Table 1 rate, no 40x40 protocol


def test_finetune_refuses_a_results_folder_or_a_base_of_another_dataset(capsys, tmp_path):
    from keras_shiftinv.cli import main
    from keras_shiftinv.experiments.finetune import FinetuneConfig
    from keras_shiftinv.experiments.finetune import check_out_dir
    from keras_shiftinv.saving import save_model

    # The committed Fashion-MNIST measurement (written before `dataset` was recorded: the default).
    committed = os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "finetune",
                             "fashion_mnist-seed0-60k-warmup")
    check_out_dir(committed, FinetuneConfig())  # the same dataset: resumes
    check_out_dir(committed, FinetuneConfig(dataset="fashion_mnist_photo"), overwrite=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(open(os.path.join(committed, "results.json"), encoding="utf-8").read())
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert main(["finetune", "--dataset", "fashion_mnist_photo", "--out", str(out)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("shiftinv")]
    assert lines == [f"shiftinv finetune: error: {out} holds results made on 'fashion_mnist', not on "
                     "'fashion_mnist_photo'; pass --overwrite to replace them, or choose another --out"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # nothing written
    # A base whose metadata names another dataset: one line, before any folder is made.
    base = tmp_path / "base.keras"
    save_model(tiny_classifier(), str(base), {"method": "stride", "dataset": "fashion_mnist"})
    new = tmp_path / "new"
    assert main(["finetune", "--dataset", "fashion_mnist_photo", "--base", str(base), "--out", str(new)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("shiftinv")]
    assert lines == [f"shiftinv finetune: error: --base {base} was trained on 'fashion_mnist', not on "
                     "'fashion_mnist_photo'; pass --dataset fashion_mnist or a base trained on "
                     "'fashion_mnist_photo'"]
    assert not new.exists()


def module_forward(x, module_weights, mixing, k):
    """numpy reference of a `PolyphaseDownsample` (circular padding, no alignment, even sides).

    `module_weights`: mixing kernel, merge kernel[, mixing bias, merge bias] in the layer's layouts.
    """
    mix, merge, *biases = [np.asarray(w, "float64") for w in module_weights]
    b, h, w, c = x.shape[0], x.shape[1] // 2, x.shape[2] // 2, x.shape[3]
    stack = x.reshape(b, h, 2, w, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, h, w, 4, c)  # p = 2*dy + dx
    r = k // 2
    padded = np.pad(stack, ((0, 0), (r, r), (r, r), (0, 0), (0, 0)), mode="wrap")
    windows = np.stack([np.stack([padded[:, i : i + h, j : j + w] for j in range(k)], 3) for i in range(k)], 3)
    # windows: (B, h, w, kx, ky, 4, C)
    if mixing == "group":
        mix = mix.reshape(k, k, 4, c, -1)  # (x, y, p, c, m)
        features = np.einsum("bhwxypc,xypcm->bhwcm", windows, mix).reshape(b, h, w, -1)  # c*M + m
        if biases:
            features = features + biases[0]
    else:  # (3, k, k, C, O); depth d reads phases d..d+2
        depths = [np.einsum("bhwxyjc,jxyco->bhwo", windows[..., d : d + 3, :], mix) for d in (0, 1)]
        if biases:
            depths = [z + biases[0] for z in depths]
        features = np.stack(depths, -1).reshape(b, h, w, -1)  # o*2 + d
    out = features @ merge
    return out + biases[1] if biases else out


def best_merge_error(features, target):
    """The merge-only refit's error, by numpy least squares on every pixel (merge bias included)."""
    z = features.reshape(-1, features.shape[-1])
    z = np.concatenate([z, np.ones((len(z), 1))], axis=1)
    y = target.reshape(-1, target.shape[-1])
    solved = np.linalg.lstsq(z, y, rcond=None)[0]
    return relative(z @ solved, y)


@pytest.mark.parametrize("method", ["group", "conv3d"])
def test_alternating_refit_beats_merge_only_and_white_noise(method):
    model = one_site_model(3, channels=8, filters=16)  # neither module is exact here
    data, held_out = smooth_images(96, channels=8, seed=0), smooth_images(32, channels=8, seed=1)
    kernel, bias = model.get_layer("site").get_weights()
    white, _ = ks.convert(model, method, padding="circular")
    calibrated, report = ks.convert(model, method, padding="circular", calibration_data=data)
    white_module, module = white.get_layer("site"), calibrated.get_layer("site")
    white_weights, weights = white_module.get_weights(), module.get_weights()
    np.testing.assert_allclose(module_forward(data, weights, method, 3), calibrated(data), rtol=1e-4, atol=1e-4)
    target = strided_conv_circular(data, kernel, bias)
    refit = relative(module_forward(data, weights, method, 3), target)
    noise = relative(module_forward(data, white_weights, method, 3), target)
    # merge-only: the white-noise mixing (bias zero), its merge refitted on the same pixels.
    features = module_forward(data, [white_weights[0], np.eye(white_weights[1].shape[0])], method, 3)
    merge_only = best_merge_error(features, target)
    assert refit < 0.95 * merge_only and merge_only < 0.9 * noise
    assert report.sites[0].calibration_error == pytest.approx(refit, rel=1e-3)
    assert not np.allclose(weights[0], white_weights[0])  # the mixing kernel moved
    reference = strided_conv_circular(held_out, kernel, bias)  # it generalises to other images
    assert relative(module_forward(held_out, weights, method, 3), reference) < 0.9 * relative(
        module_forward(held_out, white_weights, method, 3), reference)


def test_calibration_keeps_an_exact_stem_exact():
    model = one_site_model(7, channels=3, filters=16)  # 7x7 stride 2 on 3 channels: group is exact
    data = smooth_images(32)
    new, report = ks.convert(model, "group", padding="circular", calibration_data=data)
    kernel, bias = model.get_layer("site").get_weights()
    assert relative(np.asarray(new(data)), strided_conv_circular(data, kernel, bias)) < 1e-5
    assert report.sites[0].calibration_error < 1e-5
