"""Converting a trained strided ResNet-18 and fine-tuning it (issues 8 and 25).

A `stride` ResNet-18 trained on a Table 1 dataset (`fashion_mnist` or
`fashion_mnist_photo`; circular padding) is converted
by `keras_shiftinv.convert` to each method, scored right after conversion,
optionally calibrated (`calibration_examples` unlabelled training images:
module refit and batch-norm re-estimation) and scored again, then either
fine-tuned briefly with the training recipe (SGD, one-cycle, labels) or,
with `distill`, distilled from the base model without labels
(`keras_shiftinv.distill`), scored again, and compared with the same
ResNet-18 trained from scratch with the same budget. Everything lands in
`<out>/`: `results.json`, `results.md`, the base run in `base/`, each
method's runs in `<method>/` (`finetuned.keras` or `distilled.keras`) and its
pair record `record.json` (`experiments.records`): a rerun skips the
methods that finished.
"""

import dataclasses
import os
import sys

import numpy as np

from keras_shiftinv import data
from keras_shiftinv import metrics
from keras_shiftinv import provenance
from keras_shiftinv import training
from keras_shiftinv.conversion import convert
from keras_shiftinv.distill import distill
from keras_shiftinv.errors import UsageError
from keras_shiftinv.experiments import records
from keras_shiftinv.experiments.table1 import DATASETS
from keras_shiftinv.methods import PAPER_METHODS
from keras_shiftinv.saving import load_model
from keras_shiftinv.saving import read_metadata
from keras_shiftinv.saving import save_model
from keras_shiftinv.saving import write_json
from keras_shiftinv.training import TrainConfig
from keras_shiftinv.training import train
from keras_shiftinv.training import train_dataset

STAGES = ("before", "converted", "calibrated", "finetuned", "distilled", "scratch")


@dataclasses.dataclass
class FinetuneConfig:
    """Settings of `run_finetune`.

    Args:
        base: path of a trained `stride` model (`.keras`); None trains one
            for `base_epochs` into `<out>/base/`.
        methods: the methods to convert to.
        train_examples: training images (first N of the train split).
        eval_examples: test images scored.
        base_epochs: epochs of the base model (when `base` is None).
        epochs: fine-tuning epochs, also the from-scratch budget.
        learning_rate: peak one-cycle rate of the base and scratch runs;
            None: the dataset's Table 1 rate (`DatasetSpec.table1_learning_rate`).
        finetune_learning_rate: peak one-cycle rate of the fine-tuning
            (the same for every dataset).
        calibration_examples: unlabelled training images for
            `convert(..., calibration_data=...)` (0: no calibration stage).
        distill: if True, the converted (and calibrated) model is distilled
            from the base for `epochs` on the unlabelled training images
            instead of fine-tuned with labels.
        distill_learning_rate: Adam's starting rate of the distillation
            (cosine decay to 0).
        temperature: the distillation temperature.
        distill_warmup: fraction of the distillation steps over which the
            rate first rises linearly from 0 (`keras_shiftinv.distill`'s
            `warmup`; 0: none).
        worst_case_images: test images of the worst-case accuracy (every
            crop offset; the first N of the `eval_examples`).
        batch_size, width, seed, data_dir: as in `shiftinv train`.
        dataset: a name of the data registry with a Table 1 learning rate
            (`experiments.table1.DATASETS`); its `DatasetSpec` gives the
            shift-metric protocol and the default `learning_rate`.
    """

    base: str = None
    methods: tuple = tuple(m for m in PAPER_METHODS if m != "stride")
    train_examples: int = 6000
    eval_examples: int = 1000
    base_epochs: int = 3
    epochs: int = 1
    learning_rate: float = None
    finetune_learning_rate: float = 0.05
    calibration_examples: int = 0
    distill: bool = False
    distill_learning_rate: float = 1e-4
    temperature: float = 4.0
    distill_warmup: float = 0.0
    worst_case_images: int = 1000
    batch_size: int = 128
    width: float = 0.25
    seed: int = 0
    data_dir: str = None
    dataset: str = data.DEFAULT_DATASET

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"Unknown dataset. Expected one of {list(DATASETS)}. Received: dataset={self.dataset!r}")
        if self.learning_rate is None:
            self.learning_rate = data.spec(self.dataset).table1_learning_rate


def recipe_config(config, method, model_dir, epochs, learning_rate):
    return TrainConfig(
        method=method, dataset=config.dataset, data_dir=config.data_dir, model_dir=model_dir,
        epochs=epochs, batch_size=config.batch_size, learning_rate=learning_rate, width=config.width,
        padding="circular", max_train_examples=config.train_examples,
        max_eval_examples=config.eval_examples, validation=False, seed=config.seed, verbose=2,
    ).validate()


def score(model, eval_ds, worst_case_images=1000, protocol=None):
    """Top-1, the two consistencies and the worst-case accuracy with `protocol` (a `DatasetSpec`'s;
    default the default dataset's: docs/design.md, 'Metrics'); the worst case on the first
    `worst_case_images` images."""
    p = protocol or data.spec(data.DEFAULT_DATASET).protocol
    s = p["crop_size"]
    return {
        "top1": metrics.top_k_accuracy(model, eval_ds, s, k=(1,))[1],
        "consistency": metrics.consistency(model, eval_ds, s, p["passes"], seed=0),
        "circular_consistency": metrics.circular_consistency(model, eval_ds, s, p["max_shift"], 1, seed=0),
        "worst_case_accuracy": metrics.worst_case_accuracy(model, eval_ds, s, max_images=worst_case_images)[
            "worst_case_accuracy"],
    }


def finetune(model, config, out_path, metadata):
    """Fine-tunes a converted model with the recipe for `config.epochs`; saves it."""
    recipe = recipe_config(config, "stride", os.path.dirname(out_path), config.epochs,
                           config.finetune_learning_rate)
    steps = config.train_examples // config.batch_size
    model.compile(optimizer=training.optimizer(recipe, config.epochs * steps), loss=training.loss())
    for epoch in range(config.epochs):
        model.fit(train_dataset(recipe, epoch, config.batch_size, steps), epochs=1, verbose=2)
    save_model(model, out_path, metadata)
    return model


def calibration_images(config):
    """The first `calibration_examples` training crops (labels dropped), float32 numpy."""
    n = config.calibration_examples
    recipe = recipe_config(config, "stride", None, 1, config.learning_rate)
    size = min(config.batch_size, n)
    batches = [np.asarray(images) for images, _ in train_dataset(recipe, 0, size, -(-n // size))]
    return np.concatenate(batches)[:n]


def distill_stage(model, base, config, out_path, metadata):
    """Distils `base` into `model` for `config.epochs` on the unlabelled training crops; saves it."""
    recipe = recipe_config(config, "stride", os.path.dirname(out_path), config.epochs,
                           config.learning_rate)
    steps = config.train_examples // config.batch_size
    images = None
    for epoch in range(config.epochs):  # the recipe's crops of each epoch, one cosine over all
        ds = train_dataset(recipe, epoch, config.batch_size, steps)
        images = ds if images is None else images.concatenate(ds)
    distill(model, base, images, epochs=1, temperature=config.temperature,
            learning_rate=config.distill_learning_rate, warmup=config.distill_warmup, verbose=2)
    save_model(model, out_path, metadata)
    return model


def stages(config):
    """The stages scored, in order (see `STAGES`)."""
    tuned = "distilled" if config.distill else "finetuned"
    return [s for s in STAGES if s not in ("calibrated", "finetuned", "distilled")
            or s == tuned or (s == "calibrated" and config.calibration_examples)]


def check_base(config):
    """A one-line `UsageError` for a `base` that is not a `stride` model of `config.dataset`.

    The base's metadata (`saving.read_metadata`) names its method and dataset
    when `shiftinv train` (or this experiment) made it; a model without them
    is taken as it is.
    """
    if config.base is None:
        return
    metadata = read_metadata(config.base)
    method, dataset = metadata.get("method"), metadata.get("dataset")
    if method not in (None, "stride"):
        raise UsageError(f"`base` must be a `stride` model; {config.base} was trained with {method!r}")
    if dataset not in (None, config.dataset):
        raise UsageError(f"`base` {config.base} was trained on {dataset!r}, not on {config.dataset!r}; "
                         f"pass `dataset={dataset}` or a base trained on {config.dataset!r}")


def check_out_dir(out_dir, config, overwrite=False):
    """A one-line `UsageError` for an `out_dir` whose results were made on another dataset, unless `overwrite`."""
    path = os.path.join(out_dir, "results.json")
    if overwrite or not os.path.isfile(path):
        return
    try:
        stored = records.load_results(path)["config"].get("dataset", data.DEFAULT_DATASET)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return  # written atomically, so only a foreign file gets here: the method records decide
    if stored != config.dataset:
        raise UsageError(f"{out_dir} holds results made on {stored!r}, not on {config.dataset!r}; pass "
                         f"`overwrite=True` to replace them, or choose another `out_dir`")


def base_model(out_dir, config, overwrite=False):
    if config.base is not None:
        return load_model(config.base, compile=False), config.base
    recipe = recipe_config(config, "stride", os.path.join(out_dir, "base"), config.base_epochs,
                           config.learning_rate)
    result = train(recipe, overwrite=overwrite)
    return load_model(result["final_model"], compile=False), result["final_model"]


def pair_settings(config, method):
    """What one method's row depends on (checked before a finished row is reused)."""
    settings = dataclasses.asdict(config)
    for key in ("methods", "data_dir"):
        settings.pop(key)
    if not settings["distill_warmup"]:  # the default: left out, so records made before it still match
        settings.pop("distill_warmup")
    return {**settings, "method": method}


def with_dataset(record):
    """A record written before `dataset` was a setting: it ran on the default dataset."""
    if isinstance(record, dict) and isinstance(record.get("settings"), dict):
        record["settings"].setdefault("dataset", data.DEFAULT_DATASET)
    return record


def run_finetune(out_dir, config, overwrite=False):
    """Runs the experiment; writes `results.json` and `results.md`; returns the results.

    A rerun skips the methods that finished (their `record.json`); one
    finished with other settings stops the run unless `overwrite`.
    """
    stamp = provenance.start()
    check_base(config)
    check_out_dir(out_dir, config, overwrite)
    protocol = data.spec(config.dataset).protocol
    eval_ds, _ = data.load(config.dataset, "validation", batch_size=250, crop=False,
                           max_examples=config.eval_examples, data_dir=config.data_dir)
    eval_ds = eval_ds.cache()
    os.makedirs(out_dir, exist_ok=True)  # once the inputs are checked: a wrong `data_dir` leaves no folder
    base, base_path = base_model(out_dir, config, overwrite)
    before = score(base, eval_ds, config.worst_case_images, protocol)
    print(f"stride base: {before}", flush=True)
    calibration = calibration_images(config) if config.calibration_examples else None
    rows = {}
    for i, method in enumerate(config.methods, 1):
        print(f"finetune [{i}/{len(config.methods)}] {method}: {', '.join(stages(config)[1:])} "
              f"({os.path.join(out_dir, method)})", file=sys.stderr, flush=True)
        method_dir = os.path.join(out_dir, method)
        record_path, settings = os.path.join(method_dir, "record.json"), pair_settings(config, method)
        record = records.read_pair(record_path, settings, overwrite, upgrade=with_dataset)
        if record is not None:  # finished before the run was stopped
            rows[method] = record["row"]
            print(f"{method}: done before, from {record_path}", flush=True)
            continue
        os.makedirs(method_dir, exist_ok=True)
        converted, conversion = convert(base, method, padding="circular")
        row = {"before": before, "converted": score(converted, eval_ds, config.worst_case_images, protocol),
               "max_fit_error": conversion.max_fit_error, "conversion": str(conversion)}
        metadata = {**read_metadata(base_path), "method": method, "config": dataclasses.asdict(config)}
        if calibration is not None:
            converted, conversion = convert(base, method, padding="circular", calibration_data=calibration)
            row["calibrated"] = score(converted, eval_ds, config.worst_case_images, protocol)
            row["calibration"] = str(conversion)
        if config.distill:
            tuned = distill_stage(converted, base, config, os.path.join(method_dir, "distilled.keras"), metadata)
            row["distilled"] = score(tuned, eval_ds, config.worst_case_images, protocol)
        else:
            tuned = finetune(converted, config, os.path.join(method_dir, "finetuned.keras"), metadata)
            row["finetuned"] = score(tuned, eval_ds, config.worst_case_images, protocol)
        scratch = train(recipe_config(config, method, os.path.join(method_dir, "scratch"), config.epochs,
                                      config.learning_rate), overwrite=overwrite)
        row["scratch"] = score(scratch["model"] or load_model(scratch["final_model"]), eval_ds,
                               config.worst_case_images, protocol)
        rows[method] = row
        records.write_pair(record_path, settings, row=row)
        print(f"{method}: " + ", ".join(f"{s}={row[s]}" for s in stages(config)), flush=True)
        write_results(out_dir, config, base_path, rows, stamp)  # after each method
    return write_results(out_dir, config, base_path, rows, stamp)


def write_results(out_dir, config, base_path, rows, stamp):
    """Writes `results.json` and `results.md` (one row per method); returns the results."""
    results = {"config": dataclasses.asdict(config), "base": base_path, "methods": rows,
               "provenance": provenance.finish(stamp)}
    write_json(os.path.join(out_dir, "results.json"), results)
    shown = [s for s in STAGES if all(s in row for row in rows.values())]
    columns = [(s, f"{s}: top-1 / cons. / circ. cons. / worst case %",
                lambda v: f"{v['top1']:.2f} / {v['consistency']:.2f} / {v['circular_consistency']:.2f} / "
                + (f"{v['worst_case_accuracy']:.2f}" if "worst_case_accuracy" in v else "-"))
               for s in shown]
    records.write_summary(os.path.join(out_dir, "results.md"), title(results["config"]), rows, columns)
    return results


def title(c):
    """The line above the results table: the settings of the experiment (`c`: the config as a dict)."""
    return (
        f"{c.get('dataset', data.DEFAULT_DATASET)}, ResNet-18 width {c['width']}, circular padding; "
        f"{c['train_examples']} training images, {c['eval_examples']} test images "
        f"(worst case: the first {c.get('worst_case_images')}); "
        f"base: {c['base_epochs']} epochs (or `--base`); "
        f"fine-tuning and from-scratch: {c['epochs']} epoch(s)"
        + (f"; calibration: {c['calibration_examples']} unlabelled training images"
           if c.get("calibration_examples") else "")
        + (f"; distillation (no labels): Adam {c['distill_learning_rate']:g} cosine, T={c['temperature']:g}"
           + (f", warm-up {c['distill_warmup']:g} of the steps" if c.get("distill_warmup") else "")
           if c.get("distill") else "")
        + "."
    )
