"""Fashion-MNIST items over real photographs, in the manner of MNIST-M.

docs/design.md, "Data": on zero-padded Fashion-MNIST a crop shift of an item
on black is a circular shift; here every item sits on a 40x40 patch of a
real photograph, so a shift brings new background in at one edge and drops
some at the other, as in natural images.

The photographs are the ones bundled in the scikit-image wheel (read as
files from its `data/` folder; nothing is downloaded, no fetching function is
called). Each photo's columns are split: backgrounds of the training split
come from the left three quarters, those of the test split from the right
quarter (`TEST_FRACTION`), so no test background pixel was seen in training.
"""

import importlib.util
import os

import numpy as np
import tensorflow as tf

from keras_shiftinv.data.fashion_mnist import CLASS_NAMES
from keras_shiftinv.data.fashion_mnist import PADDED_SIZE
from keras_shiftinv.data.fashion_mnist import crop_padded
from keras_shiftinv.data.fashion_mnist import load_arrays
from keras_shiftinv.data.info import DatasetInfo
from keras_shiftinv.data.info import package_split
from keras_shiftinv.data.pipeline import finish
from keras_shiftinv.data.pipeline import shard
from keras_shiftinv.data.transforms import resize_square
from keras_shiftinv.data.transforms import thin
from keras_shiftinv.errors import DataError

# Colour and grey photographs of scikit-image's wheel (grey ones are replicated to RGB).
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "camera.png", "brick.png", "grass.png", "gravel.png")
TEST_FRACTION = 0.25  # the right quarter of each photo's columns: test backgrounds only
# Per-channel mean and std (0..1) of the 60,000 training composites with background_seed=0;
# `tests/test_photo.py` recomputes them.
MEAN = (0.4869, 0.4210, 0.3992)
STD = (0.2351, 0.2190, 0.2244)


def photo_dir():
    """The `data/` folder of the installed scikit-image, found without importing it."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise DataError(
            "fashion_mnist_photo needs the photographs bundled with scikit-image: "
            "pip install 'keras-shiftinv[photo]'"
        )
    return os.path.join(os.path.dirname(spec.origin), "data")


def load_photos(directory=None):
    """The background photographs as uint8 RGB arrays (H, W, 3), in `PHOTOS` order."""
    from PIL import Image

    directory = directory or photo_dir()
    photos = []
    for name in PHOTOS:
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            raise DataError(f"photograph {name} not found in {directory} (reinstall scikit-image)")
        with Image.open(path) as image:
            photos.append(np.asarray(image.convert("RGB")))
    return photos


def background_windows(shapes, split, count, seed=0):
    """Where each example's 40x40 background comes from, and its item colour.

    Args:
        shapes: `(height, width)` of each photograph.
        split: `"train"` (left `1 - TEST_FRACTION` of each photo's columns)
            or `"test"` (the rest).
        count: number of examples.
        seed: int; the same seed gives the same windows.

    Returns:
        `(photo, top, left, colour)`: int32 arrays (count,) and a float32
        array (count, 3) in 0..1.
    """
    if split not in ("train", "test"):
        raise DataError(f"Unknown split. Expected 'train' or 'test'. Received: split={split!r}")
    rng = np.random.default_rng([seed, split == "test"])
    heights, widths = np.array(shapes, dtype="int64").T
    cut = np.floor(widths * (1 - TEST_FRACTION)).astype("int64")
    low, high = (np.zeros_like(cut), cut) if split == "train" else (cut, widths)
    if np.any(high - low < PADDED_SIZE) or np.any(heights < PADDED_SIZE):
        raise DataError(f"every photo region must be at least {PADDED_SIZE} pixels wide and high")
    photo = rng.integers(0, len(shapes), count)
    top = rng.integers(0, heights[photo] - PADDED_SIZE + 1)
    left = rng.integers(low[photo], high[photo] - PADDED_SIZE + 1)
    colour = rng.random((count, 3), dtype="float32")
    return photo.astype("int32"), top.astype("int32"), left.astype("int32"), colour


def composite(item, background, colour):
    """The item's grey level as alpha: `a * colour + (1 - a) * background`.

    Args:
        item: uint8 (..., 28, 28), the Fashion-MNIST item.
        background: uint8 (..., 40, 40, 3), the photo patch.
        colour: float (..., 3) in 0..1, the item's colour.

    Returns:
        float32 (..., 40, 40, 3) in 0..1; the item is centered (6 pixels of
        pure background on each side) and the background is unchanged
        wherever the item's pixel is 0.

    Example:
    >>> item = np.zeros((28, 28), "uint8"); item[0, 0] = 255
    >>> out = composite(item, np.full((40, 40, 3), 51, "uint8"), np.array([1.0, 0.0, 0.0]))
    >>> [round(float(v), 2) for v in out[6, 6]], [round(float(v), 2) for v in out[0, 0]]
    ([1.0, 0.0, 0.0], [0.2, 0.2, 0.2])
    """
    border = (PADDED_SIZE - 28) // 2
    rank = len(item.shape) - 2
    alpha = tf.cast(item, tf.float32)[..., None] / 255.0  # (..., 28, 28, 1)
    alpha = tf.pad(alpha, [[0, 0]] * rank + [[border, border], [border, border], [0, 0]])  # (..., 40, 40, 1)
    colour = tf.cast(colour, tf.float32)[..., None, None, :]  # (..., 1, 1, 3)
    return alpha * colour + (1.0 - alpha) * tf.cast(background, tf.float32) / 255.0


def _photo_stack(photos):
    """All photos in one zero-padded uint8 tensor (P, H_max, W_max, 3)."""
    height = max(p.shape[0] for p in photos)
    width = max(p.shape[1] for p in photos)
    stack = np.zeros((len(photos), height, width, 3), "uint8")
    for i, p in enumerate(photos):
        stack[i, : p.shape[0], : p.shape[1]] = p
    return tf.constant(stack)


def composite_arrays(split="train", background_seed=0, max_examples=None, data_dir=None, photos=None):
    """Items, labels and backgrounds of a split, before any crop.

    Returns:
        `(items uint8 (N, 28, 28), labels int64 (N,), windows)` with
        `windows = (photo, top, left, colour)` from `background_windows`.
    """
    items, labels = load_arrays(split, data_dir)
    if max_examples is not None:
        items, labels = items[:max_examples], labels[:max_examples]
    photos = load_photos() if photos is None else photos
    windows = background_windows([p.shape[:2] for p in photos], split, len(labels), background_seed)
    return items, labels, windows


def fashion_mnist_photo(
    split="train",
    batch_size=128,
    image_size=32,
    training=None,
    crop=True,
    seed=0,
    max_examples=None,
    data_dir=None,
    input_context=None,
    background_seed=0,
):
    """Batched Fashion-MNIST composited over photo patches, 40x40 RGB.

    Same geometry and protocol as `fashion_mnist`: training takes random
    `image_size` crops and horizontal flips of the 40x40 composite;
    evaluation the center crop, or with `crop=False` the whole 40x40 image
    (for the shift metrics). Pixels are normalised with `MEAN` and `STD`.

    Args:
        split: `"train"` or `"test"`.
        batch_size: per-pipeline batch size.
        image_size: crop side, at most 40.
        training: augment and shuffle; defaults to `split == "train"`.
        crop: center-crop evaluation images (ignored in training).
        seed: int seed of the shuffle and the crops.
        max_examples: keep only the first N examples.
        data_dir: folder with the Fashion-MNIST IDX files (as `fashion_mnist`).
        input_context: `tf.distribute.InputContext` for per-host sharding.
        background_seed: int; fixes which photo patch and item colour each
            example gets (the dataset itself, independent of `seed`).

    Returns:
        `(dataset, info)`: batches of `(images float32 (B, s, s, 3), labels
        int64 (B,))` and their `DatasetInfo` (split `"validation"` for `"test"`).
    """
    if not 1 <= image_size <= PADDED_SIZE:
        raise DataError(
            f"fashion_mnist_photo crops must be between 1 and {PADDED_SIZE} pixels. "
            f"Received: image_size={image_size}"
        )
    training = split == "train" if training is None else training
    photos = load_photos()
    items, labels, (photo, top, left, colour) = composite_arrays(split, background_seed, max_examples,
                                                                 data_dir, photos)
    stack = _photo_stack(photos)
    ds = tf.data.Dataset.from_tensor_slices(((items, photo, top, left, colour), labels))
    ds = shard(ds, input_context)

    def transform(example, seed_pair):
        item, index, y, x, rgb = example
        background = stack[index, y : y + PADDED_SIZE, x : x + PADDED_SIZE]  # (40, 40, 3)
        image = composite(item, background, rgb)
        return _normalize(crop_padded(image, image_size, seed_pair, training, crop))

    info = DatasetInfo("fashion_mnist_photo", package_split(split), CLASS_NAMES, len(labels), image_size,
                       PADDED_SIZE)
    return finish(ds, transform, batch_size, training, seed, None, shuffle_buffer=60_000), info


def _normalize(image):
    """RGB in 0..1 -> (image - MEAN) / STD."""
    return (image - tf.constant(MEAN)) / tf.constant(STD)


def eval_transform(image, image_size, crop=True):
    """The evaluation transform of one `(H, W, 3)` composite in 0..255, as the serving graph applies it.

    Resized to 40x40 unless it is, center crop (or, `crop=False`, the whole
    40x40), `MEAN`/`STD`: the evaluation branch of `fashion_mnist_photo`,
    whose composites are made at 40x40 in 0..1 and share the crop and
    normalisation steps. An image more than `OVERSAMPLE` times larger than 40
    is first thinned in uint8 (`transforms.thin`).
    """
    image = resize_square(tf.cast(thin(image, PADDED_SIZE), tf.float32), PADDED_SIZE) / 255.0
    return _normalize(crop_padded(image, image_size, None, False, crop))
