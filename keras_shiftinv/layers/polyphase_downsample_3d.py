import keras

from keras_shiftinv.layers._nd import PolyphaseDownsampleND


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class PolyphaseDownsample3D(PolyphaseDownsampleND):
    """The paper's learned stride-2 downsampling module for volumes `(B, D, H, W, C)`.

    `PolyphaseDownsample` with three spatial axes (docs/design.md, "Other
    ranks"). With `strides=(2, 2, 2)` the volume has 8 polyphase components,
    phase `p = 4*dz + 2*dy + dx` for the offsets `(dz, dy, dx)`; an axis with
    stride 1 (e.g. `strides=(1, 2, 2)`, the time axis of a video) is not
    split, and the layer then has 4 phases `p = 2*dy + dx` per frame position.
    Odd strided axes are first padded by one entry at the end with `padding`.
    The phases of each channel are mixed by a grouped convolution (`groups=C_in`,
    kernel `k x k x k`, width as in 2-D, `mixing_width`), then a 1x1x1 merge
    to `filters`. Output `(B, ceil(D/s_d), ceil(H/s_h), ceil(W/s_w), filters)`.
    Only `mixing="group"` exists in 3-D.

    Both kernels are composed into one `(k, k, k, P*C_in, filters)` kernel and
    the layer runs one ordinary 3-D convolution; the weights keep the layout of
    `Conv3D(groups=C_in)`, `(k, k, k, P, width)`, and of the merge, `(width, filters)`.

    `align="max_norm"` first rolls the (even-padded) volume circularly by
    minus the offsets of its highest-L2-norm phase (ties as in 2-D). With
    circular padding a circular shift along the strided axes then shifts the
    output by whole voxels. `return_index` / `phase_index` as in 2-D, with
    index values `0..P-1`.

    Args:
        filters: int, number of output channels.
        mixing: `"group"` (the only one in 3-D; anything else is refused).
        kernel_size: odd int, the mixing's kernel side. Defaults to 3.
        padding: `"zeros"`, `"reflect"` or `"circular"`.
        align: `None` or `"max_norm"`.
        return_index: bool; if True (needs `align="max_norm"`) the layer
            returns `(outputs, phase_index)`.
        use_bias: bool, whether the mixing and merge have biases.
        kernel_initializer: initializer of both kernels.
        bias_initializer: initializer of both biases.
        mixing_width: `"lcm"` (default) or `"min"`.
        strides: 2 (default) or a tuple of 3 values in {1, 2}, at least one 2.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Example:
    >>> tuple(PolyphaseDownsample3D(8)(np.zeros((1, 4, 5, 6, 3))).shape)
    (1, 2, 3, 3, 8)
    >>> tuple(PolyphaseDownsample3D(8, strides=(1, 2, 2))(np.zeros((1, 4, 5, 6, 3))).shape)
    (1, 4, 3, 3, 8)
    """

    rank = 3
