"""Issue 25 over several bases: one table from the `results.json` of `shiftinv finetune` runs.

Each input is the results folder (or its `results.json`) of one `shiftinv finetune` run on its own
base model; all must share the dataset and every setting but the base. Per method the table gives
the mean +- std (population) over the bases of top-1 at each stage, the distilled model's gap to its
own base (mean, worst), and on how many bases each target of the issue holds: top-1 within 1 point
of the base, exactly 100% circular consistency (aligned methods), crop consistency and worst-case
accuracy at least the base's.

    python docs/finetune/summarize.py --out docs/finetune/summary-fashion_mnist \
        docs/finetune/fashion_mnist-seed0-60k-warmup docs/finetune/fashion_mnist-seed2-base-60k-warmup ...

writes `<out>.md` and `<out>.json` (the cells, the inputs with their commits and wall times, and this
run's provenance). A mismatch of settings is one line and exit 2.
"""

import argparse
import os
import sys

from keras_shiftinv import provenance
from keras_shiftinv.data import DEFAULT_DATASET
from keras_shiftinv.experiments.records import load_results
from keras_shiftinv.experiments.records import summarize
from keras_shiftinv.experiments.records import write_summary
from keras_shiftinv.saving import write_json

STAGES = ("converted", "calibrated", "distilled", "scratch")
METRICS = ("top1", "consistency", "circular_consistency", "worst_case_accuracy")
ALIGNED = ("aps", "group-aps", "conv3d-aps", "blur-aps", "group-aps-lp", "conv3d-aps-lp")


def load(path):
    path = os.path.join(path, "results.json") if os.path.isdir(path) else path
    if not os.path.isfile(path):
        raise SystemExit(f"summarize.py: error: no results.json at {path!r}")
    record = load_results(path)
    record["config"].setdefault("dataset", DEFAULT_DATASET)  # written before the dataset was a setting
    return path, record


def check_same_settings(records):
    """Every setting but the base must match: one line naming the first difference."""
    first_path, first = records[0]
    for path, record in records[1:]:
        for key in sorted(set(first["config"]) | set(record["config"])):
            if key != "base" and first["config"].get(key) != record["config"].get(key):
                raise SystemExit(
                    f"summarize.py: error: {path} has {key}={record['config'].get(key)!r}, "
                    f"{first_path} {key}={first['config'].get(key)!r}"
                )


def method_rows(records):
    """`{method: row}`: per-stage cells over the bases, the gap to the base and the targets met."""
    methods = [m for m in records[0][1]["methods"] if all(m in r["methods"] for _, r in records)]
    rows = {}
    for method in methods:
        runs = [r["methods"][method] for _, r in records]
        before = [run["before"] for run in runs]
        distilled = [run["distilled"] for run in runs]
        gaps = [b["top1"] - d["top1"] for b, d in zip(before, distilled)]
        row = {f"{stage}_{metric}": summarize([run[stage][metric] for run in runs])
               for stage in STAGES if all(stage in run for run in runs) for metric in METRICS}
        row["base_top1"] = summarize([b["top1"] for b in before])
        row["gap"] = summarize(gaps)
        row["worst_gap"] = max(gaps)
        row["within_1"] = sum(g <= 1.0 for g in gaps)
        row["circular_100"] = sum(d["circular_consistency"] == 100.0 for d in distilled) if method in ALIGNED else None
        row["consistency_ok"] = sum(d["consistency"] >= b["consistency"] for b, d in zip(before, distilled))
        row["worst_case_ok"] = sum(d["worst_case_accuracy"] >= b["worst_case_accuracy"] for b, d in zip(before, distilled))
        rows[method] = row
    return rows


def write_table(path, records, rows):
    """`<out>.md` through `records.write_summary`: the settings in one line, then one row per method."""
    n = len(records)
    config = records[0][1]["config"]
    bases = rows[next(iter(rows))]["base_top1"]
    spread = lambda c: "-" if c is None else f"{c['mean']:.2f} ± {c['std']:.2f}"  # noqa: E731
    count = lambda k: "-" if k is None else f"{k}/{n}"  # noqa: E731
    title = (
        f"{config['dataset']}: `shiftinv finetune` on {n} bases (top-1 of the bases {spread(bases)}: "
        + ", ".join(f"{v:.2f}" for v in bases["values"])
        + f"); {config['train_examples']} unlabelled training images, {config['eval_examples']} test images, "
        f"calibration {config['calibration_examples']} images, {config['epochs']} epoch(s) of distillation. "
        "Mean ± std over the bases; targets: on how many of the bases each holds."
    )
    columns = [(f"{stage}_top1", f"{stage} top-1", spread) for stage in STAGES] + [
        ("gap", "gap to base (mean / worst)", lambda c: f"{c['mean']:.2f} / {max(c['values']):.2f}"),
        ("within_1", "within 1 point", count),
        ("circular_100", "100% circular", count),
        ("consistency_ok", "crop cons. >= base", count),
        ("worst_case_ok", "worst case >= base", count),
    ]
    shown = {method: {key: row.get(key) for key, _, _ in columns} for method, row in rows.items()}  # a stage not run: -
    return f"{title}\n\n{write_summary(path, title, shown, columns)}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="path without extension: writes <out>.md and <out>.json")
    parser.add_argument("results", nargs="+", help="results folders (or results.json files) of shiftinv finetune")
    args = parser.parse_args(argv)
    stamp = provenance.start()
    records = [load(path) for path in args.results]
    check_same_settings(records)
    rows = method_rows(records)
    inputs = [{"path": path, "base": r["config"]["base"], "commit": r.get("provenance", {}).get("git"),
               "wall_seconds": r.get("provenance", {}).get("wall_seconds")} for path, r in records]
    write_json(args.out + ".json", {"inputs": inputs, "methods": rows, "provenance": provenance.finish(stamp)})
    print(write_table(args.out + ".md", records, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
