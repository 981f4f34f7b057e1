import keras

from keras_shiftinv.layers._nd import BlurPoolND


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class BlurPool1D(BlurPoolND):
    """Anti-aliased downsampling of signals `(B, T, C)`: a binomial blur, then subsampling.

    The 1-D binomial taps `C(filt_size-1, i) / 2**(filt_size-1)` (the filter
    of `BlurPool2D` is their outer product), evaluated every `stride`
    samples, after padding `(filt_size-1)//2` before and `filt_size//2` after
    with `padding`; output `(B, ceil(T/stride), C)`. Blurring reduces
    aliasing; it does not make the layer shift-invariant.

    Args:
        filt_size: int in 1..7. Defaults to 4.
        stride: int >= 2 (unlike `BlurPool2D`, stride 1 is refused: it would
            be the identity here). Defaults to 2.
        padding: `"reflect"` (default), `"zeros"` or `"circular"`.
        **kwargs: base layer arguments.

    Example:
    >>> x = np.array([[[0.0], [4.0], [0.0], [0.0]]])
    >>> ops.convert_to_numpy(BlurPool1D(filt_size=3, padding="zeros")(x))[0, :, 0]  # taps 1/4, 1/2, 1/4
    array([1., 1.], dtype=float32)
    """

    rank = 1
    _strides_name = "stride"

    def __init__(self, filt_size=4, stride=2, padding="reflect", **kwargs):
        super().__init__(filt_size, stride, padding, **kwargs)
