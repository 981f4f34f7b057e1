"""The evaluation transform of a model's training data, as serving graph code.

docs/design.md, "Export and serving": a served model takes raw client images
and applies, inside the graph, exactly the evaluation transform of the data it
was trained on (`keras_shiftinv.data`), so clients re-implement nothing.
"""

from keras_shiftinv import data

# The serving preprocessings: the evaluation transforms of `data.EVAL_TRANSFORMS`, by name.
PREPROCESSINGS = tuple(data.EVAL_TRANSFORMS)


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
        if dataset is not None and dataset not in data.SPECS:
            raise ValueError(
                f"No serving preprocessing is known for dataset {dataset!r}; expected one of "
                f"{sorted(data.SPECS)}. Received: dataset={dataset!r}"
            )
        preprocessing = data.SPECS[dataset].eval_transform.name if dataset else data.IMAGENET_EVAL.name
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
    return data.EVAL_TRANSFORMS[resolve(preprocessing)].needed_side(image_size)


def image_transform(preprocessing, image_size):
    """`fn(image) -> float32 (image_size, image_size, 3)` for one RGB image.

    `image` is `(H, W, 3)` in the 0..255 range (uint8 or float), any size; one
    more than `OVERSAMPLE` (4) times larger than `needed_side` is first
    thinned to every k-th row and column (`data.transforms.thin`). The
    transform is the `apply` of `data.EVAL_TRANSFORMS[preprocessing]`: the
    data's own evaluation transform, the one its input pipeline applies
    (ImageNet's resize and center crop, Fashion-MNIST's grey 28x28 padded to
    40x40, the photo composites' 40x40; each documented where it is defined).
    """
    transform = data.EVAL_TRANSFORMS[resolve(preprocessing)].apply

    def apply(image):
        out = transform(image, image_size)
        out.set_shape((image_size, image_size, 3))
        return out

    return apply
