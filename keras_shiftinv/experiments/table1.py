"""The paper's Table 1 at small scale: every downsampling on Fashion-MNIST, offline.

Each method/seed pair trains into `<out>/models/<method>/seed<seed>/` (a run
dir: a rerun resumes it) and stores its scores there in `scores.json`, a pair
record (`experiments.records`) written atomically once evaluated; a rerun after
a kill skips the pairs that have one.
"""

import dataclasses
import os
import sys
import time

import numpy as np
import tensorflow as tf

from keras_shiftinv import data
from keras_shiftinv import metrics
from keras_shiftinv import provenance
from keras_shiftinv import report
from keras_shiftinv._renames import renamed_fields
from keras_shiftinv._renames import upgrade_keys
from keras_shiftinv.experiments import records
from keras_shiftinv.experiments.records import summarize
from keras_shiftinv.methods import PAPER_METHODS
from keras_shiftinv.saving import load_model
from keras_shiftinv.saving import write_json
from keras_shiftinv.training import TrainConfig
from keras_shiftinv.training import train

METRICS = ("consistency", "circular_consistency", "mac", "stability_std", "top1", "top5", "worst_case_accuracy",
           "flip_rate", "subpixel_consistency", "subpixel_mac", "fractional_worst_case_accuracy")
# The datasets with a Table 1 learning rate in their spec: the 40x40 Fashion-MNIST protocol.
DATASETS = tuple(name for name, spec in data.SPECS.items() if spec.table1_learning_rate is not None)
LEARNING_RATES = {name: data.SPECS[name].table1_learning_rate for name in DATASETS}

# Named presets are data. `None` examples means the whole split. `quick` is
# sized to finish within 15 minutes on 2 idle CPU cores for either dataset.
PRESETS = {
    "quick": {
        "train_examples": 8_000,
        "eval_examples": 1_000,
        "stability_images": 250,
        "epochs": 4,
        "width": 0.25,
        "batch_size": 128,
        "seeds": (0,),
    },
    "full": {
        "train_examples": None,
        "eval_examples": None,
        "stability_images": 1_000,
        "epochs": 4,
        "width": 0.25,
        "batch_size": 128,
        "seeds": (0, 1, 2),
    },
}


@renamed_fields(variants="methods")  # `variants`: the old name
@dataclasses.dataclass
class Table1Config:
    preset: str = "quick"
    train_examples: int = None
    eval_examples: int = None
    stability_images: int = None
    epochs: int = 4
    width: float = 0.25
    batch_size: int = 128
    learning_rate: float = 0.5
    seeds: tuple = (0,)
    methods: tuple = PAPER_METHODS
    padding: str = "circular"
    data_dir: str = None
    dataset: str = data.DEFAULT_DATASET

    @classmethod
    def from_preset(cls, preset, **overrides):
        if preset not in PRESETS:
            raise ValueError(f"Unknown preset. Expected one of {list(PRESETS)}. Received: preset={preset!r}")
        dataset = overrides.get("dataset", data.DEFAULT_DATASET)
        if dataset not in DATASETS:
            raise ValueError(f"Unknown dataset. Expected one of {list(DATASETS)}. Received: dataset={dataset!r}")
        return cls(preset=preset, **{**PRESETS[preset], "learning_rate": LEARNING_RATES[dataset], **overrides})


def run_table1(out_dir, config, verbose=1, overwrite=False):
    """Trains and evaluates every method; writes results.json/.md and plots.

    A pair's numbers depend only on its settings and the `provenance.versions()`
    (docs/design.md, "Reproducibility"): the same alone, after other pairs or
    resumed after a kill. A pair scored or trained with other settings stops
    the run unless `overwrite` (then it is redone). With `verbose`, one line
    per event on stderr says which pair runs ("[3/21] group seed 1"), where it
    goes and the time left.

    Returns the results dict (the content of `results.json`).
    """
    stamp = provenance.start()
    tf.config.experimental.enable_op_determinism()  # same seed, same numbers
    protocol = data.spec(config.dataset).protocol
    eval_ds, _ = data.load(config.dataset, "validation", batch_size=250, crop=False,
                           max_examples=config.eval_examples, data_dir=config.data_dir)
    eval_ds = eval_ds.cache()
    os.makedirs(out_dir, exist_ok=True)  # once the data is found: a wrong `data_dir` leaves no folder
    # Seed-major: a run stopped part-way has whole seeds (every method) first.
    order = [(name, seed) for seed in config.seeds for name in config.methods]
    pairs, trained_seconds, trained = {}, 0.0, 0
    for i, (name, seed) in enumerate(order, 1):
        started = time.perf_counter()
        where = f"[{i}/{len(order)}] {name} seed {seed}"
        pairs[name, seed] = run_pair(out_dir, config, name, seed, eval_ds, protocol, verbose, where, overwrite)
        if pairs[name, seed].get("_fresh"):
            trained_seconds, trained = trained_seconds + time.perf_counter() - started, trained + 1
        if verbose and trained and i < len(order):
            left = trained_seconds / trained * (len(order) - i)
            say(f"{i}/{len(order)} pairs done; about {format_seconds(left)} left (under the current load)")
    rows, curves = {}, {}
    for name in config.methods:
        runs = [pairs[name, seed] for seed in config.seeds]
        rows[name] = {m: summarize([r[m] for r in runs])
                      for m in METRICS + ("train_images_per_second", "train_seconds")}
        rows[name]["params"] = runs[0]["params"]
        curves[name] = np.asarray(runs[0]["curves"])
    results = {"preset": config.preset, "config": dataclasses.asdict(config), "protocol": protocol,
               "methods": rows, "provenance": provenance.finish(stamp)}
    write_json(os.path.join(out_dir, "results.json"), results)
    extra = [("train_images_per_second", "Train img/s", "{:.0f}")]
    table = records.write_summary(
        os.path.join(out_dir, "results.md"), f"{config.dataset}, preset `{config.preset}`, seeds {list(config.seeds)}",
        {n: {**v, "params": {"mean": v["params"]}} for n, v in rows.items()},
        report.COLUMNS + extra + [("params", "Params", "{:.0f}")],
    )
    report.plot_stability(curves, os.path.join(out_dir, "stability_curves.png"))
    report.plot_consistency_vs_accuracy(rows, os.path.join(out_dir, "consistency_vs_accuracy.png"))
    if verbose:
        print(table)
        say(f"results: {os.path.join(out_dir, 'results.md')} (and results.json, plots)")
    return results


def say(line):
    """One progress line on stderr."""
    print(f"table1 {line}", file=sys.stderr, flush=True)


def format_seconds(seconds):
    """`"1 h 05 min"`, `"12 min"` or `"40 s"`.

    Example:
    >>> format_seconds(40.2), format_seconds(725), format_seconds(3900)
    ('40 s', '12 min', '1 h 05 min')
    """
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def train_config(out_dir, config, name, seed, verbose):
    """The `TrainConfig` of one method/seed pair."""
    return TrainConfig(
        method=name,
        dataset=config.dataset,
        data_dir=config.data_dir,
        model_dir=os.path.join(out_dir, "models", name, f"seed{seed}"),
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        width=config.width,
        padding=config.padding,
        max_train_examples=config.train_examples,
        max_eval_examples=config.eval_examples,
        validation=False,
        seed=seed,
        verbose=2 if verbose else 0,
    )


def upgrade_scores(stored):
    """A `scores.json` of an older version in today's keys (`evaluation` -> `settings`, `model` -> `method`)."""
    stored = upgrade_keys(stored, {"evaluation": "settings"})
    if isinstance(stored, dict) and isinstance(stored.get("settings"), dict):
        stored["settings"] = {**stored["settings"],
                              "train": upgrade_keys(stored["settings"].get("train"), {"model": "method"})}
    return stored


def run_pair(out_dir, config, name, seed, eval_ds, protocol, verbose, where=None, overwrite=False):
    """Trains (or resumes) and scores one method/seed pair; reuses a stored `scores.json`.

    A stored `scores.json` (a pair record) is reused only if it was made with
    the same settings and the same `provenance.versions()`; one made with
    others stops the run unless `overwrite`. It holds the pair's provenance
    record beside its scores.

    Returns:
        dict of the `METRICS`, `train_images_per_second`, `train_seconds`,
        `params` and the stability `curves`. `train_seconds` times this call's
        `train` (data set-up and `model.fit`): for a pair resumed after a kill
        it leaves out the epochs that ran before the kill.
    """
    where = where or f"{name} seed {seed}"
    train_cfg = train_config(out_dir, config, name, seed, verbose)
    path = os.path.join(train_cfg.model_dir, "scores.json")
    settings = {"protocol": protocol, "eval_examples": config.eval_examples,
                "stability_images": config.stability_images, "seed": seed,
                "train": train_cfg.validate().run_settings(), "versions": provenance.versions()}
    stored = records.read_pair(path, settings, overwrite, upgrade=upgrade_scores)
    # Scores of an older version may lack a metric: then the pair is rescored (not retrained).
    if stored is not None and set(METRICS) <= set(stored["scores"]):
        if verbose:
            say(f"{where}: done before, scores from {path}")
        return stored["scores"]
    stamp = provenance.start()
    if verbose:
        say(f"{where}: training {config.epochs} epochs on {config.train_examples or 'all'} images "
            f"into {train_cfg.model_dir}")
    started = time.perf_counter()
    result = train(train_cfg, overwrite=overwrite)
    seconds = time.perf_counter() - started
    if result.get("already_finished") and stored and "train_seconds" in stored["scores"]:
        seconds = stored["scores"]["train_seconds"]  # rescoring a finished model: keep its training time
    model = result["model"] or load_model(result["final_model"])
    if verbose:
        say(f"{where}: scoring on {config.eval_examples or 'all'} test images")
    scores = metrics.evaluate_all(model, eval_ds, protocol, seed=seed, stability_images=config.stability_images,
                                  progress=False)
    if verbose:
        say(f"{where}: " + ", ".join(f"{m}={scores[m]:.4g}" for m in METRICS))
    pair = {**{m: float(scores[m]) for m in METRICS}, "params": int(model.count_params()),
            "train_images_per_second": float(result["train_images_per_second"]), "train_seconds": seconds,
            "curves": np.asarray(scores["_stability"]["curves"]).tolist()}
    records.write_pair(path, settings, scores=pair, provenance=provenance.finish(stamp))
    return {**pair, "_fresh": True}
