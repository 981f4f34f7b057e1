import contextlib

import keras
import numpy as np
from keras import ops

from keras_shiftinv.layers import polyphase_algebra as algebra
from keras_shiftinv.layers._nd import PolyphaseDownsampleND
from keras_shiftinv.layers._utils import PADDING_MODES
from keras_shiftinv.layers._utils import align_max_norm  # noqa: F401 (re-exported: conversion imports it from here)
from keras_shiftinv.layers._utils import check_choice
from keras_shiftinv.layers._utils import pad_to_even
from keras_shiftinv.layers._utils import phase_pad
from keras_shiftinv.layers._utils import phase_stack_axes
from keras_shiftinv.layers.polyphase_algebra import MIXINGS


def polyphase_split(x, padding="zeros"):
    """Splits a map into its four polyphase components, channel-major.

    Odd heights or widths are first padded by one row (bottom) or column
    (right) with `padding`, so nothing is dropped.

    Args:
        x: tensor of shape `(B, H, W, C)`.
        padding: `"zeros"`, `"reflect"` or `"circular"`.

    Returns:
        Tensor of shape `(B, ceil(H/2), ceil(W/2), 4*C)` whose channel
        `c*4 + p` is `x[:, dy::2, dx::2, c]` with `p = 2*dy + dx`: the paper's
        RRRRGGGGBBBB order. (`ops.space_to_depth` gives `p*C + c` instead.)

    Example:
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
    >>> ops.convert_to_numpy(polyphase_split(x)[0, 0, 0])  # x[0,0], x[0,1], x[1,0], x[1,1]
    array([0., 1., 4., 5.])
    """
    check_choice("padding", padding, PADDING_MODES)
    x = pad_to_even(ops.convert_to_tensor(x), padding)
    stack = phase_stack_axes(x, (2, 2))  # (B, h, w, 4, C), phase p = 2*dy + dx
    shape = ops.shape(stack)
    stack = ops.transpose(stack, (0, 1, 2, 4, 3))  # (B, h, w, C, 4)
    return ops.reshape(stack, (shape[0], shape[1], shape[2], 4 * x.shape[-1]))


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class PolyphaseDownsample(PolyphaseDownsampleND):
    """The paper's learned stride-2 downsampling module.

    The input is split into its four polyphase components (`polyphase_split`,
    channel-major), the four phases of each channel are mixed by a grouped
    convolution (`mixing="group"`: `groups=C_in`, `lcm(C_in, filters)`
    filters, or with `mixing_width="min"` the smallest multiple of `C_in`
    that is `>= filters`) or by a 3D convolution over the phase axis (`mixing="conv3d"`:
    kernel `(3, k, k)`, phase axis 4 -> 2, folded into `2*filters` channels
    ordered `o*2 + d`), and a 1x1 convolution merges the result to `filters`.

    Nothing nonlinear stands between the mixing and the merge, so the module
    is one linear map of the phase-major `(B, h, w, 4*C_in)` stack. The layer
    never builds that stack: a `k x k` convolution of the four phase maps is
    a `2k x 2k` convolution of the map with stride 2 (each phase padded in
    place, `_utils.phase_pad`; `polyphase_algebra.strided_kernel`). Where it
    costs fewer multiplies for the batch at hand (composing the kernels once
    included), the layer folds both kernels into one dense kernel and runs
    one strided convolution. Otherwise the grouped convolution runs as one
    strided depthwise convolution, and the 3D convolution as one 2D
    convolution of the phase stack over its two phase windows; then the 1x1
    merge. Both compute the same function of the same weights; neither uses
    Keras's `Conv2D(groups=...)`, which the TF backend forces through XLA on
    CPU (slow, and not exportable without XLA). The weights keep the layouts
    of `Conv2D(groups=C_in)`, `(k, k, 4, width)`, and of `Conv3D`,
    `(3, k, k, C_in, filters)`; the merge kernel is `(mixed, filters)`.

    `align="max_norm"` first rolls the (even-padded) input circularly by the
    `(dy, dx)` of its highest-L2-norm phase, so that phase comes first (norms
    accumulated in float32; exact ties go to the largest |value|, then to the
    lowest index; NaN ranks lowest: docs/design.md, "The module"). With
    circular padding everywhere, a circular
    shift of the input then shifts the output by an integer number of pixels,
    which is what makes a network built from it exactly invariant to circular
    shifts. Without `align`, a one-pixel shift permutes the phases and the
    learned mixing is *not* shift-invariant: the gains are measured, not
    guaranteed.

    Phase passing (the residual shortcut of an aligned block must use its main
    path's phase): with `return_index=True` the layer returns
    `(outputs, phase_index)`, `phase_index` int32 of shape `(B,)` holding the
    phase `p = 2*dy + dx` that was rolled to the front. Calling
    `layer(x, phase_index=index)` rolls by the given phases instead of
    choosing them (whatever `align` is); `index` may come from another
    `PolyphaseDownsample` or from an `AdaptivePolyphasePool2D`.

    Args:
        filters: int, number of output channels.
        mixing: `"group"` or `"conv3d"`.
        mixing_width: `"lcm"` (default, the paper: `lcm(C_in, filters)`
            channels) or `"min"` (the smallest multiple of `C_in` that is
            `>= filters`), the grouped convolution's width; ignored by
            `"conv3d"`. An lcm above 4 x max(C_in, filters) (e.g. 255 -> 256)
            is refused at build time: use `"min"` there.
        kernel_size: odd int, spatial kernel of the mixing on the half-resolution
            grid. Defaults to 3.
        padding: `"zeros"`, `"reflect"` or `"circular"`: used both for the odd-size
            pad before the split and for the mixing's "same" padding.
        align: `None` or `"max_norm"`.
        return_index: bool; if True (needs `align="max_norm"`) the layer
            returns `(outputs, phase_index)`.
        use_bias: bool, whether the mixing and merge convolutions have biases.
        kernel_initializer: initializer of both kernels.
        bias_initializer: initializer of both biases.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Integer and bool inputs are cast to the compute dtype.

    Example:
    >>> layer = PolyphaseDownsample(64, mixing="conv3d")
    >>> tuple(layer(np.zeros((2, 33, 20, 16))).shape)
    (2, 17, 10, 64)
    >>> x = np.zeros((1, 4, 4, 1), "float32")
    >>> x[0, 1, 0, 0] = 1.0  # only phase (dy, dx) = (1, 0) is non-zero
    >>> aligned = PolyphaseDownsample(2, align="max_norm", return_index=True)
    >>> y, index = aligned(x)
    >>> ops.convert_to_numpy(index)
    array([2], dtype=int32)
    >>> shortcut = PolyphaseDownsample(2, kernel_size=1, align="max_norm")
    >>> tuple(shortcut(x, phase_index=index).shape)
    (1, 2, 2, 2)
    """

    rank = 2
    takes_strides = False
    strides_attribute = False

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
        self._folded = None  # (kernel, bias) as numpy while inside `folded_kernels`

    def check_mixing(self, mixing):
        return check_choice("mixing", mixing, MIXINGS)

    def mixing_shape(self, channels):
        if self.mixing == "group":
            return super().mixing_shape(channels)  # (k, k, 4, width)
        k = self.kernel_size
        return (3, k, k, channels, self.filters), 2 * self.filters  # Conv3D layout; merge reads o*2 + d

    def build(self, input_shape):
        super().build(input_shape)
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: self._channels})

    def mix_and_merge(self, x, training=None):
        """The fused path or the factored one (mixing, then merge), whichever costs less here.

        `x` is the map with every phase padded by `kernel_size // 2` (`padded_phases`).
        """
        b, h, w, _ = ops.shape(x)
        p = self.kernel_size // 2
        h, w = h // 2 - 2 * p, w // 2 - 2 * p  # the output's size
        if not training and not isinstance(b, int) and isinstance(h, int) and isinstance(w, int):
            b = algebra.INFERENCE_BATCH  # batch None at inference: decided now, no `cond` in the graph
        pixels = b * h * w
        # Decided once per traced shape (at inference a batch of None counts as INFERENCE_BATCH when
        # the map size is known), else in the graph. training=None is inference.
        folded = None if training else self._folded  # constants from `folded_kernels`, inference only
        fuse = self._fusing_pays(pixels, training=bool(training), folded=folded is not None)  # folded: paid at export
        if isinstance(fuse, (bool, np.bool_)):
            return self._fused(x, folded) if fuse else self._unfused(x)
        return ops.cond(fuse, lambda: self._fused(x, folded), lambda: self._unfused(x))

    def _fusing_pays(self, pixels, training=False, folded=False):
        """`polyphase_algebra.fusing_pays` for this layer's sizes (the path choice)."""
        mixed = self.merge_kernel.shape[0]
        return algebra.fusing_pays(
            self.mixing, pixels, self.kernel_size, self._channels, self.filters, mixed, training, folded
        )

    def _unfused(self, x):
        y = self.mix(x, padded=True)
        y = ops.matmul(y, ops.cast(self.merge_kernel, y.dtype))
        if self.use_bias:
            y = y + ops.cast(self.merge_bias, y.dtype)
        return y

    def mix(self, x, padded=False):
        """The layer's mixing alone (`polyphase_algebra.group_mix` or `conv3d_mix`): `(B, H, W, C)` -> `(B, H/2, W/2, mixed)`.

        `x`: the even-sized map (aligned already where the layer aligns), or
        with `padded=True` that map with every phase padded (`padded_phases`).
        """
        if not padded:
            x = phase_pad(x, self._strides, self.kernel_size // 2, self.padding)
        if self.mixing == "group":
            return algebra.group_mix(x, self.mixing_kernel, self._biases()[0], self._strides)
        return algebra.conv3d_mix(x, self.mixing_kernel, self._biases()[0])


@contextlib.contextmanager
def folded_kernels(model, path=None):
    """Within the block, every `PolyphaseDownsample` in `model` runs at inference on kernels folded
    now, from the current weights, into constants (its fused path) or on its stored kernels (factored).

    For exporters that do not fold the kernel composition themselves: the
    LiteRT converter leaves it as ops that run on every call and feed a
    convolution with computed (not constant) weights, which XNNPACK does not
    take (docs/guide-speed.md, "Inference"). Wrap the tracing (the export);
    training calls inside the block are unchanged. The function is the same
    (the same composition, done once in float32).

    Args:
        model: a `keras.Model` (or layer) holding the modules.
        path: None (default): the path in force, `"count"` unless the
            caller wrapped the block in `inference_path(...)`: each module
            takes the path the cost rule picks with folding free
            (`polyphase_algebra.fusing_pays(folded=True)`), its fused path
            on the constants (every export: the factored `group` path is
            faster at the large early maps in TF, LiteRT and ONNX Runtime,
            docs/guide-speed.md, "Round 5"); `"fused"`: every module one
            convolution; `"factored"`: mixing, then merge.

    Example:
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), PolyphaseDownsample(4)])
    >>> x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    >>> with folded_kernels(model):
    ...     folded = ops.convert_to_numpy(model(x))
    >>> bool(np.allclose(folded, ops.convert_to_numpy(model(x)), atol=1e-5))
    True
    """
    layers = [layer for layer in _all_layers(model) if isinstance(layer, PolyphaseDownsample)]
    for layer in layers:
        kernel, bias = layer.fused_kernel("float32")
        kernel = algebra.strided_kernel(ops.convert_to_numpy(kernel), layer._strides)  # (2k, 2k, C, F)
        layer._folded = (kernel, None if bias is None else ops.convert_to_numpy(bias))
    try:
        with algebra.inference_path(path or algebra.current_inference_path()):
            yield
    finally:
        for layer in layers:
            layer._folded = None


def _all_layers(layer):
    """`layer` and every layer inside it, depth first."""
    yield layer
    for inner in getattr(layer, "layers", []):
        yield from _all_layers(inner)
