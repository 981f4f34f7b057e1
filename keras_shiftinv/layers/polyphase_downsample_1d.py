import keras

from keras_shiftinv.layers._nd import PolyphaseDownsampleND


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class PolyphaseDownsample1D(PolyphaseDownsampleND):
    """The paper's learned stride-2 downsampling module for signals `(B, T, C)`.

    `PolyphaseDownsample` with one spatial axis (docs/design.md, "Other
    ranks"): the signal is split into its 2 polyphase components (even and
    odd samples, phase `p = dt`; an odd length is first padded by one sample at
    the end with `padding`), the 2 phases of each channel are mixed by a
    grouped convolution (`groups=C_in`, kernel `k`, width `lcm(C_in, filters)`
    or with `mixing_width="min"` the smallest multiple of `C_in` that is
    `>= filters`), and a 1x1 convolution merges the result to `filters`.
    Output `(B, ceil(T/2), filters)`. Only `mixing="group"` exists in 1-D.

    Both kernels are composed into one `(k, 2*C_in, filters)` kernel
    (`fused_kernel`) and the layer runs one ordinary convolution; the weights
    keep the layouts of `Conv1D(groups=C_in)`, `(k, 2, width)`, and of the
    merge, `(width, filters)`.

    `align="max_norm"` first rolls the (even-padded) signal circularly by one
    sample if its odd phase has the larger L2 norm (ties as in 2-D: float32
    norm, then largest |value|, then the lower index). With circular padding
    a circular shift of the input then shifts the output by an integer
    number of samples. `return_index=True` returns `(outputs, phase_index)`,
    `layer(x, phase_index=index)` reuses a phase chosen elsewhere (e.g. by
    `AdaptivePolyphasePool1D`).

    Args:
        filters: int, number of output channels.
        mixing: `"group"` (the only one in 1-D; anything else is refused).
        kernel_size: odd int, the mixing's kernel on the half-length grid. Defaults to 3.
        padding: `"zeros"`, `"reflect"` or `"circular"`: for the odd-length pad
            and the mixing's "same" padding.
        align: `None` or `"max_norm"`.
        return_index: bool; if True (needs `align="max_norm"`) the layer
            returns `(outputs, phase_index)`.
        use_bias: bool, whether the mixing and merge have biases.
        kernel_initializer: initializer of both kernels.
        bias_initializer: initializer of both biases.
        mixing_width: `"lcm"` (default) or `"min"`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Example:
    >>> tuple(PolyphaseDownsample1D(8)(np.zeros((2, 33, 4))).shape)
    (2, 17, 8)
    >>> x = np.zeros((1, 6, 1), "float32"); x[0, 3, 0] = 1.0  # only the odd phase is non-zero
    >>> y, index = PolyphaseDownsample1D(2, align="max_norm", return_index=True)(x)
    >>> ops.convert_to_numpy(index)
    array([1], dtype=int32)
    """

    rank = 1
    takes_strides = False

    def __init__(
        self,
        filters,
        mixing="group",
        kernel_size=3,
        padding="zeros",
        align=None,
        return_index=False,
        use_bias=False,
        kernel_initializer="he_normal",
        bias_initializer="zeros",
        mixing_width="lcm",
        **kwargs,
    ):
        super().__init__(
            filters, mixing, kernel_size, padding, align, return_index, use_bias,
            kernel_initializer, bias_initializer, mixing_width, strides=2, **kwargs,
        )
