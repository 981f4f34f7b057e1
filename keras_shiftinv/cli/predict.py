"""`shiftinv predict`: top classes of image files, from a `.keras` file or an exported SavedModel."""

import json
import os

from keras_shiftinv.cli._args import positive_int
from keras_shiftinv.errors import DataError
from keras_shiftinv.errors import UsageError


def add_parser(sub):
    p = sub.add_parser("predict", help="top-5 class names and probabilities of image files")
    p.add_argument("model", help="a .keras file, or a SavedModel dir from `shiftinv export` (or its base path)")
    p.add_argument("images", nargs="+", help="JPEG, PNG, GIF or BMP files")
    p.add_argument("--top", type=positive_int, default=5, help="classes shown per image (at most 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args):
    import tensorflow as tf

    encoded = [read_image(path) for path in args.images]
    serve = load_serving(args.model)
    try:
        out = serve(tf.constant(encoded, dtype=tf.string))
    except tf.errors.InvalidArgumentError as e:
        raise DataError(bad_image_message(str(e), args.images)) from None
    results = []
    for i, path in enumerate(args.images):
        names = [n.decode("utf-8") for n in out["class_names"][i].numpy()]
        classes = out["classes"][i].numpy()
        probabilities = out["probabilities"][i].numpy()
        top = [{"class_name": names[j], "class": int(classes[j]), "probability": float(probabilities[classes[j]])}
               for j in range(min(args.top, len(names)))]
        results.append({"image": path, "top": top})
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for result in results:
        print(result["image"])
        for entry in result["top"]:
            print(f"  {entry['probability']:.4f}  {entry['class_name']}")


def read_image(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e.strerror}") from None


def bad_image_message(error, paths):
    marker = "image_bytes["
    if marker in error:
        index = int(error.split(marker, 1)[1].split("]", 1)[0])
        return f"{paths[index]} is not a decodable JPEG, PNG, GIF or BMP image"
    return f"prediction failed: {error.strip().splitlines()[-1][:200]}"


def load_serving(model_path):
    """`fn(image_bytes) -> outputs` of `serving_default`, for a `.keras` file or a SavedModel."""
    import tensorflow as tf

    if os.path.isdir(model_path):
        path = saved_model_dir(model_path)
        return tf.saved_model.load(path).signatures["serving_default"]
    from keras_shiftinv.export.preprocessing import image_transform
    from keras_shiftinv.export.saved_model import classify
    from keras_shiftinv.export.saved_model import decode_batch
    from keras_shiftinv.export.spec import ServingSpec
    from keras_shiftinv.saving import load_model
    from keras_shiftinv.saving import read_metadata

    model = load_model(model_path, compile=False)
    try:
        spec = ServingSpec.for_model(model, read_metadata(model_path))
    except ValueError as e:
        raise UsageError(str(e)) from None
    transform = image_transform(spec.preprocessing, spec.image_size)
    run = classify(model, spec)
    return lambda image_bytes: run(decode_batch(image_bytes, transform, spec.image_size))[0]


def saved_model_dir(path):
    """`path` if it holds a SavedModel, else its highest numeric version folder."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = [int(n) for n in os.listdir(path) if n.isdigit() and
                os.path.exists(os.path.join(path, n, "saved_model.pb"))]
    if not versions:
        raise UsageError(f"{path} holds no SavedModel (saved_model.pb) and no version folder with one")
    return os.path.join(path, str(max(versions)))
