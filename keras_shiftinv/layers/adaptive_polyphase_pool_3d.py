import keras

from keras_shiftinv.layers._nd import AdaptivePolyphasePoolND


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class AdaptivePolyphasePool3D(AdaptivePolyphasePoolND):
    """Adaptive polyphase sampling (APS) for volumes `(B, D, H, W, C)`.

    Keeps, per volume, the one of its `P` polyphase components (8 for
    `strides=(2, 2, 2)`, phase `p = 4*dz + 2*dy + dx`; axes with stride 1
    are not split) with the largest norm; ties as in 2-D (docs/design.md,
    "Other ranks"). Odd strided axes are first padded by one with `padding`.
    The index is the one `PolyphaseDownsample3D` with the same `strides`
    accepts as `phase_index`.

    Args:
        criterion: `"l2"` (default) or `"l1"`.
        padding: `"zeros"` (default), `"reflect"` or `"circular"`, for odd sizes.
        return_index: bool; if True the layer returns `(output, phase_index)`.
        strides: 2 (default) or a tuple of 3 values in {1, 2}, at least one 2.
        **kwargs: base layer arguments.

    Example:
    >>> x = np.zeros((1, 2, 2, 2, 1)); x[0, 1, 0, 1, 0] = 5.0  # phase (1, 0, 1) = 5
    >>> pooled, index = AdaptivePolyphasePool3D(return_index=True)(x)
    >>> ops.convert_to_numpy(index), float(ops.convert_to_numpy(pooled).ravel()[0])
    (array([5], dtype=int32), 5.0)
    """

    rank = 3
