import keras

from keras_shiftinv.layers._nd import AdaptivePolyphasePoolND


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class AdaptivePolyphasePool1D(AdaptivePolyphasePoolND):
    """Adaptive polyphase sampling (APS) for signals `(B, T, C)`.

    Keeps, per signal, the even or the odd samples, whichever has the larger
    norm over all its samples and channels (ties: float32 norm, then largest
    |value|, then the even phase; docs/design.md, "Other ranks"). An odd
    length is first padded by one sample with `padding`. With circular padding
    everywhere, a network of these is exactly invariant to circular shifts.

    Args:
        criterion: `"l2"` (default) or `"l1"`.
        padding: `"zeros"` (default), `"reflect"` or `"circular"`, for odd lengths.
        return_index: bool; if True the layer returns `(output, phase_index)`.
        **kwargs: base layer arguments.

    Example:
    >>> x = np.array([[[0.0], [3.0], [1.0], [0.0]]])  # odd samples 3, 0 beat even samples 0, 1
    >>> pooled, index = AdaptivePolyphasePool1D(return_index=True)(x)
    >>> ops.convert_to_numpy(index), ops.convert_to_numpy(pooled)[0, :, 0]
    (array([1], dtype=int32), array([3., 0.], dtype=float32))
    """

    rank = 1

    def __init__(self, criterion="l2", padding="zeros", return_index=False, **kwargs):
        super().__init__(criterion, padding, return_index, strides=2, **kwargs)
