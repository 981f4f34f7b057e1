"""The 1-D example: a small ResNet on MNIST-1D with every 1-D method (issue 24).

`python -m keras_shiftinv.experiments.signal1d --out docs/signal1d` trains
`models.resnet1d` once per method and seed on the 4000 MNIST-1D training
signals (generated locally by the `mnist1d` package) and scores it on the
1000 test signals:

- `accuracy`: test accuracy, %;
- `consistency`: Zhang's consistency for signals: each test signal is moved
  by two shifts drawn in `[-max_shift, max_shift]` (zeros shifted in, the
  signal's end dropped), `passes` times; % of equal predicted classes;
- `circular_consistency`: the same with two circular shifts drawn in
  `[0, 40)`;
- `circular_accuracy`: accuracy on the test signals rolled by one random
  circular shift each.

All models pad circularly (`padding="circular"`), so `aps` and `group-aps`
are exactly invariant to circular shifts by construction. It writes
`results.json` (every number, the settings and the provenance) and
`results.md` (the table) into `--out`.
"""

import argparse
import dataclasses
import json
import os
import sys
import time

import keras
import numpy as np

from keras_shiftinv import provenance
from keras_shiftinv.data.signal1d import mnist1d
from keras_shiftinv.errors import UsageError
from keras_shiftinv.models.resnet1d import METHODS_1D
from keras_shiftinv.models.resnet1d import resnet1d
from keras_shiftinv.saving import atomic_write_text

COLUMNS = (
    ("accuracy", "Accuracy %"),
    ("consistency", "Consistency %"),
    ("circular_consistency", "Circ. consistency %"),
    ("circular_accuracy", "Accuracy, circ. shifted %"),
)


@dataclasses.dataclass
class Signal1DConfig:
    """Settings of `run_signal1d` (the defaults are the committed run's)."""

    methods: tuple = METHODS_1D
    seeds: tuple = (0, 1)
    epochs: int = 20
    batch_size: int = 100
    learning_rate: float = 3e-3
    filters: tuple = (32, 64, 128)
    padding: str = "circular"
    max_shift: int = 8
    passes: int = 5
    data_seed: int = 42


def shift_signals(x, shifts):
    """Each signal `x[i]` moved by `shifts[i]` samples, zeros shifted in (positive: later).

    Example:
    >>> shift_signals(np.arange(1.0, 5.0).reshape(1, 4, 1), [1])[0, :, 0].tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    out = np.zeros_like(x)
    n = x.shape[1]
    for i, s in enumerate(shifts):
        if s >= 0:
            out[i, s:] = x[i, : n - s]
        else:
            out[i, : n + s] = x[i, -s:]
    return out


def roll_signals(x, shifts):
    """Each signal `x[i]` rolled circularly by `shifts[i]` samples."""
    return np.stack([np.roll(item, int(s), axis=0) for item, s in zip(x, shifts)])


def _classes(model, x):
    return np.asarray(model.predict(x, batch_size=500, verbose=0)).argmax(-1)


def evaluate(model, x, y, max_shift=8, passes=5, seed=0):
    """The four scores of the module docstring, in percent."""
    rng = np.random.default_rng(seed)
    n, length = len(x), x.shape[1]
    linear = circular = 0
    for _ in range(passes):
        a, b = rng.integers(-max_shift, max_shift + 1, size=(2, n))
        linear += int(np.sum(_classes(model, shift_signals(x, a)) == _classes(model, shift_signals(x, b))))
        a, b = rng.integers(0, length, size=(2, n))
        circular += int(np.sum(_classes(model, roll_signals(x, a)) == _classes(model, roll_signals(x, b))))
    rolled = roll_signals(x, rng.integers(0, length, size=n))
    return {
        "accuracy": 100.0 * float(np.mean(_classes(model, x) == y)),
        "consistency": 100.0 * linear / (n * passes),
        "circular_consistency": 100.0 * circular / (n * passes),
        "circular_accuracy": 100.0 * float(np.mean(_classes(model, rolled) == y)),
    }


def train_one(method, seed, data, config):
    """Trains one `resnet1d`; returns `(model, seconds)`."""
    keras.utils.set_random_seed(seed)
    model = resnet1d(method, input_shape=data["x_train"].shape[1:], filters=tuple(config.filters),
                     padding=config.padding)
    steps = config.epochs * -(-len(data["x_train"]) // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    started = time.perf_counter()
    model.fit(data["x_train"], data["y_train"], batch_size=config.batch_size, epochs=config.epochs,
              shuffle=True, verbose=0)
    return model, time.perf_counter() - started


def run_signal1d(out_dir, config, log=print):
    """Trains and scores every method and seed; writes `results.json` and `results.md`; returns the results."""
    stamp = provenance.start()
    unknown = [m for m in config.methods if m not in METHODS_1D]
    if unknown:
        raise UsageError(f"Unknown 1-D methods. Expected some of {list(METHODS_1D)}. Received: methods={unknown}")
    data = mnist1d(seed=config.data_seed)
    runs = []
    for seed in config.seeds:
        for method in config.methods:
            model, seconds = train_one(method, seed, data, config)
            scores = evaluate(model, data["x_test"], data["y_test"], config.max_shift, config.passes, seed)
            runs.append({"method": method, "seed": seed, "train_seconds": round(seconds, 1),
                         "params": model.count_params(), **scores})
            log(f"{method} seed {seed}: " + ", ".join(f"{k} {scores[k]:.1f}" for k, _ in COLUMNS)
                + f" ({seconds:.0f} s)")
    summary = {}
    for method in config.methods:
        mine = [r for r in runs if r["method"] == method]
        summary[method] = {k: {"mean": float(np.mean([r[k] for r in mine])), "std": float(np.std([r[k] for r in mine]))}
                           for k, _ in COLUMNS}
        summary[method]["params"] = mine[0]["params"]
    results = {
        "task": "MNIST-1D (mnist1d.make_dataset, 4000 train / 1000 test signals of 40 samples)",
        "config": dataclasses.asdict(config),
        "summary": summary,
        "runs": runs,
        "provenance": provenance.finish(stamp),
    }
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_text(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2) + "\n")
    atomic_write_text(os.path.join(out_dir, "results.md"), results_table(results))
    return results


def results_table(results):
    """The Markdown table of `results.json`: mean ± std over the seeds."""
    lines = ["| Method | Params | " + " | ".join(title for _, title in COLUMNS) + " |",
             "|---|---:|" + "---:|" * len(COLUMNS)]
    for method, row in results["summary"].items():
        cells = [f"{row[k]['mean']:.1f} ± {row[k]['std']:.1f}" for k, _ in COLUMNS]
        lines.append(f"| `{method}` | {row['params']:,} | " + " | ".join(cells) + " |")
    seeds = results["config"]["seeds"]
    record = results["provenance"]
    load = record["load_average_before"], record["load_average_after"]
    lines.append("")
    lines.append(f"Mean ± std over {len(seeds)} seed(s) {list(seeds)}; {results['task']}; "
                 f"wall time {record['wall_seconds'] / 60:.1f} min on {record['machine']['cpu_count']} CPU "
                 f"core(s), 1-minute load average {load[0][0] if load[0] else '?'} before and "
                 f"{load[1][0] if load[1] else '?'} after.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m keras_shiftinv.experiments.signal1d",
                                     description="MNIST-1D: a 1-D ResNet per downsampling method.")
    defaults = Signal1DConfig()
    parser.add_argument("--out", default="signal1d", help="output directory (results.json, results.md)")
    parser.add_argument("--methods", nargs="+", default=list(defaults.methods))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(defaults.seeds))
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1. Received: epochs={args.epochs}")
    config = Signal1DConfig(methods=tuple(args.methods), seeds=tuple(args.seeds), epochs=args.epochs)
    try:
        run_signal1d(args.out, config, log=lambda line: print(line, file=sys.stderr, flush=True))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(os.path.join(args.out, "results.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
