"""Every dataset's facts in one place: `SPECS[name]` (docs/design.md, "Data").

`load`, `describe`, `has_split`, the evaluation protocol (`evaluation.protocol_for`),
the serving graph's preprocessing (`export.preprocessing`) and the experiments
read a dataset's `DatasetSpec` and never branch on its name. A new dataset, or
a named variant of one, is one more entry of `SPECS`.
"""

import dataclasses
from typing import Callable

from keras_shiftinv import metrics
from keras_shiftinv.data import imagenet
from keras_shiftinv.data import transforms
from keras_shiftinv.data.fashion_mnist import CLASS_NAMES
from keras_shiftinv.data.fashion_mnist import PADDED_SIZE
from keras_shiftinv.data.fashion_mnist import eval_transform as fashion_mnist_eval
from keras_shiftinv.data.fashion_mnist import fashion_mnist
from keras_shiftinv.data.fashion_mnist import fashion_mnist_num_examples
from keras_shiftinv.data.fashion_mnist import split_name
from keras_shiftinv.data.fashion_mnist_photo import eval_transform as photo_eval
from keras_shiftinv.data.fashion_mnist_photo import fashion_mnist_photo
from keras_shiftinv.data.image_folder import folder_split
from keras_shiftinv.data.image_folder import folder_split_dir
from keras_shiftinv.data.image_folder import image_folder
from keras_shiftinv.errors import DataError


@dataclasses.dataclass(frozen=True)
class EvalTransform:
    """The evaluation transform of a family of datasets, as a name the serving graph records.

    Attributes:
        name: the preprocessing name an export records (`ServingSpec.preprocessing`).
        apply: `fn(image, image_size, crop=True) -> float32 (image_size, image_size, 3)`
            for one decoded `(H, W, C)` image in 0..255, any size; the input
            pipelines and the serving graph both call it.
        needed_side: `fn(image_size) -> int`, the side the transform resizes
            to (the short side for ImageNet); larger client images are first
            thinned in uint8.
    """

    name: str
    apply: Callable
    needed_side: Callable


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What the package knows about one dataset name.

    Attributes:
        name: the dataset name (a key of `SPECS`).
        build: `fn(split, *, data_dir, manual_dir, batch_size, image_size,
            training, crop, seed, max_examples, input_context) -> tf.data.Dataset`
            (the builder's dataset; `load` pairs it with `describe`'s `DatasetInfo`)
            with the package's split names (`"train"`, `"validation"`).
        examples: `fn(split, image_size, data_dir, manual_dir) ->
            (class_names, num_examples, eval_side)`, read without decoding images.
        has_split: `fn(split, data_dir, manual_dir) -> bool`.
        default_image_size: the crop side when none is given.
        eval_transform: its `EvalTransform`.
        protocol: the shift-metric protocol it is measured with
            (`metrics.FASHION_MNIST_PROTOCOL` or `metrics.IMAGENET_PROTOCOL`),
            scaled to the crop by `evaluation.protocol_for`.
        table1_learning_rate: peak SGD learning rate (batch 128) of the
            Table 1 recipe, or None for a dataset Table 1 does not run on.
    """

    name: str
    build: Callable
    examples: Callable
    has_split: Callable
    default_image_size: int
    eval_transform: EvalTransform
    protocol: dict
    table1_learning_rate: float = None


def _always(split, data_dir=None, manual_dir=None):
    return True


def _fashion_build(split, *, data_dir=None, manual_dir=None, **common):
    return fashion_mnist(split_name(split), data_dir=data_dir, **common)[0]


def _photo_build(split, *, data_dir=None, manual_dir=None, **common):
    return fashion_mnist_photo(split_name(split), data_dir=data_dir, **common)[0]


def _fashion_examples(split, image_size, data_dir=None, manual_dir=None):
    """Fashion-MNIST and its photo variant: the same items, the same 40x40 geometry."""
    n = fashion_mnist_num_examples(split_name(split), data_dir)
    return CLASS_NAMES, n, PADDED_SIZE


def _imagenet_build(split, *, data_dir=None, manual_dir=None, **common):
    return imagenet.imagenet2012(split, data_dir=data_dir, manual_dir=manual_dir, **common)[0]


def _imagenet_examples(split, image_size, data_dir=None, manual_dir=None):
    builder = imagenet.prepare_imagenet2012(data_dir, manual_dir)
    if split not in builder.info.splits:
        raise DataError(f"imagenet2012 has no {split} split: put {imagenet.MANUAL_FILES[split]} in the manual dir")
    names = tuple(builder.info.features["label"].names)
    return names, builder.info.splits[split].num_examples, transforms.resize_size_for(image_size)


def _imagenet_has_split(split, data_dir=None, manual_dir=None):
    return split in imagenet.prepare_imagenet2012(data_dir, manual_dir).info.splits


def _folder_build(split, *, data_dir=None, manual_dir=None, **common):
    return image_folder(folder_split_dir(data_dir, split), **common)[0]


def _folder_examples(split, image_size, data_dir=None, manual_dir=None):
    paths, names = folder_split(data_dir, split)
    return names, len(paths), transforms.resize_size_for(image_size)


def _folder_has_split(split, data_dir=None, manual_dir=None):
    return folder_split_dir(data_dir, split) is not None


IMAGENET_EVAL = EvalTransform("imagenet", transforms.eval_transform, transforms.resize_size_for)
FASHION_MNIST_EVAL = EvalTransform("fashion_mnist", fashion_mnist_eval, lambda image_size: 28)
PHOTO_EVAL = EvalTransform("fashion_mnist_photo", photo_eval,
                           lambda image_size: PADDED_SIZE)
# The serving preprocessings by name, in the order `shiftinv export --preprocessing` lists them.
EVAL_TRANSFORMS = {t.name: t for t in (IMAGENET_EVAL, FASHION_MNIST_EVAL, PHOTO_EVAL)}

# Named variants are data: one entry each, in the order `DATASETS` lists them.
SPECS = {
    "fashion_mnist": DatasetSpec(
        "fashion_mnist", _fashion_build, _fashion_examples, _always, 32, FASHION_MNIST_EVAL,
        metrics.FASHION_MNIST_PROTOCOL, table1_learning_rate=0.5,
    ),
    "imagenet2012": DatasetSpec(
        "imagenet2012", _imagenet_build, _imagenet_examples, _imagenet_has_split, 224, IMAGENET_EVAL,
        metrics.IMAGENET_PROTOCOL,
    ),
    "folder": DatasetSpec(
        "folder", _folder_build, _folder_examples, _folder_has_split, 224, IMAGENET_EVAL,
        metrics.IMAGENET_PROTOCOL,
    ),
    # Table 1 at 0.5 left blur, conv3d and conv3d-aps at chance here (the former 12,000 x 5-epoch
    # quick preset, seed 0); at 0.1 every variant learns.
    "fashion_mnist_photo": DatasetSpec(
        "fashion_mnist_photo", _photo_build, _fashion_examples, _always, 32, PHOTO_EVAL,
        metrics.FASHION_MNIST_PROTOCOL, table1_learning_rate=0.1,
    ),
}
DATASETS = tuple(SPECS)
DEFAULT_IMAGE_SIZE = {name: spec.default_image_size for name, spec in SPECS.items()}
# The package's small default: what Table 1 runs on unless told, and what `evaluate` assumes for
# models whose metadata names no dataset (written before datasets were recorded).
DEFAULT_DATASET = "fashion_mnist"
# The paper's training set (ILSVRC-2012): what `shiftinv train` (`TrainConfig`) trains on unless told.
PAPER_DATASET = "imagenet2012"


def spec(name):
    """The `DatasetSpec` of a dataset name.

    Example:
    >>> spec("fashion_mnist").default_image_size, spec("folder").eval_transform.name
    (32, 'imagenet')
    """
    if name not in SPECS:
        raise DataError(f"Unknown dataset. Expected one of {list(DATASETS)}. Received: dataset={name!r}")
    return SPECS[name]
