import keras

from keras_shiftinv.layers._utils import PADDING_MODES
from keras_shiftinv.layers._utils import IndexedOutputSpec
from keras_shiftinv.layers._utils import as_float
from keras_shiftinv.layers._utils import resolve_phase
from keras_shiftinv.layers._utils import check_choice
from keras_shiftinv.layers._utils import check_image_shape
from keras_shiftinv.layers._utils import halved_output_shape
from keras_shiftinv.layers._utils import pad_to_even
from keras_shiftinv.layers._utils import shifted_pixels

CRITERIA = ("l2", "l1")


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class AdaptivePolyphasePool2D(IndexedOutputSpec, keras.layers.Layer):
    """Adaptive polyphase sampling (APS; Chaman and Dokmanic, CVPR 2021).

    Keeps, per image, the one of the four stride-2 polyphase components with
    the largest norm over all its pixels and channels. A circular shift of the
    input permutes and shifts the components without changing their norms, so
    the kept component is the same up to an integer shift: with circular
    padding everywhere, a network of these is exactly invariant to circular
    shifts. Odd sizes are first padded by one row/column with `padding`.

    The norms are accumulated in float32 under mixed precision; exact ties go
    to the phase with the largest |value|, then to the lowest index (order
    `(0,0), (0,1), (1,0), (1,1)`); a NaN norm ranks lowest (docs/design.md,
    "The module"). Integer and bool inputs are cast to the compute dtype.

    Call it as `layer(x)` or, to reuse a choice made elsewhere (the ResNet
    shortcut), `layer(x, phase_index=index)` with `index` of shape `(B,)`.

    Args:
        criterion: `"l2"` (default) or `"l1"`, the norm that picks the phase.
        padding: `"zeros"` (default), `"reflect"` or `"circular"`, for odd sizes.
        return_index: bool; if True the layer returns `(output, phase_index)`.
        **kwargs: base layer arguments.

    Example:
    >>> x = np.zeros((1, 4, 4, 1)); x[0, 0, 1, 0] = 5.0  # the largest phase is (0, 1)
    >>> pooled, index = AdaptivePolyphasePool2D(return_index=True)(x)
    >>> ops.convert_to_numpy(index)
    array([1], dtype=int32)
    >>> ops.convert_to_numpy(pooled)[0, :, :, 0]
    array([[5., 0.],
           [0., 0.]], dtype=float32)
    >>> y = np.arange(16.0).reshape(1, 4, 4, 1)  # another map, subsampled on x's phase: y[:, 0::2, 1::2]
    >>> ops.convert_to_numpy(AdaptivePolyphasePool2D()(y, phase_index=index))[0, :, :, 0]
    array([[ 1.,  3.],
           [ 9., 11.]], dtype=float32)
    """

    def __init__(self, criterion="l2", padding="zeros", return_index=False, **kwargs):
        super().__init__(**kwargs)
        self.criterion = check_choice("criterion", criterion, CRITERIA)
        self.padding = check_choice("padding", padding, PADDING_MODES)
        self.return_index = bool(return_index)

    def build(self, input_shape):
        check_image_shape(self.__class__.__name__, input_shape)

    def call(self, inputs, phase_index=None):
        inputs = as_float(inputs, self.compute_dtype)
        x = pad_to_even(inputs, self.padding)
        phase_index = resolve_phase(x, (2, 2), phase_index, self.criterion)  # (B,), argmax that converts
        outputs = shifted_pixels(x, phase_index, 2)  # one gather of the chosen phase
        if self.return_index:
            return outputs, phase_index
        return outputs

    def compute_output_shape(self, input_shape, phase_index_shape=None):
        channels = input_shape[-1] if len(input_shape) == 4 else None
        return halved_output_shape(self.__class__.__name__, input_shape, channels, self.return_index)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "criterion": self.criterion,
                "padding": self.padding,
                "return_index": self.return_index,
            }
        )
        return config
