"""`shiftinv export`: a `.keras` model as a SavedModel (TF Serving), LiteRT or ONNX model."""

from keras_shiftinv.cli._args import positive_int
from keras_shiftinv.errors import UsageError

FORMAT_NAMES = ("saved_model", "litert", "onnx")


def add_parser(sub):
    p = sub.add_parser("export", help="export a .keras model for TF Serving, LiteRT or ONNX")
    p.add_argument("model", help="a .keras file")
    p.add_argument("export_dir", help="the model's base path; the export goes to EXPORT_DIR/VERSION/")
    p.add_argument("--format", choices=FORMAT_NAMES, default="saved_model")
    p.add_argument("--version", type=positive_int, default=1)
    p.add_argument("--preprocessing", choices=("imagenet", "fashion_mnist", "fashion_mnist_photo"),
                   help="the in-graph image transform; default: that of the model's training data")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version")
    p.add_argument("--max-pixels", type=positive_int, default=None,
                   help="serving_default refuses larger images (width x height), before decoding them "
                        "(default: 40000000)")
    p.set_defaults(func=run)


def run(args):
    from keras_shiftinv.export import FORMATS
    from keras_shiftinv.export.publish import check_destination
    from keras_shiftinv.saving import check_keras_file
    from keras_shiftinv.saving import load_model
    from keras_shiftinv.saving import read_metadata

    try:
        check_destination(args.export_dir, args.version, args.overwrite)  # before the slow part
        check_keras_file(args.model)
        metadata = read_metadata(args.model)
        model = load_model(args.model, compile=False)
        kwargs = dict(version=args.version, overwrite=args.overwrite, metadata=metadata,
                      preprocessing=args.preprocessing)
        if args.max_pixels is not None:
            if args.format != "saved_model":
                raise UsageError("--max-pixels applies to --format saved_model only (LiteRT and ONNX take "
                                 "decoded images)")
            kwargs["max_pixels"] = args.max_pixels
        path = FORMATS[args.format](model, args.export_dir, **kwargs)
    except FileExistsError:
        raise UsageError(
            f"{args.export_dir} already has version {args.version}; pass --overwrite or another --version"
        ) from None
    except ValueError as e:
        raise UsageError(str(e).split(" Received: ")[0]) from None
    print(f"exported: {path}")
