import keras

from keras_shiftinv.layers._nd import PolyphaseUpsampleND


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class PolyphaseUpsample3D(PolyphaseUpsampleND):
    """Upsampling of volumes `(B, d, h, w, C)` at the phase an aligned downsampling chose.

    `PolyphaseUpsample2D` with three spatial axes (docs/design.md, "Other
    ranks"). With `strides=(2, 2, 2)` the output has 8 phases, `p = 4*dz +
    2*dy + dx`; an axis with stride 1 is not upsampled (`strides=(1, 2, 2)`:
    4 phases per frame). `mode="place"` puts the input at phase 0 and zeros
    elsewhere; `mode="learned"` makes the `P` phases with one `kernel_size`
    convolution into `P * filters` phase-major channels. Each volume is then
    rolled circularly forward by the offsets of its `phase_index` (from a
    `PolyphaseDownsample3D` or `AdaptivePolyphasePool3D` with the same
    `strides`), which undoes their roll; without it nothing is rolled.

    Args:
        filters: int, output channels for `mode="learned"`; None for `mode="place"`.
        mode: `"place"` or `"learned"` (default).
        kernel_size: odd int, the mixing's kernel side on the low-resolution grid. Defaults to 1.
        padding: `"zeros"` (default), `"reflect"` or `"circular"`.
        use_bias: bool. Defaults to True.
        kernel_initializer: initializer of the kernel `(k, k, k, C, P*filters)`.
        bias_initializer: initializer of the bias `(filters,)`.
        strides: 2 (default) or a tuple of 3 values in {1, 2}, at least one 2.
        **kwargs: base layer arguments.

    Returns:
        `(B, s_d*d, s_h*h, s_w*w, channels)`.

    Example:
    >>> up = PolyphaseUpsample3D(mode="place", strides=(1, 2, 2))
    >>> out = ops.convert_to_numpy(up(np.ones((1, 3, 2, 2, 1)), phase_index=np.array([3])))
    >>> out.shape, out[0, 0, :, :, 0].tolist()  # phase (dy, dx) = (1, 1) of every frame
    ((1, 3, 4, 4, 1), [[0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
    """

    rank = 3
