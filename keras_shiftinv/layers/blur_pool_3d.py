import keras

from keras_shiftinv.layers._nd import BlurPoolND


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class BlurPool3D(BlurPoolND):
    """Anti-aliased downsampling of volumes `(B, D, H, W, C)`: a separable binomial blur, then subsampling.

    Along every axis whose stride is > 1: the 1-D binomial taps of
    `BlurPool1D`, padding `(filt_size-1)//2` before and `filt_size//2` after
    with `padding`, evaluated every `stride` entries. An axis with stride 1 is
    left alone (neither blurred nor subsampled), so `strides=(1, 2, 2)` is
    `BlurPool2D` applied to each frame. Output `(B, ceil(D/s_d), ceil(H/s_h),
    ceil(W/s_w), C)`.

    Args:
        filt_size: int in 1..7. Defaults to 4.
        strides: int or tuple of 3 ints >= 1, at least one > 1. Defaults to 2.
        padding: `"reflect"` (default), `"zeros"` or `"circular"`.
        **kwargs: base layer arguments.

    Example:
    >>> tuple(BlurPool3D(filt_size=3, strides=(1, 2, 2))(np.ones((1, 3, 5, 6, 2))).shape)
    (1, 3, 3, 3, 2)
    """

    rank = 3
