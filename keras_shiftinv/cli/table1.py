"""`shiftinv table1`: the paper's Table 1 at small scale."""

import argparse
import os

from keras_shiftinv.methods import METHODS


def add_parser(sub):
    from keras_shiftinv.experiments.table1 import DATASETS
    from keras_shiftinv.experiments.table1 import PRESETS

    p = sub.add_parser("table1", help="the paper's Table 1 on Fashion-MNIST (CPU, offline)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--out", default="results/table1", help="folder for results.json/.md, plots and the models (a rerun resumes, skipping scored pairs)")
    p.add_argument("--methods", nargs="+", choices=METHODS, help="default: the paper's seven (not the low-pass ones)")
    p.add_argument("--variants", dest="methods", nargs="+", choices=METHODS, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # the old name of --methods
    p.add_argument("--seeds", nargs="+", type=int, help="override the preset's seeds")
    p.add_argument("--overwrite", action="store_true",
                   help="redo pairs whose stored scores or runs were made with other settings")
    p.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files")
    p.add_argument("--dataset", choices=DATASETS, default="fashion_mnist",
                   help="fashion_mnist_photo: the items over real photographs")
    p.set_defaults(func=run)


def run(args):
    from keras_shiftinv.errors import UsageError
    from keras_shiftinv.experiments.table1 import Table1Config
    from keras_shiftinv.experiments.table1 import run_table1

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out} is a file, not a folder; pick another --out")
    overrides = {"data_dir": args.data_dir, "dataset": args.dataset}
    if args.methods:
        overrides["methods"] = tuple(args.methods)
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    run_table1(args.out, Table1Config.from_preset(args.preset, **overrides), overwrite=args.overwrite)
    print(f"results: {os.path.join(args.out, 'results.md')}")
