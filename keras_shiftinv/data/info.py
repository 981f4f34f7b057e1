"""`DatasetInfo`: what every dataset builder returns beside its `tf.data.Dataset`."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about its data, read without decoding images.

    Every builder (`load`, `fashion_mnist`, `fashion_mnist_photo`,
    `imagenet2012`, `image_folder`) returns `(dataset, DatasetInfo)`.

    Attributes:
        name: the dataset name (a key of `data.SPECS`).
        split: `"train"` or `"validation"`.
        class_names: tuple of str, index = label.
        num_examples: int, examples the pipeline yields (after `max_examples`).
        image_size: int, the side of the images the pipeline yields
            (with `crop=False` at evaluation, the uncropped side may be larger:
            see `eval_side`).
        eval_side: int or None, the side of the uncropped evaluation images
            (`crop=False`): 40 for Fashion-MNIST, `256/224 * image_size` for
            decoded photos.
        skipped: int, unreadable images left out (`image_folder(...,
            on_corrupt="skip")`); 0 elsewhere.

    Example:
    >>> info = DatasetInfo("folder", "train", ("cat", "dog"), 12, 224, 256)
    >>> info.num_classes, info.skipped
    (2, 0)
    """

    name: str
    split: str
    class_names: tuple
    num_examples: int
    image_size: int
    eval_side: int = None
    skipped: int = 0

    @property
    def num_classes(self):
        return len(self.class_names)


def package_split(split):
    """A builder's split name -> the package's: `"train"` (or `"train[...]"`) or `"validation"`."""
    return "train" if split.startswith("train") else "validation"
