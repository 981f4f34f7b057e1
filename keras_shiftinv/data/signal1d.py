"""MNIST-1D (Greydanus, 2020): 10 classes of 1-D signals of 40 samples, generated locally.

The `mnist1d` package (`pip install "keras-shiftinv[signal]"`) builds the
data set from its 10 templates with `make_dataset` (random padding,
translation, shear, scaling and noise): nothing is downloaded. Its default
arguments give the canonical split, 4000 training and 1000 test signals.
"""

import random

import numpy as np

from keras_shiftinv.errors import DataError

LENGTH = 40
NUM_CLASSES = 10


def mnist1d(seed=42, num_samples=5000):
    """The MNIST-1D signals as float32 `(N, 40, 1)` arrays and int32 labels.

    `mnist1d.make_dataset` seeds Python's and NumPy's global generators; their
    states are restored afterwards, so loading does not change other random
    streams.

    Args:
        seed: the generator's seed (42 is the published data set's).
        num_samples: signals in all; 80% train, 20% test (5000: 4000 / 1000).

    Returns:
        dict with `x_train`, `y_train`, `x_test`, `y_test`.

    Raises:
        DataError: the `mnist1d` package is not installed.

    Example:
    >>> data = mnist1d(num_samples=100)
    >>> data["x_train"].shape, data["x_test"].shape, sorted(set(data["y_train"].tolist()))[:3]
    ((80, 40, 1), (20, 40, 1), [0, 1, 2])
    """
    try:
        from mnist1d.data import get_dataset_args
        from mnist1d.data import make_dataset
    except ImportError as error:
        raise DataError(
            "MNIST-1D needs the `mnist1d` package: pip install 'keras-shiftinv[signal]'. "
            f"Received: {type(error).__name__}: {error}"
        ) from None
    args = get_dataset_args()
    args.seed, args.num_samples = int(seed), int(num_samples)
    saved = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(args)
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
    as_signals = lambda x: np.asarray(x, "float32")[:, :, None]  # noqa: E731  (N, 40) -> (N, 40, 1)
    return {
        "x_train": as_signals(raw["x"]),
        "y_train": np.asarray(raw["y"], "int32"),
        "x_test": as_signals(raw["x_test"]),
        "y_test": np.asarray(raw["y_test"], "int32"),
    }
