"""`shiftinv finetune`: convert a trained strided ResNet-18 to each method and fine-tune it."""

import os

from keras_shiftinv.cli._args import positive_int
from keras_shiftinv.methods import METHODS


def add_parser(sub):
    from keras_shiftinv.experiments.table1 import DATASETS
    from keras_shiftinv.experiments.table1 import LEARNING_RATES

    rates = ", ".join(f"{rate:g} for {name}" for name, rate in LEARNING_RATES.items())
    p = sub.add_parser("finetune", help="convert a stride ResNet-18 to each method, fine-tune, compare")
    p.add_argument("--out", default="results/finetune", help="folder for results.json/.md and the runs")
    p.add_argument("--dataset", choices=DATASETS, default="fashion_mnist",
                   help="fashion_mnist_photo: the items over real photographs")
    p.add_argument("--base", help="a trained stride model (.keras) of --dataset; default: train one into "
                   "OUT/base. A base whose metadata names another dataset is refused; one made without "
                   "that metadata (before datasets were recorded) cannot be checked")
    p.add_argument("--methods", nargs="+", choices=[m for m in METHODS if m != "stride"])
    p.add_argument("--train-examples", type=positive_int, default=6000)
    p.add_argument("--eval-examples", type=positive_int, default=1000)
    p.add_argument("--base-epochs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (also the from-scratch budget)")
    p.add_argument("--learning-rate", type=float,
                   help=f"peak one-cycle rate of the base and from-scratch runs (default: the dataset's "
                   f"Table 1 rate: {rates})")
    p.add_argument("--finetune-learning-rate", type=float, default=0.05,
                   help="peak one-cycle rate of the fine-tuning (default: %(default)s, for every dataset)")
    p.add_argument("--calibration-examples", type=int, default=0,
                   help="calibrate each conversion on N unlabelled training images (0: off)")
    p.add_argument("--distill", action="store_true",
                   help="distil the base into each converted model (no labels) instead of fine-tuning")
    p.add_argument("--distill-learning-rate", type=float, default=1e-4,
                   help="Adam's starting rate of the distillation (default: %(default)s, for every dataset)")
    p.add_argument("--temperature", type=float, default=4.0, help="distillation temperature")
    p.add_argument("--distill-warmup", type=float, default=0.0,
                   help="fraction of the distillation steps with a linear warm-up of the rate (0: none)")
    p.add_argument("--worst-case-images", type=positive_int, default=1000,
                   help="test images of the worst-case accuracy (every crop offset)")
    p.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (both datasets; "
                   "fashion_mnist_photo takes its backgrounds from scikit-image's bundled photographs)")
    p.add_argument("--overwrite", action="store_true",
                   help="redo methods (and runs) whose stored results were made with other settings")
    p.set_defaults(func=run)


def run(args):
    from keras_shiftinv.errors import UsageError
    from keras_shiftinv.experiments.finetune import FinetuneConfig
    from keras_shiftinv.experiments.finetune import run_finetune

    if args.calibration_examples < 0:
        raise UsageError(f"--calibration-examples must be >= 0; got {args.calibration_examples}")
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise UsageError(f"--learning-rate must be > 0; got {args.learning_rate}")
    if not args.temperature > 0 or not args.distill_learning_rate > 0:
        raise UsageError("--temperature and --distill-learning-rate must be > 0; "
                         f"got {args.temperature} and {args.distill_learning_rate}")
    if not 0 <= args.distill_warmup < 1:
        raise UsageError(f"--distill-warmup must be in [0, 1); got {args.distill_warmup}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out} is a file, not a folder; pick another --out")
    config = FinetuneConfig(
        base=args.base, dataset=args.dataset, learning_rate=args.learning_rate,
        train_examples=args.train_examples, eval_examples=args.eval_examples,
        base_epochs=args.base_epochs, epochs=args.epochs,
        finetune_learning_rate=args.finetune_learning_rate, data_dir=args.data_dir,
        calibration_examples=args.calibration_examples, distill=args.distill,
        distill_learning_rate=args.distill_learning_rate, temperature=args.temperature,
        distill_warmup=args.distill_warmup,
        worst_case_images=args.worst_case_images,
    )
    if args.methods:
        config.methods = tuple(args.methods)
    run_finetune(args.out, config, overwrite=args.overwrite)
    print(f"results: {os.path.join(args.out, 'results.md')}")
