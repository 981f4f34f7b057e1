"""Nothing knocks it over (issue 20): bounded decoding, race-free publishing, full and read-only disks.

docs/design.md, "Export and serving" and "Robustness". Bombs are real PNGs written row by row with zlib
(never held whole); disks are real tmpfs mounts (skipped where mounting is not permitted).
"""

import contextlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import keras_shiftinv as ks
from keras_shiftinv.cli import main
from keras_shiftinv.data.transforms import MAX_PIXELS
from keras_shiftinv.data.transforms import header_size
from keras_shiftinv.data.transforms import preprocess
from keras_shiftinv.errors import UsageError
from keras_shiftinv.export.publish import publish
from keras_shiftinv.saving import read_metadata
from keras_shiftinv.saving import save_model

SIDE = 64
CLASSES = ["a", "b", "c"]
TINY = dict(num_classes=3, input_shape=(SIDE, SIDE, 3), width=0.125)


# --- helpers -----------------------------------------------------------------------------------------


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib_crc(kind + data))


def zlib_crc(data):
    import zlib

    return zlib.crc32(data) & 0xFFFFFFFF


def png_bomb(width, height):
    """An all-black 8-bit grey PNG of `width` x `height`, compressed one row at a time (~1000:1)."""
    import zlib

    z = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then the zero pixels
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bombs():
    return {"10k": png_bomb(10000, 10000), "30k": png_bomb(30000, 30000)}


def tame(model, scale=0.002):
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * scale, bias])
    return model


def encode(image, fmt, **kwargs):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def run_cli(capsys, *args):
    """`shiftinv ARGS` in this process: (exit code, stderr lines)."""
    code = main([str(a) for a in args])
    return code, [line for line in capsys.readouterr().err.splitlines() if line.startswith("shiftinv")]


def shiftinv(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "keras_shiftinv", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)


def one_error_line(result):
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("shiftinv")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tiny ImageNet-preprocessing model saved and exported with the default pixel budget."""
    root = tmp_path_factory.mktemp("robust")
    model = tame(ks.resnet18("group", **TINY))
    keras_path = save_model(model, str(root / "m.keras"), {"class_names": CLASSES, "dataset": "folder",
                                                            "image_size": SIDE})
    path = ks.export_saved_model(model, root / "sm", metadata=read_metadata(keras_path))
    return {"model": model, "keras": keras_path, "dir": path, "root": root}


def expected_probabilities(model, encoded):
    """The model on the evaluation pipeline's decoding of `encoded` (`data.transforms.preprocess`)."""
    image = preprocess(tf.constant(encoded), SIDE, None, training=False)
    return np.asarray(keras.ops.softmax(model(image[None])))[0]


# --- 1. bounded decoding -------------------------------------------------------------------------------


def test_header_size_matches_pil_for_every_format():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)
    cases = {"PNG": {}, "JPEG": {"quality": 90}, "GIF": {}, "BMP": {}}
    for fmt, kwargs in cases.items():
        data = encode(image, fmt, **kwargs)
        width, height = Image.open(io.BytesIO(data)).size  # the independent reference
        np.testing.assert_array_equal(header_size(tf.constant(data)).numpy(), [height, width], err_msg=fmt)
    grey = encode(image[..., 0], "PNG")
    np.testing.assert_array_equal(header_size(tf.constant(grey)).numpy(), [37, 53])
    for other in (encode(image, "WEBP"), b"not an image", b"", b"\x89PNG\r\n\x1a\n"):  # unknown or too short
        np.testing.assert_array_equal(header_size(tf.constant(other)).numpy(), [-1, -1])


def test_bombs_are_refused_by_size_and_the_server_keeps_serving(served, bombs):
    serve = tf.saved_model.load(served["dir"]).signatures["serving_default"]
    good = encode(np.full((50, 40, 3), 90, np.uint8), "PNG")
    for name, side in (("10k", 10000), ("30k", 30000)):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=rf"image_bytes\[1\] is too large: {side}x{side} pixels .* limit of {MAX_PIXELS}"):
            serve(image_bytes=tf.constant([good, bombs[name], good]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes\[0\] is not a decodable"):
        serve(image_bytes=tf.constant([encode(np.zeros((8, 8, 3), np.uint8), "WEBP")]))  # WebP: refused
    out = serve(image_bytes=tf.constant([good]))
    np.testing.assert_allclose(out["probabilities"].numpy()[0], expected_probabilities(served["model"], good),
                               atol=1e-4)


def test_max_pixels_is_settable_at_export(served, tmp_path):
    path = ks.export_saved_model(served["model"], tmp_path / "small", max_pixels=2000,
                                 metadata=read_metadata(served["keras"]))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    ok = encode(np.zeros((40, 50, 3), np.uint8), "PNG")  # 2000 pixels: at the limit
    serve(image_bytes=tf.constant([ok]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"is too large: 51x40 pixels .* limit of 2000 "):
        serve(image_bytes=tf.constant([encode(np.zeros((40, 51, 3), np.uint8), "PNG")]))
    with pytest.raises(ValueError, match="Received: max_pixels=0"):
        ks.export_saved_model(served["model"], tmp_path / "bad", max_pixels=0)


def test_large_images_are_thinned_in_uint8_and_stay_close_to_full_resolution(served):
    """A 2400x1800 photo-like JPEG and PNG: decoded at reduced scale; the answer is near the full decode."""
    y, x = np.mgrid[0:1800, 0:2400]
    image = np.stack([(x / 10) % 255, (y / 7) % 255, ((x + y) / 13) % 255], -1).astype(np.uint8)
    model = served["model"]
    serve = tf.saved_model.load(served["dir"]).signatures["serving_default"]
    for data in (encode(image, "JPEG", quality=95), encode(image, "PNG")):
        got = serve(image_bytes=tf.constant([data]))["probabilities"].numpy()[0]
        np.testing.assert_allclose(got, expected_probabilities(model, data), atol=1e-4)  # = eval pipeline
        # Full resolution, no thinning (the old transform): close, since the thinning keeps 4x the pixels.
        full = tf.io.decode_image(data, channels=3, expand_animations=False)
        full_image = ks.data.transforms.normalize(reference_center_crop(full, SIDE))
        reference = np.asarray(keras.ops.softmax(model(full_image[None])))[0]
        np.testing.assert_allclose(got, reference, atol=2e-3)


def reference_center_crop(image, image_size):
    """The evaluation resize + center crop without thinning (the transform before issue 20)."""
    resize = round(image_size * 256 / 224)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    new = tf.cast(tf.round(shape * resize / tf.reduce_min(shape)), tf.int32)
    image = tf.image.resize(tf.cast(image, tf.float32), new, method="bilinear", antialias=True)
    top, left = (new[0] - image_size) // 2, (new[1] - image_size) // 2
    return tf.slice(image, [top, left, 0], [image_size, image_size, 3])


def test_evaluation_pipeline_refuses_a_bomb(bombs):
    with pytest.raises(tf.errors.InvalidArgumentError, match="is too large: 10000x10000 pixels"):
        preprocess(tf.constant(bombs["10k"]), SIDE, None, training=False)


SOAK_SCRIPT = r"""
import json, os, resource, sys
import tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
folder = sys.argv[2]
results = []
for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), "rb") as f:
        data = f.read()
    try:
        out = serve(image_bytes=tf.constant([data]))
        results.append({"name": name, "probabilities": out["probabilities"].numpy()[0].tolist()})
    except tf.errors.InvalidArgumentError as e:
        lines = [line for line in e.message.splitlines() if "image_bytes[" in line]
        results.append({"name": name, "error": lines[0] if lines else e.message[:300]})
print(json.dumps({"results": results, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


@pytest.mark.slow
def test_soak_200_requests_with_bombs_stay_under_1_5_gb(served, bombs, tmp_path):
    """>= 200 single-image requests: good images, undecodable bytes, 10000^2 and 30000^2 PNG bombs."""
    rng = np.random.default_rng(0)
    requests = tmp_path / "requests"
    requests.mkdir()
    good, kinds = {}, {}
    for i in range(240):
        kind = ("good", "good", "junk", "bomb10k", "bomb30k", "truncated")[i % 6]
        if kind == "good":
            h, w = rng.integers(20, 400, 2)
            image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            data = encode(image, ("PNG", "JPEG", "GIF", "BMP")[i % 4])
        elif kind == "junk":
            data = rng.bytes(int(rng.integers(0, 5000)))
        elif kind == "truncated":
            data = encode(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), "PNG")[:200]
        else:
            data = bombs[kind[4:]]
        name = f"{i:04d}"
        (requests / name).write_bytes(data)
        kinds[name] = kind
        if kind == "good":
            good[name] = expected_probabilities(served["model"], data)
    script = tmp_path / "soak.py"
    script.write_text(SOAK_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, str(script), served["dir"], str(requests)], capture_output=True,
                            text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    results = {r["name"]: r for r in report["results"]}
    assert len(results) == 240
    for name, kind in kinds.items():
        r = results[name]
        if kind == "good":
            np.testing.assert_allclose(r["probabilities"], good[name], atol=1e-4, err_msg=name)
        elif kind.startswith("bomb"):
            side = kind[4:].replace("k", "000")
            assert f"is too large: {side}x{side} pixels" in r["error"], r
        else:
            assert "is not a decodable" in r["error"], r
    errors = sum("error" in r for r in results.values())
    print(f"soak: {len(results)} requests, {errors} errors, peak RSS {report['peak_rss_mb']:.0f} MB")
    assert errors == sum(kind != "good" for kind in kinds.values())
    assert report["peak_rss_mb"] < 1536, report["peak_rss_mb"]


# --- predict: files ------------------------------------------------------------------------------------


def test_predict_refuses_dev_zero_at_once(served):
    result = shiftinv("predict", served["dir"], "/dev/zero", timeout=120)
    assert result.returncode == 2
    assert one_error_line(result) == "shiftinv predict: error: /dev/zero is not a regular file (an image file is expected)"


def test_predict_refuses_fifo_folder_bomb_and_oversized_file(served, bombs, tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bombs["30k"])
    huge = tmp_path / "huge.png"
    with open(huge, "wb") as f:
        f.truncate(160_000_001)  # sparse: no disk used
    cases = [
        (fifo, f"{fifo} is not a regular file"),
        (tmp_path, f"{tmp_path} is not a regular file"),
        (bomb, f"{bomb} is too large: 30000x30000 pixels (width x height), above the limit of {MAX_PIXELS} pixels"),
        (huge, f"{huge} is too large: 160000001 bytes, above the limit of 160000000 bytes"),
    ]
    for path, message in cases:
        code, lines = run_cli(capsys, "predict", served["dir"], path)
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"shiftinv predict: error: {message}"), lines


def test_predict_keras_file_names_a_bomb_inside_the_graph(served, bombs, tmp_path, capsys):
    """A bomb PIL cannot open still meets the in-graph check (here: a PNG with a bad CRC in IHDR)."""
    bad_crc = bytearray(bombs["10k"])
    bad_crc[29] ^= 0xFF  # IHDR's CRC: PIL refuses to open it, TF's decoder does not check it first
    path = tmp_path / "crc.png"
    path.write_bytes(bytes(bad_crc))
    code, lines = run_cli(capsys, "predict", served["keras"], path)
    assert code == 2 and lines == [
        f"shiftinv predict: error: {path} is too large: 10000x10000 pixels (width x height), above the limit of "
        f"{MAX_PIXELS} pixels"], lines


# --- 2. race-free publishing ---------------------------------------------------------------------------


def writer(text, barrier=None):
    def write(tmp_dir):
        if barrier is not None:
            barrier.wait(timeout=30)  # both are writing at the same time
        with open(os.path.join(tmp_dir, "saved_model.pb"), "w") as f:
            f.write(text)
        with open(os.path.join(tmp_dir, "owner.txt"), "w") as f:
            f.write(text)
    return write


def concurrent_publish(base, overwrite):
    barrier = threading.Barrier(2)
    outcome = {}

    def run(text):
        try:
            outcome[text] = publish(base, 1, writer(text, barrier), overwrite=overwrite)
        except FileExistsError as e:
            outcome[text] = e

    threads = [threading.Thread(target=run, args=(text,)) for text in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


def test_concurrent_publish_exactly_one_wins(tmp_path):
    outcome = concurrent_publish(tmp_path, overwrite=False)
    winners = [text for text, value in outcome.items() if isinstance(value, str)]
    assert len(winners) == 1 and sum(isinstance(v, FileExistsError) for v in outcome.values()) == 1
    folder = tmp_path / "1"
    assert (folder / "saved_model.pb").read_text() == winners[0] == (folder / "owner.txt").read_text()
    assert os.listdir(tmp_path) == ["1"]


def test_concurrent_publish_with_overwrite_last_wins_whole(tmp_path):
    outcome = concurrent_publish(tmp_path, overwrite=True)
    assert all(isinstance(value, str) for value in outcome.values())
    text = (tmp_path / "1" / "saved_model.pb").read_text()
    assert text in ("first", "second") and (tmp_path / "1" / "owner.txt").read_text() == text
    assert os.listdir(tmp_path) == ["1"]


@pytest.mark.slow
def test_two_concurrent_export_commands_one_wins_with_its_own_model(tmp_path):
    base = tmp_path / "served"
    models = {}
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        model = ks.resnet18("stride", num_classes=3, input_shape=(32, 32, 3), width=0.125)
        models[seed] = (model, save_model(model, str(tmp_path / f"m{seed}.keras"), {"class_names": CLASSES}))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    processes = {seed: subprocess.Popen([sys.executable, "-m", "keras_shiftinv", "export", path, str(base)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for seed, (_, path) in models.items()}
    results = {seed: (p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for seed, p in processes.items()}
    codes = sorted(code for code, _, _ in results.values())
    assert codes == [0, 2], results
    winner = next(seed for seed, (code, _, _) in results.items() if code == 0)
    loser = 3 - winner
    assert results[winner][1].strip() == f"exported: {base / '1'}"
    lines = [line for line in results[loser][2].splitlines() if line.startswith("shiftinv")]
    assert lines == [f"shiftinv export: error: {base} already has version 1; pass --overwrite or another --version"]
    assert os.listdir(base) == ["1"]
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    served_logits = tf.saved_model.load(str(base / "1")).signatures["serve_float"](image=tf.constant(x))["logits"]
    np.testing.assert_allclose(served_logits.numpy(), np.asarray(models[winner][0](x)), atol=1e-5)
    assert not np.allclose(served_logits.numpy(), np.asarray(models[loser][0](x)), atol=1e-3)


def test_leftovers_of_dead_processes_are_removed(tmp_path):
    dead = dead_pid()
    for name in (f".tmp-1-{dead}-abc123", f".old-1-{dead}", f".tmp-7-{os.getpid()}-alive", ".tmp-1-legacy"):
        os.makedirs(tmp_path / name / "variables")
    publish(tmp_path, 2, writer("x"))
    assert sorted(os.listdir(tmp_path)) == [".tmp-1-legacy", f".tmp-7-{os.getpid()}-alive", "2"]


def test_version_beyond_int64_is_refused(served, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", served["keras"], str(tmp_path / "v"), "--version", str(2**63)])
    assert exit_info.value.code == 2 and "at most 9223372036854775807 (int64)" in capsys.readouterr().err
    with pytest.raises(ValueError, match=f"Received: version={2**63}"):
        publish(tmp_path, 2**63, writer("x"))
    assert not os.path.exists(tmp_path / "v")


# --- 3. disk full, read-only ---------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(size="4m"):
    """A fresh tmpfs of `size` (skips the test where mounting is not permitted); unmounted on exit."""
    folder = tempfile.mkdtemp(prefix="shiftinv-tmpfs-")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        os.rmdir(folder)
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or mounted.returncode})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", folder], check=False)
        os.rmdir(folder)


def remount(folder, mode):
    subprocess.run(["mount", "-o", f"remount,{mode}", folder], check=True)


def snapshot(folder):
    """{relative path: bytes} of every file under `folder`."""
    files = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, folder)] = f.read()
    return files


def big_model():
    """An RGB-input model of ~12 MB of weights: larger than the 4 MB tmpfs."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Flatten()(inputs)  # (B, 3072)
    outputs = keras.layers.Dense(1000)(x)
    return keras.Model(inputs, outputs)


@pytest.mark.slow
def test_export_into_a_full_disk_is_one_line_and_keeps_the_old_version(tmp_path):
    small = ks.resnet18("stride", num_classes=1000, input_shape=(32, 32, 3), width=0.0625)
    big = save_model(big_model(), str(tmp_path / "big.keras"))
    with tmpfs("4m") as disk:
        ks.export_saved_model(small, os.path.join(disk, "served"), version=1)
        before = snapshot(disk)
        result = shiftinv("export", big, os.path.join(disk, "served"), "--version", 2)
        assert result.returncode == 2, result.stderr[-2000:]
        line = one_error_line(result)
        assert line.startswith("shiftinv export: error: No space left on device"), line
        assert snapshot(disk) == before  # version 1 intact, nothing of version 2 left
        remount(disk, "ro")
        result = shiftinv("export", big, os.path.join(disk, "served"), "--version", 3)
        assert result.returncode == 2
        assert "Read-only file system" in one_error_line(result)
        assert snapshot(disk) == before


@pytest.mark.slow
def test_train_on_a_full_disk_and_resume_read_only_are_one_line(tmp_path):
    common = ["--dataset", "fashion_mnist", "--model", "stride", "--max-train-examples", "64",
              "--max-eval-examples", "32", "--batch-size", "32", "--verbose", "0"]
    with tmpfs("4m") as disk:
        full = os.path.join(disk, "run")
        result = shiftinv("train", *common, "--epochs", "1", "--width", "1.0", "--model-dir", full)
        assert result.returncode == 2, result.stderr[-2000:]
        line = one_error_line(result)
        assert line.startswith("shiftinv train: error: No space left on device"), line
        assert not [n for n in snapshot(disk) if n.endswith(".keras") or ".tmp-" in n]  # nothing half-written
    with tmpfs("64m") as disk:
        run = os.path.join(disk, "run")
        result = shiftinv("train", *common, "--epochs", "1", "--width", "0.125", "--model-dir", run)
        assert result.returncode == 0, result.stderr[-2000:]
        os.remove(os.path.join(run, "final.keras"))  # as if killed before the last write: a resume is due
        before = snapshot(disk)
        remount(disk, "ro")
        result = shiftinv("train", *common, "--epochs", "1", "--width", "0.125", "--model-dir", run)
        assert result.returncode == 2, result.stderr[-2000:]
        assert "Read-only file system" in one_error_line(result)
        assert snapshot(disk) == before


# --- 4. metadata schema ----------------------------------------------------------------------------------


def with_member(tmp_path, name, payload):
    path = str(tmp_path / name)
    save_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("keras_shiftinv.json", payload)
    return path


@pytest.mark.parametrize("payload, message", [
    ("[1, 2]", "is not a JSON object (got list)"),
    ('"hello"', "is not a JSON object (got str)"),
    ('{"class_names": 5}', "metadata 'class_names' must be a list of class names"),
    ('{"class_names": ["a", "b\\nc"]}', "metadata 'class_names' must be a list of class names"),
    ('{"image_size": "big"}', "metadata 'image_size' must be a positive integer or a pair of them"),
    ('{"image_size": -3}', "metadata 'image_size' must be a positive integer"),
    ('{"dataset": 7}', "metadata 'dataset' must be a string"),
])
def test_metadata_of_the_wrong_shape_is_one_line(tmp_path, payload, message):
    path = with_member(tmp_path, "m.keras", payload)
    with pytest.raises(UsageError, match=re.escape(message)) as info:
        read_metadata(path)
    assert "\n" not in str(info.value)


def test_oversized_metadata_member_is_refused_before_reading(tmp_path):
    path = str(tmp_path / "m.keras")
    save_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("keras_shiftinv.json", b" " * (17 * 2**20))  # compresses to ~17 KB
    assert os.path.getsize(path) < 2**20
    with pytest.raises(UsageError, match="bytes, above the limit of 16777216"):
        read_metadata(path)


def test_predict_with_bad_metadata_is_one_line(served, tmp_path, capsys):
    model_path = str(tmp_path / "bad.keras")
    with zipfile.ZipFile(served["keras"]) as src, zipfile.ZipFile(model_path, "w") as dst:
        for info in src.infolist():
            if info.filename != "keras_shiftinv.json":
                dst.writestr(info, src.read(info))
        dst.writestr("keras_shiftinv.json", '{"class_names": 5}')
    image = tmp_path / "x.png"
    image.write_bytes(encode(np.zeros((8, 8, 3), np.uint8), "PNG"))
    code, lines = run_cli(capsys, "predict", model_path, image)
    assert code == 2 and len(lines) == 1 and "metadata 'class_names' must be a list" in lines[0], lines


def test_class_folder_with_a_newline_is_refused_at_training_time(tmp_path):
    from keras_shiftinv.data.image_folder import scan_image_folder

    for name in ("cat", "dog\nbad"):
        os.makedirs(tmp_path / name)
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / name / "1.png")
    with pytest.raises(UsageError, match=r"class folder name has a control character: '.*dog\\nbad'; rename it"):
        scan_image_folder(str(tmp_path))


def test_bad_metadata_image_size_message(tmp_path):
    model = ks.resnet18("stride", num_classes=2, input_shape=(32, 32, 3), width=0.125)
    with pytest.raises(ValueError, match=r"the image_size in the model's metadata \(48\) differs from the "
                                         r"model's input side \(32x32\)"):
        ks.export_saved_model(model, tmp_path / "m", metadata={"image_size": 48})


# --- 6, 8: simple mistakes are one line ----------------------------------------------------------------


def test_simple_mistakes_are_one_line(served, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    cases = [
        (["train", "--dataset", "fashion_mnist", "--model-dir", a_file], f"--model-dir {a_file} is a file"),
        (["table1", "--out", a_file], f"--out {a_file} is a file, not a folder"),
        (["export", tmp_path, tmp_path / "out"], f"{tmp_path} is a directory; expected a .keras file"),
        (["export", empty, tmp_path / "out"], f"{empty} is empty (0 bytes); expected a .keras file"),
        (["evaluate", served["keras"], served["keras"], "--out", tmp_path / "ev"], "is given twice"),
    ]
    for args, message in cases:
        code, lines = run_cli(capsys, *args)
        assert code == 2 and len(lines) == 1 and message in lines[0], (args, lines)
    assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path / "ev")
    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", "--eval-examples", "0"])
    assert exit_info.value.code == 2 and "expected a positive integer, got 0" in capsys.readouterr().err


def test_os_errors_anywhere_in_the_chain_become_one_line():
    from keras_shiftinv.cli._errors import os_error_line

    full = OSError(28, "No space left on device", "/mnt/run/final.keras")
    assert os_error_line(full) == "No space left on device: /mnt/run/final.keras"
    try:  # Keras/h5py style: the OSError is the context of another exception
        try:
            raise full
        except OSError:
            raise ValueError("Unable to synchronously create file")
    except ValueError as wrapped:
        assert os_error_line(wrapped) == "No space left on device: /mnt/run/final.keras"
    saver = tf.errors.ResourceExhaustedError(None, None, "/mnt/sm/variables/variables_temp/part-00000; "
                                             "No space left on device\n\t [[{{node SaveV2}}]]")
    assert os_error_line(saver).startswith("No space left on device (/mnt/sm/variables/")
    assert os_error_line(PermissionError(13, "Permission denied", "/x")) == "Permission denied: /x"
    assert os_error_line(ValueError("a bug")) is None  # everything else still raises
    assert os_error_line(tf.errors.InvalidArgumentError(None, None, "shape mismatch")) is None


def test_fashion_mnist_export_refuses_a_bomb_and_thins_a_large_grey_image(bombs, tmp_path):
    """The transform that cost 4.3 GB per 10000^2 bomb (full-size float luma) before issue 20."""
    model = tame(ks.resnet18("stride", num_classes=10, input_shape=(32, 32, 3), width=0.125))
    path = ks.export_saved_model(model, tmp_path / "fm", metadata={"dataset": "fashion_mnist", "image_size": 32})
    serve = tf.saved_model.load(path).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes\[0\] is too large: 10000x10000"):
        serve(image_bytes=tf.constant([bombs["10k"]]))
    # A 1400x1400 grey item (an upscaled 28x28 pattern): thinned 12x in uint8, then resized to 28x28.
    item = np.kron(np.random.default_rng(0).integers(0, 255, (28, 28), dtype=np.uint8), np.ones((50, 50), np.uint8))
    got = serve(image_bytes=tf.constant([encode(item, "PNG")]))["probabilities"].numpy()[0]
    small = serve(image_bytes=tf.constant([encode(item[::50, ::50], "PNG")]))["probabilities"].numpy()[0]
    np.testing.assert_allclose(got, small, atol=2e-3)  # the same item at its native 28x28
