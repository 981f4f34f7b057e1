"""`shiftinv evaluate`: metrics of trained models -> JSON, Markdown, plots."""

import os

from keras_shiftinv import metrics
from keras_shiftinv import report
from keras_shiftinv.errors import UsageError
from keras_shiftinv.training import TrainConfig
from keras_shiftinv.training import make_dataset


def protocol_for(dataset, crop_size, max_shift=None, passes=None):
    """DESIGN.md §5: Fashion-MNIST's scaled-down protocol, else ImageNet's."""
    base = metrics.FASHION_MNIST_PROTOCOL if dataset == "fashion_mnist" else metrics.IMAGENET_PROTOCOL
    scale = crop_size / base["crop_size"]
    protocol = {
        "crop_size": crop_size,
        "max_shift": max(0, round(base["max_shift"] * scale)) if max_shift is None else max_shift,
        "positions": base["positions"],
        "passes": base["passes"] if passes is None else passes,
    }
    if protocol["max_shift"] < 0 or protocol["max_shift"] > crop_size:
        raise UsageError(f"--max-shift must be between 0 and the crop size {crop_size}, got {protocol['max_shift']}")
    return protocol


def evaluate_models(args):
    from keras_shiftinv.cli import load_keras_model

    names = [os.path.splitext(os.path.basename(p))[0] for p in args.models]
    if len(set(names)) < len(names):  # same file names: use full paths
        names = list(args.models)
    models = {name: load_keras_model(p) for name, p in zip(names, args.models)}
    sizes = {m.input_shape[1] for m in models.values()}
    crop = args.crop_size or sizes.pop()
    if args.crop_size is None and sizes:
        raise UsageError("the models take different input sizes; pass --crop-size")
    config = TrainConfig(dataset=args.dataset, data_dir=args.data_dir, manual_dir=args.manual_dir,
                         image_size=crop, max_eval_examples=args.max_examples, seed=args.seed).validate()
    dataset = make_dataset(config, training=False, batch_size=128, crop=False).cache()
    side = dataset.element_spec[0].shape[1]
    if side is not None and side < crop:
        raise UsageError(f"the evaluation images are {side} pixels, smaller than the crop {crop}")
    protocol = protocol_for(args.dataset, crop, args.max_shift, args.passes)
    rows, curves = {}, {}
    for name, model in models.items():
        try:
            scores = metrics.evaluate_all(model, dataset, protocol, seed=args.seed,
                                          stability_images=args.stability_images)
        except ValueError as e:
            raise UsageError(str(e)) from None
        curves[name] = scores.pop("_stability")["curves"]
        rows[name] = scores
        print(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in scores.items()), flush=True)
    os.makedirs(args.out, exist_ok=True)
    report.write_json({"dataset": args.dataset, "protocol": protocol, "models": rows},
                      os.path.join(args.out, "report.json"))
    table = report.markdown_table(rows)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(table)
    report.plot_stability(curves, os.path.join(args.out, "stability_curves.png"))
    report.plot_consistency_vs_accuracy(rows, os.path.join(args.out, "consistency_vs_accuracy.png"))
    print(table)
    return rows
