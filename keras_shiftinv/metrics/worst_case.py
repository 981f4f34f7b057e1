"""Worst-case shift accuracy: correct at every crop offset, or not at all.

docs/design.md, "Metrics": a consistency score says how often two random
crops agree; a practitioner asks whether *some* small shift flips the answer.
Every one of the `(S - s + 1)^2` crop offsets of the protocol's window is
classified (81 on the 40x40 Fashion-MNIST images with crops of 32).
"""

import numpy as np
from tqdm.auto import tqdm

from keras_shiftinv.metrics._inputs import batches


def crop_offsets(side, crop_size):
    """Every `(top, left)` of a `crop_size` crop in a `side` square, row-major.

    Example:
    >>> len(crop_offsets(40, 32)), crop_offsets(40, 32)[-1]
    (81, (8, 8))
    """
    if not 1 <= crop_size <= side:
        raise ValueError(f"`crop_size` must be between 1 and the image size {side}. Received: crop_size={crop_size}")
    span = range(side - crop_size + 1)
    return [(top, left) for top in span for left in span]


def _labels_at_offsets(model, images, offsets, crop_size, crops_per_call):
    """Argmax labels of every crop: int array (N, len(offsets)).

    Offsets are taken in groups so that each `predict_on_batch` call sees
    about `crops_per_call` crops of several offsets at once.
    """
    n = len(images)
    group = max(1, crops_per_call // max(n, 1))
    labels = []
    for start in range(0, len(offsets), group):
        chosen = offsets[start : start + group]
        crops = np.stack([images[:, t : t + crop_size, l : l + crop_size] for t, l in chosen])
        flat = crops.reshape((-1,) + crops.shape[2:])  # (G * N, s, s, C), offset-major
        logits = np.asarray(model.predict_on_batch(flat))
        labels.append(logits.argmax(-1).reshape(len(chosen), n).T)  # (N, G)
    return np.concatenate(labels, axis=1)


def worst_case_accuracy(model, dataset, crop_size=32, crops_per_call=1024, max_images=None, progress=None):
    """Accuracy when every crop offset must be classified correctly.

    An image counts as correct only if the argmax at every one of the
    `(S - crop_size + 1)^2` offsets equals its label; an image "flips" if the
    argmax is not the same at all offsets. The center crop, at
    `(S - crop_size) // 2`, is one of the offsets, so the worst-case accuracy
    never exceeds the center-crop top-1 (returned too, from the same
    predictions).

    Args:
        model: Keras model, images -> logits or probabilities (only the
            argmax is used).
        dataset: uncropped squares of side `S` and their labels: a tuple
            `(images, labels)` of numpy arrays, or an iterable of such
            batches (a `tf.data` dataset, a list of numpy pairs).
        crop_size: side `s` of the crops.
        crops_per_call: about how many crops go into one `predict_on_batch`.
        max_images: use only the first N images.
        progress: tqdm description, or None for no bar.

    Returns:
        dict of floats in percent: `worst_case_accuracy`, `flip_rate` (share
        of images whose label changes under at least one shift) and
        `center_top1`; and `offsets` (int, offsets per image) and `images`.

    Example:
    >>> x = keras.Input((2, 2, 1))
    >>> y = keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Cropping2D(((0, 1), (0, 1)))(x)))
    >>> model = keras.Model(x, y)
    >>> model.set_weights([np.array([[0.0, 1.0]]), np.zeros(2)])  # class 1 iff crop pixel (0, 0) > 0
    >>> images = np.zeros((2, 3, 3, 1), "float32")
    >>> images[0, 0, 0] = 1.0  # read only at offset (0, 0), the center one
    >>> labels = np.array([1, 0])
    >>> worst_case_accuracy(model, (images, labels), crop_size=2)["worst_case_accuracy"]
    50.0
    """
    correct = flipped = center_hits = seen = 0
    offsets = None
    for images, labels in tqdm(batches(dataset), desc=progress, disable=progress is None, leave=False):
        if images.ndim != 4 or images.shape[1] != images.shape[2]:
            raise ValueError(f"Worst-case accuracy expects square image batches. Received: shape={images.shape}")
        if max_images is not None:
            images, labels = images[: max_images - seen], labels[: max_images - seen]
        if not len(labels):
            continue
        offsets = crop_offsets(images.shape[1], crop_size)
        center = (images.shape[1] - crop_size) // 2
        predicted = _labels_at_offsets(model, images, offsets, crop_size, crops_per_call)  # (N, K)
        correct += int(np.sum(np.all(predicted == labels[:, None], axis=1)))
        flipped += int(np.sum(np.any(predicted != predicted[:, :1], axis=1)))
        center_hits += int(np.sum(predicted[:, offsets.index((center, center))] == labels))
        seen += len(labels)
        if max_images is not None and seen >= max_images:
            break
    if not seen:
        raise ValueError("Worst-case accuracy needs at least one image. Received: an empty dataset")
    return {
        "worst_case_accuracy": 100.0 * correct / seen,
        "flip_rate": 100.0 * flipped / seen,
        "center_top1": 100.0 * center_hits / seen,
        "offsets": len(offsets),
        "images": seen,
    }
