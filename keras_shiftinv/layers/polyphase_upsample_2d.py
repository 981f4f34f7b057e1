import keras
from keras import ops

from keras_shiftinv.layers._utils import PADDING_MODES
from keras_shiftinv.layers._utils import IndexedOutputSpec
from keras_shiftinv.layers._utils import as_float
from keras_shiftinv.layers._utils import check_choice
from keras_shiftinv.layers._utils import check_image_shape
from keras_shiftinv.layers._utils import check_odd_kernel_size
from keras_shiftinv.layers._utils import check_positive_int
from keras_shiftinv.layers._utils import pad_spatial
from keras_shiftinv.layers._utils import rolled_by_phase

MODES = ("place", "learned")


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class PolyphaseUpsample2D(IndexedOutputSpec, keras.layers.Layer):
    """Stride-2 upsampling at the phase an aligned downsampling chose.

    The inverse of the aligned downsampling layers. The four phases of the
    output, phase `p = 2*dy + dx`
    being the pixels `[dy::2, dx::2]`, are made from the low-resolution input:

    - `mode="place"` (APS-U, for `AdaptivePolyphasePool2D`): the input is
      phase 0 and the other three phases are zeros. There are no weights;
      follow it with a convolution (a learned filter) to fill the zeros.
    - `mode="learned"` (for `PolyphaseDownsample(align="max_norm")`): a
      `kernel_size` convolution on the low-resolution grid mixes the input
      into `4 * filters` channels, phase-major (`p * filters + f`).

    The phases are interleaved with `depth_to_space` and each image is then
    rolled circularly by `(dy, dx)` of its `phase_index` (one gather,
    `rolled_by_phase`), which undoes the
    down layer's roll: for APS, the input lands exactly on the pixels the
    pool kept. Without `phase_index` nothing is rolled (phase 0): then
    `mode="learned"` with `kernel_size=1` is a 2x2 stride-2 transposed
    convolution. With circular padding everywhere, a network whose every
    up layer gets the phase of its matching down layer is exactly equivariant
    to circular shifts of inputs whose sides are multiples of its total
    stride. Integer and bool inputs are cast to the compute dtype.

    Args:
        filters: int, output channels for `mode="learned"`; must be None for
            `mode="place"` (the output keeps the input's channels).
        mode: `"place"` or `"learned"` (default).
        kernel_size: odd int, the learned mixing's kernel on the
            low-resolution grid. Defaults to 1.
        padding: `"zeros"` (default), `"reflect"` or `"circular"`, the
            mixing's "same" padding.
        use_bias: bool, whether the mixing has a bias (one per output
            channel, shared by the four phases). Defaults to True.
        kernel_initializer: initializer of the mixing kernel.
        bias_initializer: initializer of the bias.
        **kwargs: base layer arguments.

    Returns:
        `(B, 2*h, 2*w, channels)` for an input of shape `(B, h, w, C)`.

    Example:
    >>> y = np.arange(4.0).reshape(1, 2, 2, 1)
    >>> up = PolyphaseUpsample2D(mode="place")
    >>> out = up(y, phase_index=np.array([3]))  # phase (dy, dx) = (1, 1)
    >>> ops.convert_to_numpy(out)[0, :, :, 0]
    array([[0., 0., 0., 0.],
           [0., 0., 0., 1.],
           [0., 0., 0., 0.],
           [0., 2., 0., 3.]], dtype=float32)
    """

    def __init__(
        self,
        filters=None,
        mode="learned",
        kernel_size=1,
        padding="zeros",
        use_bias=True,
        kernel_initializer="he_normal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.mode = check_choice("mode", mode, MODES)
        if self.mode == "place":
            if filters is not None:
                raise ValueError(
                    "Argument `filters` must be None for mode='place' (the output "
                    f"keeps the input's channels). Received: filters={filters!r}"
                )
            self.filters = None
        else:
            self.filters = check_positive_int("filters", filters)
        self.kernel_size = check_odd_kernel_size(kernel_size)
        self.padding = check_choice("padding", padding, PADDING_MODES)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        channels = check_image_shape(self.__class__.__name__, input_shape)
        if self.mode == "place":
            return
        k = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel",
            shape=(k, k, channels, 4 * self.filters),
            initializer=self.kernel_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer
            )

    def call(self, inputs, phase_index=None):
        inputs = as_float(inputs, self.compute_dtype)  # integer / bool -> compute dtype
        if self.mode == "place":
            zeros = ops.zeros_like(inputs)
            phases = ops.concatenate([inputs, zeros, zeros, zeros], axis=-1)  # (B, h, w, 4*C)
        else:
            p = self.kernel_size // 2
            x = pad_spatial(inputs, ((p, p), (p, p)), self.padding)
            phases = ops.conv(x, ops.cast(self.kernel, x.dtype), padding="valid")  # (B, h, w, 4*F)
        outputs = ops.depth_to_space(phases, 2)  # (B, 2h, 2w, F), phase p at [dy::2, dx::2]
        if self.mode == "learned" and self.use_bias:
            outputs = outputs + ops.cast(self.bias, outputs.dtype)
        if phase_index is None:
            return outputs
        phase_index = ops.stop_gradient(ops.cast(phase_index, "int32"))
        return rolled_by_phase(outputs, phase_index)  # one gather: no tf.Roll, no rolled copies

    def compute_output_shape(self, input_shape, phase_index_shape=None):
        check_image_shape(self.__class__.__name__, input_shape)
        b, h, w, c = input_shape
        double = lambda n: None if n is None else 2 * n  # noqa: E731
        return (b, double(h), double(w), c if self.filters is None else self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "mode": self.mode,
                "kernel_size": self.kernel_size,
                "padding": self.padding,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
