"""The `shiftinv` command line: train, evaluate, table1, export."""

import argparse
import os
import sys

from keras_shiftinv.errors import UsageError
from keras_shiftinv.models import DOWNSAMPLE_METHODS
from keras_shiftinv.training import DATASETS


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_train_parser(sub):
    p = sub.add_parser("train", help="train a ResNet-18 variant with the paper's recipe")
    p.add_argument("--model", choices=DOWNSAMPLE_METHODS, default="group", help="downsampling method")
    p.add_argument("--dataset", choices=DATASETS, default="imagenet2012")
    p.add_argument("--data-dir", help="tfds data dir, Fashion-MNIST IDX dir, or image folder root")
    p.add_argument("--manual-dir", help="folder with ILSVRC2012_img_{train,val}.tar (imagenet2012)")
    p.add_argument("--model-dir", default="runs/model", help="where checkpoints, logs and models go")
    p.add_argument("--epochs", type=positive_int, default=16)
    p.add_argument("--batch-size", type=positive_int, default=128, help="global batch size")
    p.add_argument("--learning-rate", type=float, default=0.5, help="peak LR for batch 128 (scaled linearly)")
    p.add_argument("--weight-decay", type=float, default=5e-5)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier")
    p.add_argument("--padding", choices=("zeros", "reflect", "circular"), default="zeros")
    p.add_argument("--image-size", type=positive_int, help="crop size (224; 32 for fashion_mnist)")
    p.add_argument("--max-train-examples", type=positive_int)
    p.add_argument("--max-eval-examples", type=positive_int)
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--jit-compile", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu-replicas", type=int, default=0,
                   help="split the CPU into N logical devices and mirror over them (testing)")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    p.set_defaults(func=run_train)


def run_train(args):
    from keras_shiftinv.training import TrainConfig
    from keras_shiftinv.training import train

    fields = TrainConfig.__dataclass_fields__
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    result = train(config)
    if result["final_model"]:
        print(f"final model: {result['final_model']}")


def add_export_parser(sub):
    p = sub.add_parser("export", help="export a .keras model as a TF Serving SavedModel")
    p.add_argument("model", help="a .keras file")
    p.add_argument("export_dir", help="the model's base path for TF Serving")
    p.add_argument("--version", type=positive_int, default=1)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run_export)


def run_export(args):
    from keras_shiftinv.export import export_saved_model

    model = load_keras_model(args.model)
    try:
        path = export_saved_model(model, args.export_dir, version=args.version, overwrite=args.overwrite)
    except FileExistsError as e:
        raise UsageError(str(e)) from None
    print(f"exported: {path}")


def load_keras_model(path):
    """Loads a `.keras` file, with one-line errors for a missing or bad file."""
    import keras

    import keras_shiftinv  # noqa: F401 - registers the layers

    if not os.path.exists(path):
        raise UsageError(f"model file not found: {path}")
    try:
        return keras.saving.load_model(path)
    except Exception as e:  # noqa: BLE001 - any failure: not a loadable Keras model
        raise UsageError(f"{path} is not a loadable .keras model ({type(e).__name__})") from None


def add_evaluate_parser(sub):
    p = sub.add_parser("evaluate", help="measure shift-invariance and accuracy of .keras models")
    p.add_argument("models", nargs="+", help="one or more .keras files (one line per model in the plots)")
    p.add_argument("--dataset", choices=DATASETS, default="fashion_mnist")
    p.add_argument("--data-dir", help="tfds data dir, Fashion-MNIST IDX dir, or image folder (its val/)")
    p.add_argument("--manual-dir")
    p.add_argument("--out", default="runs/evaluation", help="folder for report.json, report.md, plots")
    p.add_argument("--max-examples", type=positive_int, help="evaluate on the first N images")
    p.add_argument("--stability-images", type=positive_int, default=500)
    p.add_argument("--crop-size", type=positive_int, help="defaults to the model's input size")
    p.add_argument("--max-shift", type=int, help="circular shift range (32 ImageNet, 4 Fashion-MNIST)")
    p.add_argument("--passes", type=positive_int, help="consistency passes (5)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_evaluate)


def run_evaluate(args):
    from keras_shiftinv.evaluation import evaluate_models

    evaluate_models(args)


def add_table1_parser(sub):
    from keras_shiftinv.table1 import PRESETS

    p = sub.add_parser("table1", help="the paper's Table 1 on Fashion-MNIST (CPU, offline)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--out", default="results/table1", help="folder for results.json/.md and plots")
    p.add_argument("--variants", nargs="+", choices=DOWNSAMPLE_METHODS, help="default: all seven")
    p.add_argument("--seeds", nargs="+", type=int, help="override the preset's seeds")
    p.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files")
    p.set_defaults(func=run_table1_command)


def run_table1_command(args):
    from keras_shiftinv.table1 import Table1Config
    from keras_shiftinv.table1 import run_table1

    overrides = {"data_dir": args.data_dir}
    if args.variants:
        overrides["variants"] = tuple(args.variants)
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    run_table1(args.out, Table1Config.from_preset(args.preset, **overrides))
    print(f"results: {os.path.join(args.out, 'results.md')}")


def build_parser():
    parser = argparse.ArgumentParser(prog="shiftinv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_train_parser, add_evaluate_parser, add_table1_parser, add_export_parser):
        add(sub)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UsageError as e:
        print(f"shiftinv {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
