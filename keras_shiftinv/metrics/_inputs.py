"""What the metrics share: the two input forms every metric takes (numpy arrays, or an
iterable of batches), the square-crop check, the crop, and batched prediction."""

import numpy as np

BATCH_SIZE = 64  # batch size for numpy-array input


def batches(data, batch_size=BATCH_SIZE):
    """Yields numpy `(images, targets)` batches from `data`.

    Args:
        data: either a tuple `(images, targets)` of two numpy arrays holding
            the whole set (cut into batches of `batch_size` here), or an
            iterable of `(images, targets)` batches: a `tf.data.Dataset`
            (TensorFlow), a list of numpy pairs, a generator function's
            result. Numpy input needs no TensorFlow, on any Keras backend.
        batch_size: batch size for the numpy-array form.

    Example:
    >>> images, labels = np.zeros((5, 4, 4, 1)), np.arange(5)
    >>> [len(y) for _, y in batches((images, labels), batch_size=2)]
    [2, 2, 1]
    """
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(a, np.ndarray) for a in data):
        images, targets = data
        if len(images) != len(targets):
            raise ValueError(f"`images` and their labels must have the same length. Received: "
                             f"len(images)={len(images)}, len(labels)={len(targets)}")
        for i in range(0, len(images), batch_size):
            yield images[i : i + batch_size], targets[i : i + batch_size]
        return
    for images, targets in data:
        yield np.asarray(images), np.asarray(targets)


def check_crop(images, crop_size):
    """Returns the side of the square `images` (N, S, S, C); raises if not square or `crop_size > S`."""
    side = images.shape[1]
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"Metrics expect square images. Received: image shape {images.shape[1:3]}")
    if crop_size > side:
        raise ValueError(
            f"`crop_size` must not exceed the image size {side}. Received: crop_size={crop_size}"
        )
    return side


def predict_probabilities(model, images, from_logits, chunk=512):
    """The model's class probabilities (float64) for `images`, predicted `chunk` at a time."""
    parts = [model.predict_on_batch(images[i : i + chunk]) for i in range(0, len(images), chunk)]
    out = np.concatenate([np.asarray(p, dtype="float64") for p in parts])
    if from_logits:
        out = np.exp(out - out.max(axis=-1, keepdims=True))
        out /= out.sum(axis=-1, keepdims=True)
    return out


def crop(images, top, left, size):
    """The `size` x `size` window of `images` (N, H, W, C) whose top-left corner is `(top, left)`."""
    return images[:, top : top + size, left : left + size]
