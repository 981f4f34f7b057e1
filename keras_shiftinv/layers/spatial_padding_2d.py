import keras

from keras_shiftinv.layers._utils import PADDING_MODES
from keras_shiftinv.layers._utils import as_float
from keras_shiftinv.layers._utils import check_choice
from keras_shiftinv.layers._utils import check_image_shape
from keras_shiftinv.layers._utils import pad_spatial


def normalize_pads(padding):
    """An int or `((top, bottom), (left, right))` of non-negative ints -> the pair of pairs.

    Example:
    >>> normalize_pads(1), normalize_pads(((0, 1), (2, 3)))
    (((1, 1), (1, 1)), ((0, 1), (2, 3)))
    """
    pairs = padding
    if isinstance(padding, int) and not isinstance(padding, bool):
        pairs = ((padding, padding), (padding, padding))
    try:
        (top, bottom), (left, right) = pairs
        pads = tuple(int(p) for p in (top, bottom, left, right))
    except (TypeError, ValueError):
        pads = None
    if pads is None or any(p < 0 for p in pads):
        raise ValueError(
            "Argument `padding` must be a non-negative int or "
            f"((top, bottom), (left, right)). Received: padding={padding!r}"
        )
    return ((pads[0], pads[1]), (pads[2], pads[3]))


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class SpatialPadding2D(keras.layers.Layer):
    """Pads height and width with zeros, reflection or circular wrap-around.

    `mode="circular"` before every `padding="valid"` convolution makes a network
    equivariant to circular shifts; `"reflect"` follows `np.pad(mode="reflect")`.
    Integer and bool inputs are cast to the compute dtype, as the output spec
    declares.

    Args:
        padding: int, or `((top, bottom), (left, right))`.
        mode: `"zeros"`, `"reflect"` or `"circular"`.
        **kwargs: base layer arguments.

    Example:
    >>> tuple(SpatialPadding2D(1, mode="circular")(np.ones((1, 4, 4, 3))).shape)
    (1, 6, 6, 3)
    """

    def __init__(self, padding=1, mode="zeros", **kwargs):
        super().__init__(**kwargs)
        self.padding = normalize_pads(padding)
        self.mode = check_choice("mode", mode, PADDING_MODES)

    def build(self, input_shape):
        check_image_shape(self.__class__.__name__, input_shape)

    def call(self, inputs):
        inputs = as_float(inputs, self.compute_dtype)  # integer / bool -> compute dtype
        return pad_spatial(inputs, self.padding, self.mode)

    def compute_output_shape(self, input_shape):
        check_image_shape(self.__class__.__name__, input_shape)
        b, h, w, c = input_shape
        (top, bottom), (left, right) = self.padding
        grow = lambda n, extra: None if n is None else n + extra  # noqa: E731
        return (b, grow(h, top + bottom), grow(w, left + right), c)

    def get_config(self):
        config = super().get_config()
        config.update({"padding": self.padding, "mode": self.mode})
        return config
