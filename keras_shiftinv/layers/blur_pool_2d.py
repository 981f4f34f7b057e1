import math

import keras
import numpy as np
from keras import ops

from keras_shiftinv.layers._utils import PADDING_MODES
from keras_shiftinv.layers._utils import as_float
from keras_shiftinv.layers._utils import check_choice
from keras_shiftinv.layers._utils import check_image_shape
from keras_shiftinv.layers._utils import check_positive_int
from keras_shiftinv.layers._utils import pad_spatial


def binomial_filter(filt_size):
    """The normalised 2D binomial filter of Zhang (2019), as a numpy array."""
    row = np.array([math.comb(filt_size - 1, i) for i in range(filt_size)], "float64")
    filt = np.outer(row, row)
    return filt / filt.sum()


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class BlurPool2D(keras.layers.Layer):
    """Anti-aliased downsampling: a fixed binomial blur, then subsampling.

    The blur of Zhang, "Making convolutional networks shift-invariant again"
    (ICML 2019): a depthwise convolution with the outer product of the
    binomial coefficients `C(filt_size-1, i)`, normalised to sum 1, evaluated
    every `stride` pixels. The filter is a constant, not a weight. The input is
    padded by `(filt_size-1)//2` before and `filt_size//2` after on each axis,
    so the output has `ceil(H/stride)` rows. `filt_size=1` is plain subsampling.

    Blurring reduces aliasing; it does not make the layer shift-invariant.
    Integer and bool inputs are cast to the compute dtype.

    Args:
        filt_size: int in 1..7, the filter's side. Defaults to 4.
        stride: positive int. Defaults to 2.
        padding: `"reflect"` (default), `"zeros"` or `"circular"`.
        **kwargs: base layer arguments.

    Example:
    >>> tuple(BlurPool2D(filt_size=3)(np.ones((1, 5, 6, 2))).shape)
    (1, 3, 3, 2)
    """

    def __init__(self, filt_size=4, stride=2, padding="reflect", **kwargs):
        super().__init__(**kwargs)
        self.filt_size = check_positive_int("filt_size", filt_size)
        if not 1 <= self.filt_size <= 7:
            raise ValueError(
                "Argument `filt_size` must be between 1 and 7. "
                f"Received: filt_size={filt_size}"
            )
        self.stride = check_positive_int("stride", stride)
        self.padding = check_choice("padding", padding, PADDING_MODES)

    def build(self, input_shape):
        channels = check_image_shape(self.__class__.__name__, input_shape)
        filt = binomial_filter(self.filt_size)[:, :, None, None]  # (k, k, 1, 1)
        self._filter = np.tile(filt, (1, 1, channels, 1)).astype("float32")

    def call(self, inputs):
        before, after = (self.filt_size - 1) // 2, self.filt_size // 2
        inputs = as_float(inputs, self.compute_dtype)  # integer / bool -> compute dtype
        x = pad_spatial(inputs, ((before, after), (before, after)), self.padding)
        kernel = ops.cast(self._filter, x.dtype)
        return ops.depthwise_conv(x, kernel, strides=self.stride, padding="valid")

    def compute_output_shape(self, input_shape):
        check_image_shape(self.__class__.__name__, input_shape)
        b, h, w, c = input_shape
        out = lambda n: None if n is None else -(-n // self.stride)  # noqa: E731
        return (b, out(h), out(w), c)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"filt_size": self.filt_size, "stride": self.stride, "padding": self.padding}
        )
        return config
