"""The shared benchmark helpers (benchmarks/_bench.py): interleaving, ratios, multiply counts, user mistakes."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_shiftinv.layers import PolyphaseDownsample

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import _bench  # noqa: E402 (benchmarks/)
import bench_infer  # noqa: E402
import bench_padding  # noqa: E402


def test_measure_warms_up_then_rotates_the_order_each_round():
    calls = []
    fns = {key: (lambda k: lambda x: calls.append((k, x)))(key) for key in "abc"}
    samples = _bench.measure(fns, "x", rounds=4, calls=2, warmup=2)
    keys = [k for k, _ in calls]
    assert keys[:6] == list("aabbcc")  # warm-up: each key twice, in order
    rounds = ["".join(keys[6 + 6 * r: 12 + 6 * r:2]) for r in range(4)]
    assert rounds == ["abc", "bca", "cab", "abc"]
    assert all(x == "x" for _, x in calls)
    assert {k: len(v) for k, v in samples.items()} == {"a": 4, "b": 4, "c": 4}
    assert all(cpu >= 0 and wall >= 0 for v in samples.values() for cpu, wall, _ in v)


def test_measure_keeps_the_rounds_done_when_interrupted():
    count = [0]

    def slow(x):
        count[0] += 1
        if count[0] == 4:  # warm-up, rounds 1 (stride, group) and 2 (group, stride); round 3 stops here
            raise KeyboardInterrupt

    samples = {}
    with pytest.raises(KeyboardInterrupt):
        _bench.measure({"stride": lambda x: None, "group": slow}, None, rounds=5, calls=1, samples=samples)
    assert len(samples["group"]) == 2 and len(samples["stride"]) == 3


def test_summarize_takes_medians_of_per_round_ratios():
    rounds = [(2.0, 1.0, 5.0), (6.0, 3.0, 6.0), (1.0, 4.0, 4.0), (3.0, 2.0, 7.0)]  # cpu, wall, load
    base = [(1.0, 1.0, 5.0), (2.0, 1.0, 6.0), (1.0, 1.0, 4.0), (4.0, 4.0, 7.0)]
    s = _bench.summarize(rounds, base)
    # cpu ratios 2, 3, 1, 0.75 -> median (1 + 2) / 2; speeds 0.5, 1/3, 1, 4/3 -> (0.5 + 1) / 2
    assert s["cpu_ratio"] == pytest.approx(1.5) and s["cpu_speed"] == pytest.approx(0.75)
    # wall ratios 1, 3, 4, 0.5 -> (1 + 3) / 2; the median ratio is not the ratio of medians (2.5 / 1)
    assert s["wall_ratio"] == pytest.approx(2.0)
    assert s["cpu_ms"] == pytest.approx(2500.0) and s["wall_ms"] == pytest.approx(2500.0)
    assert s["load_min_max"] == [4.0, 7.0]


def test_multiplies_match_a_hand_count():
    x = keras.Input((8, 8, 4))
    a = PolyphaseDownsample(8, kernel_size=3)(x)  # group, width lcm(4, 8) = 8, 4x4 output pixels
    b = keras.layers.Conv2D(5, 3, strides=2, padding="same")(x)  # 4x4x5 outputs of 3*3*4 multiplies: 2880
    y = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(keras.layers.Concatenate()([a, b])))  # 130
    model = keras.Model(x, y)
    # Module per output pixel: fused 4*4*8*9 = 1152, factored 4*8*9 + 8*8 = 352; fold 4*9*8*8 = 2304.
    # Training cost rule: factored 352 + 32*4*8 = 1376 > 1152, so fused from pixels * 224 >= 3 * 2304:
    # batch 1 (16 pixels, 3584) factored, batch 2 (7168) fused.
    assert _bench.multiplies(model, 1, training=True) == (16 * 352 + 2880 + 130, {"fused": 0, "factored": 1})
    total, paths = _bench.multiplies(model, 2, training=True)
    assert paths == {"fused": 1, "factored": 0}
    assert total == pytest.approx(16 * 1152 + 3 * 2304 / 2 + 2880 + 130)
    # Inference at batch 1: 6 * 1376 - 1152 per pixel pays the one fold.
    assert _bench.multiplies(model, 1) == (16 * 1152 + 2304 + 2880 + 130, {"fused": 1, "factored": 0})


def test_bench_infer_keeps_the_names_bench_serving_uses():
    for name in ("fail", "parse_list", "build_runners", "measure", "table", "load_text", "write_report"):
        assert callable(getattr(bench_infer, name)), name
    samples = {("keras", "stride"): [(1.0, 2.0, 3.0)] * 3, ("keras", "group"): [(1.5, 2.0, 3.0)] * 3}
    text, summary = bench_infer.table(samples, ["stride", "group"], ["keras"])
    assert "| keras | group | 1500.00 | 1.50x | 2000.00 | 1.00x | 3.0-3.0 |" in text
    assert summary["keras/group"]["cpu_ratio"] == pytest.approx(1.5)


def test_bench_resnet_refuses_fewer_than_ten_rounds_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_resnet.py"), "--rounds", "3",
                           "--output", str(tmp_path / "t.md")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == "bench_resnet.py: error: --rounds must be at least 10. Received: rounds=3\n"
    assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_gpu_check_dry_run_writes_a_table_and_its_provenance(tmp_path):
    env = {**os.environ, "GPU_CHECK_DRY": "1", "GPU_CHECK_OUT": str(tmp_path)}
    done = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "gpu_check.sh")], env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    with open(tmp_path / "train_dry.json", encoding="utf-8") as f:
        record = json.load(f)
    assert record["settings"]["rounds"] == 10 and record["provenance"]["versions"]["keras"] == keras.__version__
    assert record["results"]["stride"]["cpu_speed"] == 1.0
    assert (tmp_path / "train_dry.md").read_text().count("\n| ") == 1 + 10  # the header + one row per method


@pytest.mark.slow
@pytest.mark.parametrize("script, variants", [("round6_choice_ab.py", 5), ("round7_gather_ab.py", 5),
                                               ("round8_strided_ab.py", 7), ("round9_bounds.py", 9)])
def test_each_ab_script_checks_its_two_versions_agree_then_writes_its_table(tmp_path, script, variants):
    """The A/B scripts of docs/speed-infer still run against today's package (bench_infer.ab_run)."""
    out = tmp_path / "ab.md"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "docs", "speed-infer", script), "--image-size", "16",
                           "--batch", "2", "--runtimes", "keras", "--rounds", "10", "--calls", "1", "--output",
                           str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in out.read_text().splitlines() if line.startswith("| keras |")]
    assert len(rows) == variants and rows[0].startswith("| keras | stride |") and " 1.00x " in rows[0]


@pytest.mark.parametrize("form", bench_padding.FORMS)
def test_bench_padding_forms_pad_like_numpy(form):
    x = np.random.default_rng(0).normal(size=(2, 5, 4, 3)).astype("float32")
    got = keras.ops.convert_to_numpy(bench_padding.pad(form, x, 2))
    mode = {"mode": "constant"} if form == "zeros" else {"mode": "wrap"}
    np.testing.assert_array_equal(got, np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), **mode))


def _pad_forms():
    import importlib.util

    path = os.path.join(ROOT, "docs", "speed-infer", "round9_onnx_pad_forms.py")
    spec = importlib.util.spec_from_file_location("round9_onnx_pad_forms", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("form", ["gather-nhwc", "gather-nchw", "gather-axes", "slice-concat", "pad-wrap"])
def test_each_onnx_pad_form_pads_circularly_like_numpy(form):
    """round9_onnx_pad_forms.py's ONNX graphs of a one-pixel circular pad, run by ONNX Runtime."""
    forms = _pad_forms()
    c, n = 3, 5
    constants = {}
    pad = forms.session_of(forms.pad_nodes(form, "x", "y", c, n, constants), constants, c, n, form)
    x = np.random.default_rng(0).normal(size=(2, c, n, n)).astype("float32")
    np.testing.assert_array_equal(pad(x), np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="wrap"))


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["tensorflow", "onnx"])
def test_profile_ops_sums_kernel_times_per_layer_with_the_multiplies(tmp_path, runtime):
    import json

    out = tmp_path / "p.md"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "profile_ops.py"), "--runtime", runtime,
                           "--method", "aps", "--by", "layer", "--image-size", "16", "--batch", "2", "--calls", "2",
                           "--output", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "p.json").read_text())
    # By hand: width 0.25 is 16/32/64/128 channels; `aps` runs every strided conv at stride 1, then subsamples.
    stem = 16 * 16 * 7 * 7 * 3 * 16  # 7x7 conv at 16x16 (the max-pool site adds no multiplies)
    stage1 = 4 * (4 * 4 * 9 * 16 * 16)  # four 3x3 convs at 4x4
    stage2 = 4 * 4 * 9 * 16 * 32 + 2 * 2 * 9 * 32 * 32 + 2 * 2 * 16 * 32 + 2 * (2 * 2 * 9 * 32 * 32)  # site at 4x4
    stage3 = 2 * 2 * 9 * 32 * 64 + 9 * 64 * 64 + 32 * 64 + 2 * (9 * 64 * 64)  # site at 2x2, the rest at 1x1
    stage4 = 9 * 64 * 128 + 9 * 128 * 128 + 64 * 128 + 2 * (9 * 128 * 128)  # site at 1x1: its stride-1 conv at 1x1
    assert record["results"]["multiplies_per_image"] == stem + stage1 + stage2 + stage3 + stage4 + 128 * 1000
    assert "stem_conv_aps" in record["results"]["kernels"]  # the stem's phase choice and gather, as one layer
    shares = [float(line.split("|")[3].strip().rstrip("%")) for line in out.read_text().splitlines()[4:]]
    assert sum(shares) == pytest.approx(100, abs=0.5)
