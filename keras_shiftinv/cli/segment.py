"""`shiftinv segment`: a U-Net per downsampling method on Fashion-MNIST scenes."""

import argparse
import os

from keras_shiftinv.cli._args import positive_int
from keras_shiftinv.methods import METHODS


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def add_parser(sub):
    from keras_shiftinv.experiments.segment import PRESETS

    p = sub.add_parser("segment", help="shift-equivariant segmentation: U-Nets on Fashion-MNIST scenes (CPU)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--out", default="results/segment",
                   help="folder for results.json/.md, the picture, models (a rerun resumes, skipping finished pairs)")
    p.add_argument("--overwrite", action="store_true",
                   help="retrain pairs whose stored scores were made with other settings")
    p.add_argument("--methods", nargs="+", choices=METHODS, help="default: the paper's seven (not the low-pass ones)")
    p.add_argument("--seeds", nargs="+", type=int, help="override the preset's seeds")
    p.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files")
    # Overrides of the preset (small runs, CI).
    p.add_argument("--train-scenes", type=positive_int)
    p.add_argument("--test-scenes", type=positive_int)
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--depth", type=positive_int, help="downsamplings in the U-Net (at most 6 for 64x64)")
    p.add_argument("--width", type=positive_float, help="channel multiplier on 64-128-...")
    p.set_defaults(func=run)


def run(args):
    from keras_shiftinv.errors import UsageError
    from keras_shiftinv.experiments.segment import SegmentConfig
    from keras_shiftinv.experiments.segment import run_segment

    overrides = {"data_dir": args.data_dir}
    for key in ("train_scenes", "test_scenes", "epochs", "batch_size", "depth", "width"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.methods:
        overrides["methods"] = tuple(args.methods)
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    config = SegmentConfig.from_preset(args.preset, **overrides)
    if 2**config.depth > 64:
        raise UsageError(f"--depth must be at most 6 for 64x64 scenes. Received: depth={config.depth}")
    run_segment(args.out, config, overwrite=args.overwrite)
    print(f"results: {os.path.join(args.out, 'results.md')}")
