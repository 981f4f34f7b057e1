"""The evaluation transform of a model's training data, as serving graph code.

docs/design.md, "Export and serving": a served model takes raw client images
and applies, inside the graph, exactly the evaluation transform of the data it
was trained on (`keras_shiftinv.data`), so clients re-implement nothing.
"""

import tensorflow as tf

from keras_shiftinv.data.fashion_mnist import MEAN
from keras_shiftinv.data.fashion_mnist import PADDED_SIZE
from keras_shiftinv.data.fashion_mnist import STD
from keras_shiftinv.data.fashion_mnist_photo import MEAN as PHOTO_MEAN
from keras_shiftinv.data.fashion_mnist_photo import STD as PHOTO_STD
from keras_shiftinv.data.transforms import center_crop
from keras_shiftinv.data.transforms import normalize
from keras_shiftinv.data.transforms import resize_size_for
from keras_shiftinv.data.transforms import thin

PREPROCESSINGS = ("imagenet", "fashion_mnist", "fashion_mnist_photo")
# The package's dataset names -> the preprocessing of their evaluation images.
DATASET_PREPROCESSING = {
    "imagenet2012": "imagenet",
    "folder": "imagenet",
    "fashion_mnist": "fashion_mnist",
    "fashion_mnist_photo": "fashion_mnist_photo",
}
# ITU-R BT.601 luma weights; they sum to exactly 1, so a grey RGB image stays itself.
LUMA = (0.299, 0.587, 0.114)


def resolve(preprocessing=None, dataset=None):
    """The preprocessing name for an explicit choice or a training dataset name.

    Args:
        preprocessing: one of `PREPROCESSINGS`, or None.
        dataset: the `"dataset"` entry of a model's metadata, or None.

    Returns:
        `preprocessing` if given, else the one of `dataset`, else `"imagenet"`.

    Example:
    >>> resolve(dataset="fashion_mnist"), resolve(dataset="folder"), resolve()
    ('fashion_mnist', 'imagenet', 'imagenet')
    """
    if preprocessing is None:
        if dataset is not None and dataset not in DATASET_PREPROCESSING:
            raise ValueError(
                f"No serving preprocessing is known for dataset {dataset!r}; expected one of "
                f"{sorted(DATASET_PREPROCESSING)}. Received: dataset={dataset!r}"
            )
        preprocessing = DATASET_PREPROCESSING.get(dataset, "imagenet")
    if preprocessing not in PREPROCESSINGS:
        raise ValueError(
            f"Unknown preprocessing. Expected one of {list(PREPROCESSINGS)}. "
            f"Received: preprocessing={preprocessing!r}"
        )
    return preprocessing


def needed_side(preprocessing, image_size):
    """The side the transform resizes to: the short side for ImageNet, both sides otherwise.

    Images far above it are thinned in uint8 before any float copy is made
    (`data.transforms.thin`).
    """
    return {"imagenet": resize_size_for(image_size), "fashion_mnist": 28,
            "fashion_mnist_photo": PADDED_SIZE}[resolve(preprocessing)]


def image_transform(preprocessing, image_size):
    """`fn(image) -> float32 (image_size, image_size, 3)` for one RGB image.

    `image` is `(H, W, 3)` in the 0..255 range (uint8 or float), any size; one
    more than `OVERSAMPLE` (4) times larger than `needed_side` is first
    thinned to every k-th row and column (`data.transforms.thin`):
    - `"imagenet"`: resize the short side to `256/224 * image_size`, center
      crop, ImageNet mean/std (`data.transforms.center_crop`, `normalize`).
    - `"fashion_mnist"`: grey (BT.601 luma), resized to 28x28 unless it is,
      zero-padded to 40x40, center crop, the training set's mean/std, grey
      replicated to RGB, as `data.fashion_mnist` does for evaluation.
    - `"fashion_mnist_photo"`: resized to 40x40 unless it is, center crop,
      that dataset's mean/std.
    """
    preprocessing = resolve(preprocessing)
    offset = (PADDED_SIZE - image_size) // 2
    border = (PADDED_SIZE - 28) // 2

    def sized(image, side):
        image = tf.cast(thin(image, side), tf.float32)
        same = tf.reduce_all(tf.shape(image)[:2] == side)
        return tf.cond(same, lambda: image, lambda: tf.image.resize(image, (side, side), antialias=True))

    def imagenet(image):
        return normalize(center_crop(image, image_size))

    def fashion_mnist(image):
        image = tf.cast(thin(image, 28), tf.float32)  # thinned first: no full-size float copy
        luma = tf.reduce_sum(image * tf.constant(LUMA), axis=-1, keepdims=True)
        is_grey = tf.reduce_all(image == image[..., :1])
        grey = tf.where(is_grey, image[..., :1], luma)  # grey images stay bit-exact
        grey = sized(grey, 28) / 255.0
        grey = tf.pad(grey, [[border, border], [border, border], [0, 0]])  # 40x40
        grey = grey[offset : offset + image_size, offset : offset + image_size]
        return tf.repeat((grey - MEAN) / STD, 3, axis=-1)

    def fashion_mnist_photo(image):
        image = sized(image, PADDED_SIZE) / 255.0
        image = image[offset : offset + image_size, offset : offset + image_size]
        return (image - tf.constant(PHOTO_MEAN)) / tf.constant(PHOTO_STD)

    transform = {"imagenet": imagenet, "fashion_mnist": fashion_mnist,
                 "fashion_mnist_photo": fashion_mnist_photo}[preprocessing]

    def apply(image):
        out = transform(image)
        out.set_shape((image_size, image_size, 3))
        return out

    return apply

