"""`shiftinv evaluate`: metrics of trained models -> JSON, Markdown, plots.

Everything the user can get wrong (the models, the data, the output folder,
the protocol) is checked before the first metric is computed; the reports are
written atomically at the end (docs/design.md, "Metrics").
"""

import os

from keras_shiftinv import data
from keras_shiftinv import metrics
from keras_shiftinv import provenance
from keras_shiftinv import report
from keras_shiftinv.errors import UsageError
from keras_shiftinv.saving import atomic_write
from keras_shiftinv.saving import atomic_write_text
from keras_shiftinv.saving import load_model
from keras_shiftinv.saving import read_metadata
from keras_shiftinv.saving import write_json


def protocol_for(dataset, crop_size, side, max_shift=None, passes=None):
    """The metric protocol for models of input `crop_size` on `side`-pixel images.

    The dataset's `DatasetSpec.protocol`: Fashion-MNIST's (crop 32, circular
    shifts in [-4, 4), 16 stability positions) for the 40x40 Fashion-MNIST
    images, ImageNet's (crop 224, shifts in [-32, 32), 64 positions) for
    decoded photos. The circular shift range and the
    number of stability positions scale with `crop_size`; the positions are
    capped so that they fit in the `side - crop_size` margin of the uncropped
    images (the stability crop moves `positions // 2` pixels each way).

    Args:
        dataset: the dataset name.
        crop_size: the models' input side.
        side: the side of the uncropped evaluation images.
        max_shift: overrides the scaled circular shift range.
        passes: overrides the number of consistency passes (5).

    Returns:
        dict with `crop_size`, `max_shift`, `positions`, `passes`.

    Example:
    >>> protocol_for("imagenet2012", 224, 256)
    {'crop_size': 224, 'max_shift': 32, 'positions': 64, 'passes': 5}
    >>> protocol_for("folder", 160, 183)
    {'crop_size': 160, 'max_shift': 23, 'positions': 46, 'passes': 5}
    >>> protocol_for("fashion_mnist", 32, 40)
    {'crop_size': 32, 'max_shift': 4, 'positions': 16, 'passes': 5}
    """
    base = data.spec(dataset).protocol
    scale = crop_size / base["crop_size"]
    if side <= crop_size:
        raise UsageError(
            f"the evaluation images are {side} pixels, not larger than the crop {crop_size}: "
            "the shift metrics need a margin"
        )
    if max_shift is None:
        max_shift = max(1, round(base["max_shift"] * scale))
    if not 0 <= max_shift <= crop_size:
        raise UsageError(f"`max_shift` must be between 0 and the crop size {crop_size}. Received: max_shift={max_shift}")
    positions = max(2, min(round(base["positions"] * scale), 2 * (side - crop_size)))
    return {"crop_size": crop_size, "max_shift": max_shift, "positions": positions,
            "passes": base["passes"] if passes is None else passes}


def check_out_dir(out):
    """A one-line `UsageError` unless `out` is, or can be created as, a writable folder.

    Creates nothing.
    """
    path = os.path.abspath(out)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"`out` must be a folder; {out} is a file")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"`out={out}` cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"`out={out}` is not writable ({existing} is read-only for this user)")


def check_classes(name, model, metadata, info):
    """A one-line `UsageError` unless the model's classes are the data's classes."""
    outputs = model.output_shape[-1]
    if outputs != info.num_classes:
        raise UsageError(
            f"{name} predicts {outputs} classes but {info.name} has {info.num_classes}; "
            "evaluate a model on the data it was trained for"
        )
    names = metadata.get("class_names")
    if names is not None and tuple(names) != tuple(info.class_names):
        index = next((i for i, (a, b) in enumerate(zip(names, info.class_names)) if a != b), len(names))
        got = names[index] if index < len(names) else None
        want = info.class_names[index] if index < info.num_classes else None
        raise UsageError(
            f"{name} was trained on other classes than {info.name} has: class {index} is {got!r} "
            f"for the model and {want!r} for the data"
        )


def _model_names(paths):
    names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    return names if len(set(names)) == len(names) else list(paths)  # same file names: full paths


def evaluate_models(
    model_paths,
    dataset=None,
    *,
    out="runs/evaluation",
    data_dir=None,
    manual_dir=None,
    max_examples=None,
    stability_images=500,
    crop_size=None,
    max_shift=None,
    passes=None,
    seed=0,
    progress=True,
):
    """Measures every model on the validation split; writes `out/report.{json,md}` and plots.

    Args:
        model_paths: `.keras` files, all taking the same input size (or give
            `crop_size`).
        dataset: a name of `data.DATASETS`; when None, the dataset the models
            were trained on (their metadata), else `data.DEFAULT_DATASET`.
        out: the folder for `report.json`, `report.md`, `stability_curves.png`,
            `consistency_vs_accuracy.png`.
        data_dir, manual_dir: where the data is (see `data.load`).
        max_examples: evaluate on the first N images.
        stability_images: images in the stability curves.
        crop_size: the models' input side; read from the models when None.
        max_shift, passes: override the protocol (see `protocol_for`).
        seed: seed of the random crops and shifts.
        progress: show progress bars.

    Returns:
        `{model_name: {metric: value}}`.
    """
    stamp = provenance.start()
    check_out_dir(out)
    names = _model_names(model_paths)
    models = {name: load_model(p) for name, p in zip(names, model_paths)}
    metadata = {name: read_metadata(p) for name, p in zip(names, model_paths)}
    sizes = {m.input_shape[1] or metadata[n].get("image_size") for n, m in models.items()}
    if crop_size is None and (len(sizes) > 1 or None in sizes):
        raise UsageError("the models' input sizes differ or are not fixed; pass `crop_size`")
    crop = crop_size or sizes.pop()
    if dataset is None:
        trained_on = {metadata[n].get("dataset", data.DEFAULT_DATASET) for n in models}
        if len(trained_on) > 1:
            raise UsageError(f"the models were trained on different datasets {sorted(trained_on)}; pass `dataset`")
        dataset = trained_on.pop()
    where = {"data_dir": data_dir, "manual_dir": manual_dir}
    info = data.describe(dataset, "validation", image_size=crop, max_examples=max_examples, **where)
    for name, model in models.items():
        check_classes(name, model, metadata[name], info)
    protocol = protocol_for(dataset, crop, info.eval_side, max_shift, passes)
    ds, _ = data.load(dataset, "validation", batch_size=128, image_size=crop, training=False, crop=False,
                      seed=seed, max_examples=max_examples, **where)
    ds = ds.cache()
    rows, curves = {}, {}
    for i, (name, model) in enumerate(models.items(), 1):
        try:
            scores = metrics.evaluate_all(model, ds, protocol, seed=seed, stability_images=stability_images,
                                          progress=progress)
        except ValueError as e:
            raise UsageError(str(e)) from None
        curves[name] = scores.pop("_stability")["curves"]
        rows[name] = scores
        print(f"[{i}/{len(models)}] {name}: " + ", ".join(f"{k}={v:.4g}" for k, v in scores.items()), flush=True)
    write_reports(out, {"dataset": dataset, "class_names": list(info.class_names),
                        "num_examples": info.num_examples, "protocol": protocol, "models": rows,
                        "provenance": provenance.finish(stamp)}, curves)
    return rows


def write_reports(out, summary, curves):
    """`report.json`, `report.md` and the two plots in `out`, each written atomically."""
    os.makedirs(out, exist_ok=True)
    rows = summary["models"]
    table = report.markdown_table(rows)
    write_json(os.path.join(out, "report.json"), summary)
    atomic_write_text(os.path.join(out, "report.md"), table)
    atomic_write(os.path.join(out, "stability_curves.png"), lambda tmp: report.plot_stability(curves, tmp))
    atomic_write(os.path.join(out, "consistency_vs_accuracy.png"),
                 lambda tmp: report.plot_consistency_vs_accuracy(rows, tmp))
    print(table)
