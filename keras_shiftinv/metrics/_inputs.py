"""The two input forms every metric takes: numpy arrays, or an iterable of batches."""

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
