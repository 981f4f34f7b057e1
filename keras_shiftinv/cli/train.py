"""`shiftinv train`: train a ResNet variant with the paper's recipe.

The flags are built from `TrainConfig`'s fields (names, defaults, help, choices),
so the training defaults live in one place.
"""

import argparse
import dataclasses

from keras_shiftinv.cli._args import positive_int
from keras_shiftinv.training.config import TrainConfig

POSITIVE = ("epochs", "batch_size", "image_size", "max_train_examples", "max_eval_examples")


def add_parser(sub):
    p = sub.add_parser("train", help="train a ResNet-18 variant with the paper's recipe")
    for field in dataclasses.fields(TrainConfig):
        meta = field.metadata
        if not meta.get("cli", True):
            continue
        flag = "--" + field.name.replace("_", "-")
        if field.type is bool:
            p.add_argument(flag, action="store_true", help=meta["help"])
            continue
        kind = {"int": int, "float": float, "str": str}[getattr(field.type, "__name__", field.type)]
        if field.name in POSITIVE:
            kind = positive_int
        p.add_argument(flag, type=kind, default=field.default, choices=meta.get("choices"),
                       help=meta["help"] + (f" (default: {field.default})" if field.default is not None else ""))
        if "old_flag" in meta:  # the flag's old name, still accepted, not shown in --help
            p.add_argument(meta["old_flag"], dest=field.name, type=kind, choices=meta.get("choices"),
                           default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--overwrite", action="store_true",
                   help="discard another run found in --model-dir instead of stopping")
    p.set_defaults(func=run)


def run(args):
    import os

    from keras_shiftinv.errors import UsageError
    from keras_shiftinv.training import train

    if args.model_dir and os.path.exists(args.model_dir) and not os.path.isdir(args.model_dir):
        raise UsageError(f"--model-dir {args.model_dir} is a file, not a folder; pick another --model-dir")

    names = [f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("cli", True)]
    result = train(TrainConfig(**{name: getattr(args, name) for name in names}), overwrite=args.overwrite)
    if result["final_model"] and not result["already_finished"]:
        print(f"final model: {result['final_model']}")
