"""2-D layers with per-axis strides such as (1, 2): one axis downsampled, the other kept.

The rank-generic layers of docs/design.md, "Other ranks", at rank 2 (a CRNN's
(1, 2) or (2, 1) strides). With strides (2, 2) they compute what
`PolyphaseDownsample(mixing="group")`, `AdaptivePolyphasePool2D` and
`BlurPool2D` compute; those stay the layers for that case.
"""

import keras

from keras_shiftinv.layers._nd import AdaptivePolyphasePoolND
from keras_shiftinv.layers._nd import BlurPoolND
from keras_shiftinv.layers._nd import PolyphaseDownsampleND


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class PolyphaseDownsampleMixed2D(PolyphaseDownsampleND):
    """The paper's module on images `(B, H, W, C)` with per-axis `strides`, each 1 or 2.

    With `strides=(1, 2)` each row splits into its even and odd columns (2
    phases, `p = dx`), with `(2, 1)` each column into even and odd rows;
    with `(2, 2)`, 4 phases `p = 2*dy + dx` as `PolyphaseDownsample`. The
    phases of each channel are mixed by a grouped `k x k` convolution, then a
    1x1 merge (group mixing only); `align`, `return_index` and `phase_index`
    as in `PolyphaseDownsample1D`. Output `(B, ceil(H/s_h), ceil(W/s_w), filters)`.

    Args:
        filters: int, number of output channels.
        mixing: `"group"` (the only one with per-axis strides).
        kernel_size: odd int. Defaults to 3.
        padding: `"zeros"`, `"reflect"` or `"circular"`.
        align: `None` or `"max_norm"`.
        return_index: bool (needs `align="max_norm"`).
        use_bias: bool.
        kernel_initializer: initializer of both kernels.
        bias_initializer: initializer of both biases.
        mixing_width: `"lcm"` (default) or `"min"`.
        strides: a tuple of 2 values in {1, 2}, at least one 2. Defaults to (1, 2).
        **kwargs: base layer arguments.

    Example:
    >>> tuple(PolyphaseDownsampleMixed2D(8, strides=(1, 2))(np.zeros((2, 5, 9, 3))).shape)
    (2, 5, 5, 8)
    """

    rank = 2

    def __init__(self, filters, strides=(1, 2), **kwargs):
        super().__init__(filters, strides=strides, **kwargs)


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class AdaptivePolyphasePoolMixed2D(AdaptivePolyphasePoolND):
    """APS on images `(B, H, W, C)` with per-axis `strides` (each 1 or 2), e.g. (1, 2).

    Keeps, per image, the phase of largest norm among the `prod(strides)`
    (ties as in `AdaptivePolyphasePool2D`); its index fits a
    `PolyphaseDownsampleMixed2D` of the same strides.

    Args:
        criterion: `"l2"` (default) or `"l1"`.
        padding: `"zeros"` (default), `"reflect"` or `"circular"`, for odd sizes.
        return_index: bool; if True the layer returns `(output, phase_index)`.
        strides: a tuple of 2 values in {1, 2}, at least one 2. Defaults to (1, 2).
        **kwargs: base layer arguments.

    Example:
    >>> x = np.zeros((1, 2, 4, 1)); x[0, :, 1, 0] = 3.0  # the odd columns win
    >>> pooled, index = AdaptivePolyphasePoolMixed2D(return_index=True)(x)
    >>> ops.convert_to_numpy(index), ops.convert_to_numpy(pooled)[0, :, :, 0].tolist()
    (array([1], dtype=int32), [[3.0, 0.0], [3.0, 0.0]])
    """

    rank = 2

    def __init__(self, criterion="l2", padding="zeros", return_index=False, strides=(1, 2), **kwargs):
        super().__init__(criterion, padding, return_index, strides=strides, **kwargs)


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class BlurPoolMixed2D(BlurPoolND):
    """Blur and subsample images `(B, H, W, C)` along the axes whose stride is > 1 (e.g. (1, 2)).

    The separable binomial blur of `BlurPool1D` along each strided axis; an
    axis of stride 1 is neither blurred nor subsampled.

    Args:
        filt_size: int in 1..7. Defaults to 4.
        strides: a tuple of 2 ints >= 1, at least one > 1. Defaults to (1, 2).
        padding: `"reflect"` (default), `"zeros"` or `"circular"`.
        **kwargs: base layer arguments.

    Example:
    >>> tuple(BlurPoolMixed2D(3, strides=(1, 2))(np.ones((1, 4, 7, 2))).shape)
    (1, 4, 4, 2)
    """

    rank = 2

    def __init__(self, filt_size=4, strides=(1, 2), padding="reflect", **kwargs):
        super().__init__(filt_size, strides, padding, **kwargs)
