import keras
from keras import ops

from keras_shiftinv.layers._nd import PolyphaseUpsampleND


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class PolyphaseUpsample2D(PolyphaseUpsampleND):
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

    rank = 2
    takes_strides = False

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
        super().__init__(
            filters, mode, kernel_size, padding, use_bias, kernel_initializer, bias_initializer,
            strides=2, **kwargs,
        )

    def interleave(self, phases, channels):
        return ops.depth_to_space(phases, 2)  # (B, 2h, 2w, F), phase p at [dy::2, dx::2]
