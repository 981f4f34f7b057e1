"""`shiftinv evaluate`: shift-invariance and accuracy of trained models."""

from keras_shiftinv.cli._args import positive_int
from keras_shiftinv.data import DATASETS


def add_parser(sub):
    p = sub.add_parser("evaluate", help="measure shift-invariance and accuracy of .keras models")
    p.add_argument("models", nargs="+", help="one or more .keras files (one line per model in the plots)")
    p.add_argument("--dataset", choices=DATASETS,
                   help="default: the dataset the models were trained on (else fashion_mnist)")
    p.add_argument("--data-dir", help="tfds data dir, Fashion-MNIST IDX dir, or image folder (its val/)")
    p.add_argument("--manual-dir", help="folder with ILSVRC2012_img_val.tar (imagenet2012)")
    p.add_argument("--out", default="runs/evaluation", help="folder for report.json, report.md, plots")
    p.add_argument("--max-examples", type=positive_int, help="evaluate on the first N images")
    p.add_argument("--stability-images", type=positive_int, default=500)
    p.add_argument("--crop-size", type=positive_int, help="defaults to the model's input size")
    p.add_argument("--max-shift", type=int,
                   help="circular shift range (32 for ImageNet at 224, scaled with the crop; 4 Fashion-MNIST)")
    p.add_argument("--passes", type=positive_int, help="consistency passes (5)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args):
    import os

    from keras_shiftinv.errors import UsageError
    from keras_shiftinv.evaluation import evaluate_models

    seen = {}
    for path in args.models:  # one report row per model: the same file twice would overwrite a row
        key = os.path.realpath(path)
        if key in seen:
            raise UsageError(f"{path} is given twice (as {seen[key]!r} and {path!r}); list each model once")
        seen[key] = path

    evaluate_models(
        args.models, args.dataset, out=args.out, data_dir=args.data_dir, manual_dir=args.manual_dir,
        max_examples=args.max_examples, stability_images=args.stability_images, crop_size=args.crop_size,
        max_shift=args.max_shift, passes=args.passes, seed=args.seed,
    )
