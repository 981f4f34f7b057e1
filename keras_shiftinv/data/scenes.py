"""Fashion-MNIST scenes: a small offline segmentation task (per-pixel class masks).

Not a `load` dataset: `load` yields `(image, class)` pairs for classification,
these are `(image, mask)` pairs, so they have their own entry point.
"""

import numpy as np

from keras_shiftinv.data.fashion_mnist import CLASS_NAMES as FASHION_MNIST_NAMES
from keras_shiftinv.data.fashion_mnist import load_arrays
from keras_shiftinv.data.fashion_mnist import split_name
from keras_shiftinv.errors import DataError

SCENE_CLASS_NAMES = ("background",) + FASHION_MNIST_NAMES
SCENES_DATASET = "fashion_mnist_scenes"  # the dataset name a segmentation model's metadata records
ITEM_SIZE = 28


def fashion_mnist_scenes(
    split="train",
    num_scenes=1000,
    *,
    seed=0,
    image_size=64,
    min_items=2,
    max_items=4,
    threshold=0.1,
    data_dir=None,
):
    """Canvases with a few Fashion-MNIST items each, and their per-pixel labels.

    Each scene is an `image_size` square of zeros onto which `min_items` to
    `max_items` items (drawn uniformly) are pasted at uniform random positions
    (whole items, inside the canvas). An item's pixels above `threshold` (in
    0..1) overwrite the canvas and get label `item class + 1`; the rest stays
    background (label 0). Items drawn later cover earlier ones. The items of
    the `"train"` split come from Fashion-MNIST's training images, those of
    `"validation"` (or `"test"`) from its test images. The same arguments
    always give the same scenes.

    Args:
        split: `"train"`, or `"validation"` / `"test"`.
        num_scenes: int, how many scenes.
        seed: int; scene `i` depends only on `(seed, split, i)` and the sizes.
        image_size: canvas side, at least 28.
        min_items, max_items: items per scene, inclusive.
        threshold: float in [0, 1), the pixel value above which an item covers.
        data_dir: folder with the Fashion-MNIST IDX files (the Debian
            package's by default).

    Returns:
        `(images, masks)`: float32 `(num_scenes, S, S, 1)` in 0..1 and int32
        `(num_scenes, S, S)` in `0..10` (`SCENE_CLASS_NAMES`).

    Example:
    >>> images, masks = fashion_mnist_scenes("validation", 2, seed=1)
    >>> images.shape, masks.shape, int(masks.max()) <= 10
    ((2, 64, 64, 1), (2, 64, 64), True)
    """
    if isinstance(num_scenes, bool) or not isinstance(num_scenes, int) or num_scenes < 1:
        raise DataError(f"`num_scenes` must be a positive integer. Received: num_scenes={num_scenes!r}")
    if not isinstance(image_size, int) or image_size < ITEM_SIZE:
        raise DataError(f"`image_size` must be an integer >= {ITEM_SIZE}. Received: image_size={image_size!r}")
    if not isinstance(min_items, int) or not isinstance(max_items, int) or not 1 <= min_items <= max_items:
        raise DataError(
            "Items per scene must satisfy 1 <= min_items <= max_items. "
            f"Received: min_items={min_items!r}, max_items={max_items!r}"
        )
    if not 0 <= threshold < 1:
        raise DataError(f"`threshold` must be in [0, 1). Received: threshold={threshold!r}")
    source = split_name(split)
    items, labels = load_arrays(source, data_dir)  # load_arrays rejects unknown splits
    images = np.zeros((num_scenes, image_size, image_size, 1), "float32")
    masks = np.zeros((num_scenes, image_size, image_size), "int32")
    stream = {"train": 0, "test": 1}[source]
    for i in range(num_scenes):
        rng = np.random.default_rng([seed, stream, i])
        for _ in range(rng.integers(min_items, max_items + 1)):
            k = rng.integers(len(items))
            top, left = rng.integers(0, image_size - ITEM_SIZE + 1, size=2)
            item = items[k].astype("float32") / 255.0
            cover = item > threshold
            window = (i, slice(top, top + ITEM_SIZE), slice(left, left + ITEM_SIZE))
            images[window][..., 0][cover] = item[cover]
            masks[window][cover] = labels[k] + 1
    return images, masks
