"""Any folder of images, one subfolder per class (docs/design.md, "Data")."""

import os
from concurrent.futures import ThreadPoolExecutor

import tensorflow as tf
from PIL import Image

from keras_shiftinv.data.info import DatasetInfo
from keras_shiftinv.data.pipeline import finish
from keras_shiftinv.data.pipeline import shard
from keras_shiftinv.data.transforms import MAX_PIXELS
from keras_shiftinv.data.transforms import preprocess
from keras_shiftinv.data.transforms import resize_size_for
from keras_shiftinv.errors import DataError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
ON_CORRUPT = ("error", "skip")


def scan_image_folder(directory):
    """Lists `(paths, labels, class_names)` of a class-per-subfolder tree.

    Reads file names only (no image is opened). The tree must have at least
    two class subfolders, each holding at least one image (any depth below
    it); class folder names must be valid UTF-8 (they become the model's
    class names) without control characters (a newline would break
    `predict`'s output and LiteRT's `labels.txt`). File names may be any bytes: `paths` hold them as
    `os.listdir` returns them.

    Args:
        directory: the folder with one subfolder per class.

    Returns:
        `(paths, labels, class_names)`: lists of str, int and str, paths
        sorted by class, then by name.

    Example:
    >>> for name in ("cat", "dog"):
    ...     os.makedirs(os.path.join(tmp_dir, "pets", name))
    ...     keras.utils.save_img(os.path.join(tmp_dir, "pets", name, "1.png"), np.zeros((4, 4, 3)))
    >>> paths, labels, names = scan_image_folder(os.path.join(tmp_dir, "pets"))
    >>> names, labels
    (['cat', 'dog'], [0, 1])
    """
    if not os.path.isdir(directory):
        raise DataError(f"Image folder not found: {directory}")
    class_names = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
    if not class_names:
        raise DataError(f"{directory} has no class subfolders (expected {directory}/<class>/<image>)")
    for name in class_names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(
                f"class folder name is not valid UTF-8: {os.path.join(directory, name)!r}; rename it"
            ) from None
        if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):  # a newline would split labels.txt and output
            raise DataError(
                f"class folder name has a control character: {os.path.join(directory, name)!r}; rename it"
            )
    if len(class_names) < 2:
        raise DataError(
            f"{directory} has one class subfolder ({class_names[0]!r}); a classifier needs at least two"
        )
    paths, labels = [], []
    for label, name in enumerate(class_names):
        found = []
        for root, dirs, files in os.walk(os.path.join(directory, name)):
            dirs.sort()
            found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(EXTENSIONS)]
        if not found:
            raise DataError(
                f"class folder {os.path.join(directory, name)} holds no images "
                f"({', '.join(EXTENSIONS)}); add images or remove the folder"
            )
        paths += found
        labels += [label] * len(found)
    return paths, labels, class_names


_CHECKED = {}  # (path, size, mtime_ns) -> decodable, so each epoch's `load` decodes nothing again


def find_unreadable(paths, threads=8):
    """The paths among `paths` that the input pipeline could not decode.

    Every image is decoded in full (JPEGs at 1/8 scale, which still reads the
    whole compressed stream), so a truncated file is found here and not in
    the middle of an epoch. Bit depths below 8 (e.g. 1-bit BMP), which
    TensorFlow's decoder rejects, and images above `transforms.MAX_PIXELS`
    (read from the header, never decoded) count as unreadable too. Results are kept
    per process for files whose size and modification time are unchanged.
    """
    with ThreadPoolExecutor(threads) as pool:
        ok = list(pool.map(_is_decodable, paths))
    return [p for p, good in zip(paths, ok) if not good]


def _is_decodable(path):
    try:
        stat = os.stat(path)
    except OSError:
        return False
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _CHECKED:
        _CHECKED[key] = _decode_check(path)
    return _CHECKED[key]


DECODABLE = ("JPEG", "MPO", "PNG", "BMP", "GIF")  # Pillow's names of what tf.io.decode_image reads; MPO is JPEG


def _decode_check(path):
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:  # from the header, before anything is decoded
                return False
            if image.format in ("JPEG", "MPO"):
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
            return image.mode != "1" and image.format in DECODABLE
    except Exception:  # noqa: BLE001 - any failure means "unreadable"
        return False


def list_image_folder(directory, on_corrupt="error"):
    """`scan_image_folder`, then every image checked with `find_unreadable`.

    Args:
        directory: the folder with one subfolder per class.
        on_corrupt: `"error"` raises a `DataError` naming the first unreadable
            file; `"skip"` leaves unreadable files out.

    Returns:
        `(paths, labels, class_names, skipped)`, `skipped` the number left out.
    """
    if on_corrupt not in ON_CORRUPT:
        raise ValueError(f"`on_corrupt` must be one of {list(ON_CORRUPT)}. Received: on_corrupt={on_corrupt!r}")
    paths, labels, class_names = scan_image_folder(directory)
    bad = set(find_unreadable(paths))
    if bad and on_corrupt == "error":
        first = next(p for p in paths if p in bad)
        raise DataError(
            f"Corrupt or unreadable image: {first!r} ({len(bad)} in {directory}); "
            "delete or re-save the unreadable files"
        )
    kept = [(p, lab) for p, lab in zip(paths, labels) if p not in bad]
    return [p for p, _ in kept], [lab for _, lab in kept], class_names, len(bad)


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
    Every image is decoded once when the dataset is built (`find_unreadable`).

    Args:
        directory: the folder with one subfolder per class.
        batch_size: batch size (training drops the last partial batch).
        image_size: side of the (cropped) images.
        training: augment and shuffle.
        crop: center-crop evaluation images.
        seed: seed of the shuffle and the crops.
        max_examples: keep the first N images.
        on_corrupt: `"error"` or `"skip"` (see `list_image_folder`).
        input_context: `tf.distribute.InputContext` for per-host sharding.

    Returns:
        `(dataset, info)`: batches of `(images float32 (B, s, s, 3), labels
        int32 (B,))` and their `DatasetInfo` (name `"folder"`, split
        `"train"` when `training`, else `"validation"`; `skipped` images
        left out by `on_corrupt="skip"`).

    Example:
    >>> for name in ("cat", "dog"):
    ...     os.makedirs(os.path.join(tmp_dir, "pets", name))
    ...     keras.utils.save_img(os.path.join(tmp_dir, "pets", name, "1.png"), np.zeros((9, 7, 3)))
    >>> ds, info = image_folder(os.path.join(tmp_dir, "pets"), batch_size=2, image_size=8)
    >>> info.class_names, info.num_examples, info.skipped, info.eval_side
    (('cat', 'dog'), 2, 0, 9)
    >>> images, labels = next(iter(ds))
    >>> images.shape, labels.numpy()
    (TensorShape([2, 8, 8, 3]), array([0, 1], dtype=int32))
    """
    paths, labels, class_names, skipped = list_image_folder(directory, on_corrupt)
    n = len(paths) if max_examples is None else min(len(paths), max_examples)
    info = DatasetInfo("folder", "train" if training else "validation", tuple(class_names), n, image_size,
                       resize_size_for(image_size), skipped)
    # bytes, not str: a file name that is not valid UTF-8 is still read correctly.
    ds = tf.data.Dataset.from_tensor_slices(([os.fsencode(p) for p in paths], labels))
    if training:  # shuffle the file list once, reproducibly, before sharding
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=False)
    ds = shard(ds, input_context)

    def transform(path, seed_pair):
        return preprocess(tf.io.read_file(path), image_size, seed_pair, training, crop)

    return finish(ds, transform, batch_size, training, seed, max_examples), info


def folder_split_dir(data_dir, split):
    """`DIR/train` (or DIR itself when it has no `train/`) and `DIR/val|validation|test`.

    Returns None for a validation split the folder does not have.
    """
    if not data_dir:
        raise DataError("dataset 'folder' needs `data_dir=DIR` (DIR/train/<class>/<image>, optional DIR/val)")
    if not os.path.isdir(data_dir):
        raise DataError(f"image folder not found: {data_dir}")
    train = os.path.join(data_dir, "train")
    if split == "train":
        return train if os.path.isdir(train) else data_dir
    if not os.path.isdir(train):
        return None
    for name in ("val", "validation", "test"):
        if os.path.isdir(os.path.join(data_dir, name)):
            return os.path.join(data_dir, name)
    return None


def folder_split(data_dir, split):
    """(paths, class_names) of a folder split; validation must have train's classes."""
    directory = folder_split_dir(data_dir, split)
    if directory is None:
        raise DataError(
            f"{data_dir} has no validation folder: expected {os.path.join(data_dir, 'val')}/<class>/<image> "
            f"beside {os.path.join(data_dir, 'train')}/<class>/<image>"
        )
    paths, _, names = scan_image_folder(directory)
    if split == "validation":
        train_names = scan_image_folder(folder_split_dir(data_dir, "train"))[2]
        if names != train_names:
            only_train = sorted(set(train_names) - set(names))[:3]
            only_val = sorted(set(names) - set(train_names))[:3]
            raise DataError(
                f"{directory} and the training folder have different classes (only in train: {only_train}, "
                f"only in {os.path.basename(directory)}: {only_val}); give both the same class folders"
            )
    return paths, tuple(names)
