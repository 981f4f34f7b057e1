"""One entry point for every dataset: `load(name, split, ...) -> (dataset, info)`.

Training, evaluation and the experiments call `load` and `describe` and never
dispatch on the dataset name themselves (docs/design.md, "Data").
"""

import dataclasses
import os

from keras_shiftinv.data.fashion_mnist import CLASS_NAMES as FASHION_MNIST_NAMES
from keras_shiftinv.data.fashion_mnist import PADDED_SIZE
from keras_shiftinv.data.fashion_mnist import fashion_mnist
from keras_shiftinv.data.fashion_mnist import fashion_mnist_num_examples
from keras_shiftinv.data.fashion_mnist import split_name
from keras_shiftinv.data.fashion_mnist_photo import fashion_mnist_photo
from keras_shiftinv.data.image_folder import image_folder
from keras_shiftinv.data.image_folder import scan_image_folder
from keras_shiftinv.data.imagenet import MANUAL_FILES
from keras_shiftinv.data.imagenet import imagenet2012
from keras_shiftinv.data.imagenet import prepare_imagenet2012
from keras_shiftinv.data.transforms import resize_size_for
from keras_shiftinv.errors import DataError

DATASETS = ("fashion_mnist", "imagenet2012", "folder", "fashion_mnist_photo")
SPLITS = ("train", "validation")
DEFAULT_IMAGE_SIZE = {"fashion_mnist": 32, "imagenet2012": 224, "folder": 224, "fashion_mnist_photo": 32}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about its data, read without decoding images.

    Attributes:
        name: the dataset name (one of `DATASETS`).
        split: `"train"` or `"validation"`.
        class_names: tuple of str, index = label.
        num_examples: int, examples the pipeline yields (after `max_examples`).
        image_size: int, the side of the images the pipeline yields
            (with `crop=False` at evaluation, the uncropped side may be larger:
            see `eval_side`).
        eval_side: int or None, the side of the uncropped evaluation images
            (`crop=False`): 40 for Fashion-MNIST, `256/224 * image_size` for
            decoded photos.
    """

    name: str
    split: str
    class_names: tuple
    num_examples: int
    image_size: int
    eval_side: int = None

    @property
    def num_classes(self):
        return len(self.class_names)


def _check(name, split):
    if name not in DATASETS:
        raise DataError(f"Unknown dataset. Expected one of {list(DATASETS)}. Received: dataset={name!r}")
    if split not in SPLITS:
        raise DataError(f"Unknown split. Expected one of {list(SPLITS)}. Received: split={split!r}")


def folder_split_dir(data_dir, split):
    """`DIR/train` (or DIR itself when it has no `train/`) and `DIR/val|validation|test`.

    Returns None for a validation split the folder does not have.
    """
    if not data_dir:
        raise DataError("dataset 'folder' needs --data-dir DIR (DIR/train/<class>/<image>, optional DIR/val)")
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


def _folder_split(data_dir, split):
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


def has_split(name, split, data_dir=None, manual_dir=None):
    """Whether the dataset has `split` (a folder may have no validation images)."""
    _check(name, split)
    if name == "folder":
        return folder_split_dir(data_dir, split) is not None
    if name == "imagenet2012":
        return split in prepare_imagenet2012(data_dir, manual_dir).info.splits
    return True


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
    image_size = image_size or DEFAULT_IMAGE_SIZE[name]
    if name in ("fashion_mnist", "fashion_mnist_photo"):  # same items, same 40x40 geometry
        n = fashion_mnist_num_examples(split_name(split), data_dir)
        names, side = FASHION_MNIST_NAMES, PADDED_SIZE
    elif name == "imagenet2012":
        builder = prepare_imagenet2012(data_dir, manual_dir)
        if split not in builder.info.splits:
            raise DataError(f"imagenet2012 has no {split} split: put {MANUAL_FILES[split]} in the manual dir")
        n = builder.info.splits[split].num_examples
        names = tuple(builder.info.features["label"].names)
        side = resize_size_for(image_size)
    else:
        paths, names = _folder_split(data_dir, split)
        n, side = len(paths), resize_size_for(image_size)
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
    if name == "fashion_mnist":
        ds = fashion_mnist(split_name(split), data_dir=data_dir, **common)
    elif name == "fashion_mnist_photo":
        ds = fashion_mnist_photo(split_name(split), data_dir=data_dir, **common)
    elif name == "imagenet2012":
        ds = imagenet2012(split, data_dir=data_dir, manual_dir=manual_dir, **common)
    else:
        ds, _ = image_folder(folder_split_dir(data_dir, split), **common)
    return ds, info
