"""docs/finetune/summarize.py: issue 25's table over several bases, from the committed results."""

import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FINETUNE = os.path.join(ROOT, "docs", "finetune")
SEED0 = os.path.join(FINETUNE, "fashion_mnist-seed0-60k-warmup")
SEED2 = os.path.join(FINETUNE, "fashion_mnist-seed2-base-60k-warmup")


def _summarize():
    spec = importlib.util.spec_from_file_location("summarize", os.path.join(FINETUNE, "summarize.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_summary_of_two_bases_matches_the_hand_computed_cells(tmp_path):
    out = str(tmp_path / "summary")
    assert _summarize().main(["--out", out, SEED0, SEED2]) == 0
    summary = json.load(open(out + ".json"))
    group = summary["methods"]["group"]
    # By hand from the two results.md: bases 88.30 and 88.45, distilled group 86.70 and 86.65.
    assert group["base_top1"]["values"] == [88.30, 88.45]
    assert group["distilled_top1"]["mean"] == pytest.approx((86.70 + 86.65) / 2)
    assert group["gap"]["mean"] == pytest.approx(((88.30 - 86.70) + (88.45 - 86.65)) / 2)
    assert group["worst_gap"] == pytest.approx(1.80)
    assert group["within_1"] == 0 and group["circular_100"] is None
    # blur: 88.30 - 87.30 = 1.00 (within), 88.45 - 87.10 = 1.35 (not); worst case 76.40 >= 76.40, 74.80 >= 74.00.
    blur = summary["methods"]["blur"]
    assert blur["within_1"] == 1 and blur["worst_case_ok"] == 2
    aps = summary["methods"]["group-aps"]
    assert aps["circular_100"] == 2 and aps["consistency_ok"] == 2  # 96.00 >= 93.17, 95.34 >= 92.74
    assert [i["base"] for i in summary["inputs"]] == [
        "/work/runs/calib/base-fm-s0/final.keras", "/work/runs/calib/base-fm-s2/final.keras"]
    table = open(out + ".md").read()
    assert "| group | " in table and "| 1.70 / 1.80 | 0/2 | - |" in table


def test_runs_with_other_settings_are_refused_in_one_line(tmp_path, capsys):
    record = json.load(open(os.path.join(SEED2, "results.json")))
    record["config"]["temperature"] = 2.0
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.json").write_text(json.dumps(record))
    with pytest.raises(SystemExit) as info:
        _summarize().main(["--out", str(tmp_path / "summary"), SEED2, str(other)])
    assert "temperature=2.0" in str(info.value) and "temperature=4.0" in str(info.value)
    assert not os.path.exists(tmp_path / "summary.md")
