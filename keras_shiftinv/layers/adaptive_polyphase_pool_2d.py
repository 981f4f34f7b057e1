import keras
from keras import ops

from keras_shiftinv.layers._utils import PADDING_MODES
from keras_shiftinv.layers._utils import check_choice
from keras_shiftinv.layers._utils import check_image_shape
from keras_shiftinv.layers._utils import pad_to_even
from keras_shiftinv.layers._utils import phase_norms
from keras_shiftinv.layers._utils import phase_stack
from keras_shiftinv.layers._utils import select_phase

CRITERIA = ("l2", "l1")


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class AdaptivePolyphasePool2D(keras.layers.Layer):
    """Adaptive polyphase sampling (APS; Chaman and Dokmanic, CVPR 2021).

    Keeps, per image, the one of the four stride-2 polyphase components with
    the largest norm over all its pixels and channels (ties: lowest phase
    index, in the order `(0,0), (0,1), (1,0), (1,1)`). A circular shift of the
    input permutes and shifts the components without changing their norms, so
    the kept component is the same up to an integer shift: with circular
    padding everywhere, a network of these is exactly invariant to circular
    shifts. Odd sizes are first padded by one row/column with `padding`.

    Call it as `layer(x)` or, to reuse a choice made elsewhere (the ResNet
    shortcut), `layer(x, phase_index=index)` with `index` of shape `(B,)`.

    Args:
        criterion: `"l2"` (default) or `"l1"`, the norm that picks the phase.
        padding: `"zeros"` (default), `"reflect"` or `"circular"`, for odd sizes.
        return_index: bool; if True the layer returns `(output, phase_index)`.
        **kwargs: base layer arguments.

    Example:
    >>> pooled, index = AdaptivePolyphasePool2D(return_index=True)(x)
    >>> shortcut = AdaptivePolyphasePool2D()(y, phase_index=index)
    """

    def __init__(self, criterion="l2", padding="zeros", return_index=False, **kwargs):
        super().__init__(**kwargs)
        self.criterion = check_choice("criterion", criterion, CRITERIA)
        self.padding = check_choice("padding", padding, PADDING_MODES)
        self.return_index = bool(return_index)

    def build(self, input_shape):
        check_image_shape(self.__class__.__name__, input_shape)

    def call(self, inputs, phase_index=None):
        stack = phase_stack(pad_to_even(inputs, self.padding))  # (B, h, w, 4, C)
        if phase_index is None:
            norms = phase_norms(stack, self.criterion)  # (B, 4)
            phase_index = ops.argmax(norms, axis=-1)
        phase_index = ops.stop_gradient(ops.cast(phase_index, "int32"))
        outputs = select_phase(stack, phase_index)
        if self.return_index:
            return outputs, phase_index
        return outputs

    def compute_output_shape(self, input_shape, phase_index_shape=None):
        check_image_shape(self.__class__.__name__, input_shape)
        b, h, w, c = input_shape
        half = lambda n: None if n is None else (n + 1) // 2  # noqa: E731
        shape = (b, half(h), half(w), c)
        return (shape, (b,)) if self.return_index else shape

    def compute_output_spec(self, inputs, phase_index=None):
        shape = self.compute_output_shape(inputs.shape)
        if self.return_index:
            return (
                keras.KerasTensor(shape[0], dtype=self.compute_dtype),
                keras.KerasTensor(shape[1], dtype="int32"),
            )
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

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
