"""Fashion-MNIST from the Debian package `dataset-fashion-mnist` (docs/design.md, "Data")."""

import gzip
import os
import zlib

import numpy as np
import tensorflow as tf

from keras_shiftinv.data.info import DatasetInfo
from keras_shiftinv.data.info import package_split
from keras_shiftinv.data.pipeline import finish
from keras_shiftinv.data.pipeline import shard
from keras_shiftinv.data.transforms import resize_square
from keras_shiftinv.data.transforms import thin
from keras_shiftinv.errors import DataError

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
NUM_CLASSES = len(CLASS_NAMES)
PADDED_SIZE = 40  # 28 zero-padded by 6 on each side
MEAN, STD = 0.2860, 0.3530  # of the training images, in 0..1
# ITU-R BT.601 luma weights; they sum to exactly 1, so a grey RGB image stays itself.
LUMA = (0.299, 0.587, 0.114)
REINSTALL = "reinstall it (apt-get install --reinstall dataset-fashion-mnist) or pass `data_dir=DIR` with intact IDX files"


def split_name(split):
    """The package's split names ("train", "validation") -> Fashion-MNIST's ("train", "test")."""
    return {"validation": "test"}.get(split, split)


def _damaged(path, error):
    return DataError(f"{path} is damaged ({type(error).__name__}: {error}); {REINSTALL}")


def read_idx(path):
    """Reads an IDX file (optionally gzipped) into a numpy array.

    A truncated or damaged file is a one-line `DataError` naming it.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise _damaged(path, e) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise DataError(
            f"{path} is truncated: expected {int(np.prod(shape))} values, found {array.size}; {REINSTALL}"
        )
    return array.reshape(shape)


def load_arrays(split, data_dir=None):
    """(images uint8 (N, 28, 28), labels int64 (N,)) for split 'train' or 'test'."""
    if split not in FILES:
        raise DataError(f"Fashion-MNIST has splits 'train' and 'test'. Received: split={split!r}")
    directory = data_dir or DEBIAN_DIR
    paths = [os.path.join(directory, name) for name in FILES[split]]
    if all(os.path.exists(p) for p in paths):
        images, labels = read_idx(paths[0]), read_idx(paths[1]).astype("int64")
        if len(images) != len(labels) or images.shape[1:] != (28, 28) or labels.ndim != 1:
            raise DataError(
                f"{directory} holds {images.shape} images and {labels.shape} labels for {split!r}; "
                f"expected (N, 28, 28) and (N,); {REINSTALL}"
            )
        return images, labels
    return _load_from_tfds(split, data_dir, directory)


def _load_from_tfds(split, data_dir, directory):
    import tensorflow_datasets as tfds

    builder = tfds.builder("fashion_mnist", data_dir=data_dir)
    if not builder.is_prepared():
        raise DataError(
            f"Fashion-MNIST not found in {directory}. Install it with "
            "`apt-get install dataset-fashion-mnist` (or pass `data_dir=DIR` with the IDX files)."
        )
    images, labels = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
    return images[..., 0], labels.astype("int64")


def fashion_mnist(
    split="train",
    batch_size=128,
    image_size=32,
    training=None,
    crop=True,
    seed=0,
    max_examples=None,
    data_dir=None,
    input_context=None,
):
    """Batched Fashion-MNIST: zero-padded to 40x40, grey replicated to RGB.

    Training: random `image_size` crops and horizontal flips. Evaluation: the
    center crop, or with `crop=False` the whole 40x40 padded image (for the
    consistency metrics, which crop it themselves). Pixels are normalised
    with the training set's mean and std.

    Args:
        split: `"train"` or `"test"`.
        batch_size: per-pipeline batch size.
        image_size: crop side, at most 40.
        training: augment and shuffle; defaults to `split == "train"`.
        crop: center-crop evaluation images (ignored in training).
        seed: int seed of the shuffle and the crops.
        max_examples: keep only the first N examples.
        data_dir: folder with the four IDX files; defaults to the Debian
            package's folder, then tfds's prepared `fashion_mnist`.
        input_context: `tf.distribute.InputContext` for per-host sharding.

    Returns:
        `(dataset, info)`: batches of `(images float32 (B, s, s, 3), labels
        int64 (B,))` and their `DatasetInfo` (split `"validation"` for `"test"`).

    Example:
    >>> ds, info = fashion_mnist("test", batch_size=4, max_examples=8)
    >>> info.split, info.num_examples, info.eval_side, next(iter(ds))[0].shape
    ('validation', 8, 40, TensorShape([4, 32, 32, 3]))
    """
    if not 1 <= image_size <= PADDED_SIZE:
        raise DataError(
            f"Fashion-MNIST crops must be between 1 and {PADDED_SIZE} pixels. "
            f"Received: image_size={image_size}"
        )
    training = split == "train" if training is None else training
    images, labels = load_arrays(split, data_dir)
    ds = shard(tf.data.Dataset.from_tensor_slices((images, labels)), input_context)

    def transform(image, seed_pair):
        if not training:
            return eval_transform(image[..., None], image_size, crop)
        image = crop_padded(_pad(tf.cast(image[..., None], tf.float32) / 255.0), image_size, seed_pair, True, crop)
        return _normalize(image)

    n = len(labels) if max_examples is None else min(len(labels), max_examples)
    info = DatasetInfo("fashion_mnist", package_split(split), CLASS_NAMES, n, image_size, PADDED_SIZE)
    return finish(ds, transform, batch_size, training, seed, max_examples, shuffle_buffer=60_000), info


def _pad(image):
    """(28, 28, C) -> (40, 40, C), zeros on every side."""
    border = (PADDED_SIZE - 28) // 2
    return tf.pad(image, [[border, border], [border, border], [0, 0]])  # (40, 40, C)


def _normalize(grey):
    """(H, W, 1) in 0..1 -> the training set's mean/std, grey replicated to RGB (H, W, 3)."""
    return tf.repeat((grey - MEAN) / STD, 3, axis=-1)


def to_grey(image):
    """`(H, W, 1 or 3)` -> float32 `(H, W, 1)`: BT.601 luma; a grey RGB image stays bit-exact."""
    image = tf.cast(image, tf.float32)
    if image.shape[-1] == 1:
        return image
    luma = tf.reduce_sum(image * tf.constant(LUMA), axis=-1, keepdims=True)
    is_grey = tf.reduce_all(image == image[..., :1])
    return tf.where(is_grey, image[..., :1], luma)


def eval_transform(image, image_size, crop=True):
    """Fashion-MNIST's evaluation transform of one `(H, W, 1 or 3)` image in 0..255.

    Grey (`to_grey`), resized to 28x28 unless it is, zero-padded to 40x40,
    center crop (or, `crop=False`, the whole 40x40), the training set's
    mean/std, grey replicated to RGB. The input pipeline (`fashion_mnist`)
    and the exported serving graph both apply it. An image more than
    `OVERSAMPLE` times larger than 28 is first thinned in uint8
    (`transforms.thin`), so no full-size float copy is made.

    Example:
    >>> item = np.zeros((28, 28, 1), "uint8")
    >>> out = eval_transform(item, 32)
    >>> out.shape, round(float(out[0, 0, 0]), 4) == round(-MEAN / STD, 4)
    (TensorShape([32, 32, 3]), True)
    """
    grey = resize_square(to_grey(thin(image, 28)), 28) / 255.0
    return _normalize(crop_padded(_pad(grey), image_size, None, False, crop))


def crop_padded(image, image_size, seed_pair, training, crop):
    """The protocol's crop of a padded `(40, 40, C)` image (docs/design.md, 'Data').

    Training: a random `image_size` crop and a random horizontal flip, from the
    stateless `seed_pair`. Evaluation: the center crop, or with `crop=False` the
    whole padded image (the shift metrics crop it themselves).
    """
    channels = image.shape[-1]
    if training:
        image = tf.image.stateless_random_crop(image, (image_size, image_size, channels), seed_pair)
        return tf.image.stateless_random_flip_left_right(image, seed_pair + 1)
    if crop:
        offset = (PADDED_SIZE - image_size) // 2
        return image[offset : offset + image_size, offset : offset + image_size]
    return image


def fashion_mnist_num_examples(split, data_dir=None):
    """Number of images in a split, read from the IDX header alone."""
    directory = data_dir or DEBIAN_DIR
    path = os.path.join(directory, FILES[split][1])
    if os.path.exists(path):
        try:
            with gzip.open(path, "rb") as f:
                header = f.read(8)
        except (OSError, EOFError, zlib.error) as e:
            raise _damaged(path, e) from None
        if len(header) < 8:
            raise DataError(f"{path} is truncated; {REINSTALL}")
        return int.from_bytes(header[4:8], "big")
    return len(load_arrays(split, data_dir)[1])
