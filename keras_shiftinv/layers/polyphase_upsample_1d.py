import keras

from keras_shiftinv.layers._nd import PolyphaseUpsampleND


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class PolyphaseUpsample1D(PolyphaseUpsampleND):
    """Stride-2 upsampling of signals `(B, t, C)` at the phase an aligned downsampling chose.

    `PolyphaseUpsample2D` with one spatial axis (docs/design.md, "Other
    ranks"). The two phases of the output (even samples `p = 0`, odd `p = 1`)
    are made from the low-resolution input:

    - `mode="place"` (for `AdaptivePolyphasePool1D`): the input is phase 0,
      phase 1 is zeros; no weights.
    - `mode="learned"` (for `PolyphaseDownsample1D(align="max_norm")`): a
      `kernel_size` convolution on the low-resolution grid gives `2 * filters`
      channels, phase-major (`p * filters + f`); the bias is shared by both phases.

    The phases are interleaved and each signal is then rolled circularly
    forward by its `phase_index` (0 or 1), which undoes the down layer's roll;
    without `phase_index` nothing is rolled. With circular padding everywhere,
    a network whose every up layer gets the phase of its matching down layer
    is exactly equivariant to circular shifts of signals whose length is a
    multiple of its total stride.

    Args:
        filters: int, output channels for `mode="learned"`; None for `mode="place"`.
        mode: `"place"` or `"learned"` (default).
        kernel_size: odd int, the mixing's kernel on the low-resolution grid. Defaults to 1.
        padding: `"zeros"` (default), `"reflect"` or `"circular"`, the mixing's "same" padding.
        use_bias: bool. Defaults to True.
        kernel_initializer: initializer of the mixing kernel `(k, C, 2*filters)`.
        bias_initializer: initializer of the bias `(filters,)`.
        **kwargs: base layer arguments.

    Returns:
        `(B, 2*t, channels)` for an input of shape `(B, t, C)`.

    Example:
    >>> y = np.array([[[1.0], [2.0], [3.0]]])
    >>> up = PolyphaseUpsample1D(mode="place")
    >>> ops.convert_to_numpy(up(y, phase_index=np.array([1])))[0, :, 0]  # the odd samples
    array([0., 1., 0., 2., 0., 3.], dtype=float32)
    """

    rank = 1
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
