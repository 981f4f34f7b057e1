"""One entry point for every dataset: `load(name, split, ...) -> (dataset, info)`.

Training, evaluation and the experiments call `load` and `describe` and never
dispatch on the dataset name themselves: both read the dataset's `DatasetSpec`
(`data.registry.SPECS`; docs/design.md, "Data").
"""

from keras_shiftinv.data.info import DatasetInfo
from keras_shiftinv.data.registry import spec
from keras_shiftinv.errors import DataError

SPLITS = ("train", "validation")


def _check(name, split):
    spec(name)
    if split not in SPLITS:
        raise DataError(f"Unknown split. Expected one of {list(SPLITS)}. Received: split={split!r}")


def has_split(name, split, data_dir=None, manual_dir=None):
    """Whether the dataset has `split` (a folder may have no validation images)."""
    _check(name, split)
    return spec(name).has_split(split, data_dir, manual_dir)


def describe(name, split="train", *, image_size=None, max_examples=None, data_dir=None, manual_dir=None):
    """The `DatasetInfo` of a split, without building a pipeline (no image is decoded).

    Args:
        name, split, image_size, max_examples, data_dir, manual_dir: as in `load`.

    Returns:
        A `DatasetInfo`.

    Example:
    >>> info = describe("fashion_mnist", "validation")
    >>> info.class_names[:2], info.num_classes, info.num_examples, info.image_size, info.eval_side
    (('T-shirt/top', 'Trouser'), 10, 10000, 32, 40)
    """
    _check(name, split)
    image_size = image_size or spec(name).default_image_size
    names, n, side = spec(name).examples(split, image_size, data_dir, manual_dir)
    if max_examples:
        n = min(n, max_examples)
    return DatasetInfo(name, split, tuple(names), n, image_size, side)


def load(
    name,
    split="train",
    *,
    batch_size=128,
    image_size=None,
    training=None,
    crop=True,
    seed=0,
    max_examples=None,
    data_dir=None,
    manual_dir=None,
    input_context=None,
):
    """A batched `tf.data.Dataset` of `(images, labels)` and its `DatasetInfo`.

    Args:
        name: one of `DATASETS`: `"fashion_mnist"` (Debian's IDX files),
            `"imagenet2012"` (tfds, from the manual tars), `"folder"`
            (`data_dir/train/<class>/<image>`, optional `data_dir/val/...`),
            `"fashion_mnist_photo"` (the items over real photo patches).
        split: `"train"` or `"validation"` (Fashion-MNIST's test split, a
            folder's `val/`, ImageNet's validation split).
        batch_size: per-pipeline batch size.
        image_size: side of the (cropped) images; the dataset's default when None.
        training: augment and shuffle; defaults to `split == "train"`.
        crop: center-crop evaluation images; False keeps the larger uncropped
            square that the shift metrics crop themselves.
        seed: seed of shuffles and crops.
        max_examples: keep the first N examples.
        data_dir, manual_dir: where the data is (see each dataset).
        input_context: `tf.distribute.InputContext` for per-host sharding.

    Returns:
        `(dataset, info)`.

    Example:
    >>> ds, info = load("fashion_mnist", "validation", batch_size=4, max_examples=8)
    >>> info.num_classes, info.num_examples
    (10, 8)
    """
    info = describe(name, split, image_size=image_size, max_examples=max_examples,
                    data_dir=data_dir, manual_dir=manual_dir)
    training = split == "train" if training is None else training
    common = dict(batch_size=batch_size, image_size=info.image_size, training=training, crop=crop,
                  seed=seed, max_examples=max_examples, input_context=input_context)
    ds = spec(name).build(split, data_dir=data_dir, manual_dir=manual_dir, **common)
    return ds, info
