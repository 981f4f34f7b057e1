"""`shiftinv predict`: top classes of image files, from a `.keras` file or an exported SavedModel."""

import json
import os
import stat
import warnings

from keras_shiftinv.cli._args import positive_int
from keras_shiftinv.errors import DataError
from keras_shiftinv.errors import UsageError

# Files above this are refused before reading: 4 bytes per pixel of the pixel budget (40 MP, see
# data.transforms.MAX_PIXELS) holds any image format within the budget, uncompressed RGBA BMP included.
MAX_IMAGE_BYTES = 160_000_000


def add_parser(sub):
    p = sub.add_parser("predict", help="top-5 class names and probabilities of image files")
    p.add_argument("model", help="a .keras file, or a SavedModel dir from `shiftinv export` (or its base path)")
    p.add_argument("images", nargs="+", help="JPEG, PNG, GIF or BMP files (regular files, at most 160 MB and "
                                              "40 megapixels each)")
    p.add_argument("--top", type=positive_int, default=5, help="classes shown per image (at most 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args):
    import tensorflow as tf

    encoded = [read_image(path) for path in args.images]
    for path, data in zip(args.images, encoded):
        check_pixels(path, data)
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


def read_image(path, max_bytes=MAX_IMAGE_BYTES):
    """The bytes of the regular file `path`; anything else (FIFO, device, folder) or a file above
    `max_bytes` is a one-line `DataError`, raised before reading."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e.strerror}") from None
    try:
        info = os.fstat(fd)  # of what was opened, not of what the name points to now
        if not stat.S_ISREG(info.st_mode):
            raise DataError(f"{path} is not a regular file (an image file is expected)")
        if info.st_size > max_bytes:
            raise DataError(f"{path} is too large: {info.st_size} bytes, above the limit of {max_bytes} bytes")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # grew while being read
        raise DataError(f"{path} is too large: above the limit of {max_bytes} bytes")
    return data


def check_pixels(path, data):
    """A one-line `DataError` if the header of `data` gives more pixels than `data.transforms.MAX_PIXELS`.

    Only the header is read (PIL's `Image.open`, no `load`); what PIL
    cannot open is left to the decoder, which names it.
    """
    import io

    from PIL import Image

    from keras_shiftinv.data.transforms import MAX_PIXELS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the check is ours, below
            try:
                with Image.open(io.BytesIO(data)) as image:
                    width, height = image.size
            finally:
                Image.MAX_IMAGE_PIXELS = limit
    except Exception:  # noqa: BLE001 - not an image PIL knows: the decoder's error names it
        return
    if width * height > MAX_PIXELS:
        raise DataError(f"{path} is too large: {width}x{height} pixels (width x height), above the limit of "
                        f"{MAX_PIXELS} pixels")


def bad_image_message(error, paths):
    marker = "image_bytes["
    if marker in error:
        index, reason = error.split(marker, 1)[1].split("] ", 1)
        reason = reason.split("]", 1)[0].strip().rstrip("'\"")
        if not reason.startswith("is too large"):
            reason = "is not a decodable JPEG, PNG, GIF or BMP image"
        return f"{paths[int(index)]} {reason}"
    return f"prediction failed: {error.strip().splitlines()[-1][:200]}"


def load_serving(model_path):
    """`fn(image_bytes) -> outputs` of `serving_default`, for a `.keras` file or a SavedModel."""
    import tensorflow as tf

    if os.path.isdir(model_path):
        path = saved_model_dir(model_path)
        return tf.saved_model.load(path).signatures["serving_default"]
    from keras_shiftinv.export.preprocessing import image_transform
    from keras_shiftinv.export.preprocessing import needed_side
    from keras_shiftinv.export.saved_model import classify
    from keras_shiftinv.export.saved_model import decode_batch
    from keras_shiftinv.export.spec import ServingSpec
    from keras_shiftinv.saving import check_keras_file
    from keras_shiftinv.saving import load_model
    from keras_shiftinv.saving import read_metadata

    check_keras_file(model_path)
    metadata = read_metadata(model_path)
    model = load_model(model_path, compile=False)
    try:
        spec = ServingSpec.for_model(model, metadata)
    except ValueError as e:
        raise UsageError(str(e).split(" Received: ")[0]) from None
    transform = image_transform(spec.preprocessing, spec.image_size)
    need = needed_side(spec.preprocessing, spec.image_size)
    run = classify(model, spec)
    return lambda image_bytes: run(decode_batch(image_bytes, transform, spec.image_size, need, spec.max_pixels))[0]


def saved_model_dir(path):
    """`path` if it holds a SavedModel, else its highest numeric version folder."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = [int(n) for n in os.listdir(path) if n.isdigit() and
                os.path.exists(os.path.join(path, n, "saved_model.pb"))]
    if not versions:
        raise UsageError(f"{path} holds no SavedModel (saved_model.pb) and no version folder with one")
    return os.path.join(path, str(max(versions)))
