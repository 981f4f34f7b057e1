import keras
from keras import ops

from keras_shiftinv.layers._utils import PADDING_MODES
from keras_shiftinv.layers._utils import as_float
from keras_shiftinv.layers._utils import check_choice
from keras_shiftinv.layers._utils import check_image_shape
from keras_shiftinv.layers._utils import check_positive_int
from keras_shiftinv.layers._utils import pad_spatial


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class PadToMultiple2D(keras.layers.Layer):
    """Pads the bottom and right to the next multiple of `multiple`, at run time.

    For models that take any input size (`unet(input_shape=(None, None, C))`):
    `CropLike2D` crops the result back to the input's size.

    Args:
        multiple: positive int; the output's height and width are multiples of it.
        mode: `"zeros"`, `"reflect"` or `"circular"`, as `SpatialPadding2D`.
        **kwargs: base layer arguments.

    Example:
    >>> x = np.arange(3.0).reshape(1, 1, 3, 1)
    >>> ops.convert_to_numpy(PadToMultiple2D(4, mode="circular")(x))[0, :, :, 0]
    array([[0., 1., 2., 0.],
           [0., 1., 2., 0.],
           [0., 1., 2., 0.],
           [0., 1., 2., 0.]], dtype=float32)
    """

    def __init__(self, multiple, mode="zeros", **kwargs):
        super().__init__(**kwargs)
        self.multiple = check_positive_int("multiple", multiple)
        self.mode = check_choice("mode", mode, PADDING_MODES)

    def build(self, input_shape):
        check_image_shape(self.__class__.__name__, input_shape)

    def call(self, inputs):
        inputs = as_float(inputs, self.compute_dtype)  # integer / bool -> compute dtype
        static = inputs.shape[1:3]
        if all(n is not None for n in static):
            pads = [(0, -n % self.multiple) for n in static]
            return pad_spatial(inputs, pads, self.mode)
        # Unknown sizes: pad `multiple - 1` (the most ever needed), crop to the multiple.
        shape = ops.shape(inputs)
        rows = (shape[1] + self.multiple - 1) // self.multiple * self.multiple
        cols = (shape[2] + self.multiple - 1) // self.multiple * self.multiple
        extra = self.multiple - 1
        padded = pad_spatial(inputs, ((0, extra), (0, extra)), self.mode)
        return padded[:, :rows, :cols, :]

    def compute_output_shape(self, input_shape):
        check_image_shape(self.__class__.__name__, input_shape)
        b, h, w, c = input_shape
        up = lambda n: None if n is None else -(-n // self.multiple) * self.multiple  # noqa: E731
        return (b, up(h), up(w), c)

    def get_config(self):
        config = super().get_config()
        config.update({"multiple": self.multiple, "mode": self.mode})
        return config


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class CropLike2D(keras.layers.Layer):
    """Crops `x` to the height and width of `reference`, keeping the top-left.

    Called as `layer([x, reference])`; undoes `PadToMultiple2D` at run time.

    Args:
        **kwargs: base layer arguments.

    Example:
    >>> x, reference = np.ones((1, 8, 8, 3)), np.ones((1, 5, 7, 1))
    >>> tuple(CropLike2D()([x, reference]).shape)
    (1, 5, 7, 3)
    """

    def call(self, inputs):
        x, reference = inputs
        shape = ops.shape(reference)
        return x[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        check_image_shape(self.__class__.__name__, x_shape)
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])
