"""Any folder of images, one subfolder per class (DESIGN.md §6)."""

import os
from concurrent.futures import ThreadPoolExecutor

import tensorflow as tf
from PIL import Image

from keras_shiftinv.data.pipeline import finish
from keras_shiftinv.data.pipeline import shard
from keras_shiftinv.data.transforms import preprocess
from keras_shiftinv.errors import DataError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
ON_CORRUPT = ("error", "skip")


def list_image_folder(directory, on_corrupt="error"):
    """Lists `(paths, labels, class_names)` of a class-per-subfolder tree.

    Every file is opened and checked with Pillow first, so that a corrupt one
    is reported by name (`on_corrupt="error"`) or left out and counted
    (`"skip"`); the number skipped is returned too.
    """
    if on_corrupt not in ON_CORRUPT:
        raise DataError(f"on_corrupt must be one of {list(ON_CORRUPT)}. Received: on_corrupt={on_corrupt!r}")
    if not os.path.isdir(directory):
        raise DataError(f"Image folder not found: {directory}")
    class_names = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
    if not class_names:
        raise DataError(f"{directory} has no class subfolders (expected <dir>/<class>/<image>)")
    paths, labels = [], []
    for label, name in enumerate(class_names):
        for root, _, files in sorted(os.walk(os.path.join(directory, name))):
            for f in sorted(files):
                if f.lower().endswith(EXTENSIONS):
                    paths.append(os.path.join(root, f))
                    labels.append(label)
    if not paths:
        raise DataError(f"{directory} holds no images with extensions {list(EXTENSIONS)}")
    with ThreadPoolExecutor(8) as pool:
        ok = list(pool.map(_is_readable, paths))
    bad = [p for p, good in zip(paths, ok) if not good]
    if bad and on_corrupt == "error":
        raise DataError(f"Corrupt or unreadable image: {bad[0]} ({len(bad)} in all; pass on_corrupt='skip' to leave them out)")
    kept = [(p, lab) for p, lab, good in zip(paths, labels, ok) if good]
    return [p for p, _ in kept], [lab for _, lab in kept], class_names, len(bad)


def _is_readable(path):
    try:
        with Image.open(path) as image:
            image.verify()
        return True
    except Exception:  # noqa: BLE001 - any failure means "unreadable"
        return False


def image_folder(
    directory,
    batch_size=128,
    image_size=224,
    training=False,
    crop=True,
    seed=0,
    max_examples=None,
    on_corrupt="error",
    input_context=None,
):
    """Batched images from `directory/<class>/<image>`, any size, JPEG/PNG/BMP/GIF.

    Grey, RGB and RGBA images all become RGB. Training: random-resized-crop
    and flips; evaluation: resize the shorter side, center crop (or, with
    `crop=False`, the square resized image); ImageNet mean/std normalisation.

    Returns:
        `(dataset, info)` with `info = {"class_names": [...], "num_examples": n,
        "skipped": k}`.
    """
    paths, labels, class_names, skipped = list_image_folder(directory, on_corrupt)
    info = {"class_names": class_names, "num_examples": len(paths), "skipped": skipped}
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    if training:  # shuffle the file list once, reproducibly, before sharding
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=False)
    ds = shard(ds, input_context)

    def transform(path, seed_pair):
        return preprocess(tf.io.read_file(path), image_size, seed_pair, training, crop)

    return finish(ds, transform, batch_size, training, seed, max_examples), info
