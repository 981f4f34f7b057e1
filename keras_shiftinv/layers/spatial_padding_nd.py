"""`SpatialPadding1D` / `SpatialPadding3D`: `SpatialPadding2D` for signals and volumes."""

import keras

from keras_shiftinv.layers._nd import SpatialPaddingND


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class SpatialPadding1D(SpatialPaddingND):
    """Pads the time axis of signals `(B, T, C)` with zeros, reflection or circular wrap-around.

    Args:
        padding: int, or `(before, after)`.
        mode: `"zeros"`, `"reflect"` or `"circular"` (as `np.pad`'s `"constant"`, `"reflect"`, `"wrap"`).
        **kwargs: base layer arguments.

    Example:
    >>> x = np.arange(4.0).reshape(1, 4, 1)
    >>> ops.convert_to_numpy(SpatialPadding1D((1, 2), mode="circular")(x))[0, :, 0]
    array([3., 0., 1., 2., 3., 0., 1.], dtype=float32)
    """

    rank = 1


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class SpatialPadding3D(SpatialPaddingND):
    """Pads the three spatial axes of volumes `(B, D, H, W, C)` with zeros, reflection or circular wrap-around.

    Args:
        padding: int, or `((before, after),) * 3`, one pair per axis.
        mode: `"zeros"`, `"reflect"` or `"circular"`.
        **kwargs: base layer arguments.

    Example:
    >>> tuple(SpatialPadding3D(((0, 0), (1, 1), (0, 2)), mode="reflect")(np.ones((1, 2, 3, 4, 1))).shape)
    (1, 2, 5, 6, 1)
    """

    rank = 3
