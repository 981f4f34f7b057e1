import math

import keras
from keras import ops

from keras_shiftinv.layers._utils import PADDING_MODES
from keras_shiftinv.layers._utils import as_float
from keras_shiftinv.layers._utils import choose_phase
from keras_shiftinv.layers._utils import check_choice
from keras_shiftinv.layers._utils import check_return_index
from keras_shiftinv.layers._utils import check_image_shape
from keras_shiftinv.layers._utils import check_odd_kernel_size
from keras_shiftinv.layers._utils import halved_output_shape
from keras_shiftinv.layers._utils import output_spec_with_index
from keras_shiftinv.layers._utils import check_positive_int
from keras_shiftinv.layers._utils import pad_spatial
from keras_shiftinv.layers._utils import pad_to_even
from keras_shiftinv.layers._utils import phase_stack
from keras_shiftinv.layers._utils import shifted_pixels

MIXINGS = ("group", "conv3d")
MIXING_WIDTHS = ("lcm", "min")
# The paper's lcm width is refused above this many times max(C_in, filters).
MAX_WIDTH_FACTOR = 4
ALIGNS = (None, "max_norm")
# (dy, dx) of phase p = 0..3, the paper's components "1, 2, 3, 4".
PHASE_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))
# At inference, the grouped path's multiplies cost this many dense-conv multiplies (CPU, measured).
INFERENCE_GROUP_WEIGHT = 6


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
    stack = phase_stack(x)  # (B, h, w, 4, C)
    shape = ops.shape(stack)
    stack = ops.transpose(stack, (0, 1, 2, 4, 3))  # (B, h, w, C, 4)
    return ops.reshape(stack, (shape[0], shape[1], shape[2], 4 * x.shape[-1]))


@keras.saving.register_keras_serializable(package="keras_shiftinv")
class PolyphaseDownsample(keras.layers.Layer):
    """The paper's learned stride-2 downsampling module.

    The input is split into its four polyphase components (`polyphase_split`,
    channel-major), the four phases of each channel are mixed by a grouped
    convolution (`mixing="group"`: `groups=C_in`, `lcm(C_in, filters)`
    filters, or with `mixing_width="min"` the smallest multiple of `C_in`
    that is `>= filters`) or by a 3D convolution over the phase axis (`mixing="conv3d"`:
    kernel `(3, k, k)`, phase axis 4 -> 2, folded into `2*filters` channels
    ordered `o*2 + d`), and a 1x1 convolution merges the result to `filters`.

    Nothing nonlinear stands between the mixing and the merge, so the module
    is one linear map of the phase-major `(B, h, w, 4*C_in)` stack. Where it
    costs fewer multiplies for the batch at hand (composing the kernels once
    included), the layer folds both kernels into one dense `k x k` kernel and
    runs one ordinary convolution. Otherwise the grouped convolution runs as a
    depthwise convolution plus a sum over the four phases, and the 3D
    convolution as one 2D convolution over the two phase windows; then the
    1x1 merge. Both compute the same function of the same weights; neither uses
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
        super().__init__(**kwargs)
        self.filters = check_positive_int("filters", filters)
        self.mixing = check_choice("mixing", mixing, MIXINGS)
        self.mixing_width = check_choice("mixing_width", mixing_width, MIXING_WIDTHS)
        self.kernel_size = check_odd_kernel_size(kernel_size)
        self.padding = check_choice("padding", padding, PADDING_MODES)
        self.align = check_choice("align", align, ALIGNS)
        self.return_index = check_return_index(return_index, self.align)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        channels = check_image_shape(self.__class__.__name__, input_shape)
        k = self.kernel_size
        if self.mixing == "group":
            mixed = group_width(channels, self.filters, self.mixing_width, self.name)
            kernel_shape = (k, k, 4, mixed)
        else:
            mixed = 2 * self.filters
            kernel_shape = (3, k, k, channels, self.filters)
        self.mixing_kernel = self.add_weight(
            name="mixing_kernel",
            shape=kernel_shape,
            initializer=self.kernel_initializer,
        )
        self.merge_kernel = self.add_weight(
            name="merge_kernel",
            shape=(mixed, self.filters),
            initializer=self.kernel_initializer,
        )
        self._channels = channels
        if self.use_bias:
            self.mixing_bias = self.add_weight(
                name="mixing_bias",
                shape=(kernel_shape[-1],),
                initializer=self.bias_initializer,
            )
            self.merge_bias = self.add_weight(
                name="merge_bias",
                shape=(self.filters,),
                initializer=self.bias_initializer,
            )

    def call(self, inputs, phase_index=None, training=None):
        inputs = as_float(inputs, self.compute_dtype)  # integer / bool -> compute dtype
        x = pad_to_even(inputs, self.padding)
        if self.align == "max_norm" or phase_index is not None:
            x, phase_index = align_max_norm(x, phase_index)
        x = ops.space_to_depth(x, 2)  # (B, h, w, 4*C), phase-major channel p*C + c
        b, h, w, _ = ops.shape(x)
        pixels = b * h * w
        # Decided once per traced shape (static), else in the graph; training=None is inference.
        fuse = self._fusing_pays(pixels, training=True) if training else self._fusing_pays(pixels)
        if isinstance(pixels, int):
            y = self._fused(x) if fuse else self._unfused(x)
        else:
            y = ops.cond(fuse, lambda: self._fused(x), lambda: self._unfused(x))
        return (y, phase_index) if self.return_index else y

    def _fusing_pays(self, pixels, training=False):
        """Whether one folded kernel is cheaper for `pixels` output pixels.

        A cost model in multiplies, calibrated on CPU: folding costs `compose`
        once per call (three times in training: forward and two gradients) and
        saves `unfused - fused` per output pixel; the depthwise path also pays
        for writing and summing its `4 * mixed` intermediate values per pixel.
        At inference (`training=False`) the grouped path's multiplies weigh
        `INFERENCE_GROUP_WEIGHT` times a dense convolution's: measured per
        module at batch 32, 64x64, width 0.25 and batch 8, 224x224, width 1
        (docs/guide-speed.md, "Inference"), the depthwise conv, phase sum and
        merge run that much slower per multiply than one dense conv, so the
        folded kernel wins at every site but the wide 3x3 ones.
        Either path computes the same function.
        """
        k, c, f = self.kernel_size, self._channels, self.filters
        fused = 4 * c * f * k * k
        if self.mixing == "group":
            mixed = self.mixing_kernel.shape[-1]
            unfused = 4 * mixed * k * k + mixed * f + 32 * 4 * mixed
            compose = 4 * k * k * mixed * f
            if not training:
                return pixels * (INFERENCE_GROUP_WEIGHT * unfused - fused) >= compose
        else:
            unfused = 6 * c * f * k * k + 2 * f * f
            compose = 6 * k * k * c * f * f
        return pixels * (unfused - fused) >= (3 if training else 1) * compose

    def _fused(self, x):
        kernel, bias = self.fused_kernel(x.dtype)
        y = ops.conv(self._same_pad(x), kernel, padding="valid")
        return y if bias is None else y + bias

    def _unfused(self, x):
        y = self.group_mix(x) if self.mixing == "group" else self.conv3d_mix(x)
        y = ops.matmul(y, ops.cast(self.merge_kernel, y.dtype))
        if self.use_bias:
            y = y + ops.cast(self.merge_bias, y.dtype)
        return y

    def _same_pad(self, x):
        p = self.kernel_size // 2
        return pad_spatial(x, ((p, p), (p, p)), self.padding)

    def group_mix(self, x):
        """The grouped convolution alone, on phase-major `(B, h, w, 4*C)` input.

        A grouped conv with `groups=C` over the channel-major channels `c*4+p`
        equals a depthwise conv over the phase-major channels `p*C+c` followed
        by a sum over `p`. Returns `(B, h, w, C*M)`, channel `c*M + m`.
        """
        b, h, w, _ = ops.shape(x)
        k = self.kernel_size
        mixed = self.mixing_kernel.shape[-1]
        per_group = mixed // (x.shape[-1] // 4)
        kernel = ops.cast(self.mixing_kernel, x.dtype)  # (k, k, 4, C*M)
        kernel = ops.reshape(kernel, (k, k, x.shape[-1], per_group))  # (k, k, 4*C, M)
        y = ops.depthwise_conv(self._same_pad(x), kernel, padding="valid")
        y = ops.reshape(y, (b, h, w, 4, mixed))  # (B, h, w, p, C*M)
        y = ops.sum(y, axis=3)  # (B, h, w, C*M)
        if self.use_bias:
            y = y + ops.cast(self.mixing_bias, y.dtype)
        return y

    def conv3d_mix(self, x):
        """The 3D convolution alone, on phase-major `(B, h, w, 4*C)` input.

        With no padding on the phase axis it has two outputs, d=0 from phases
        0..2 and d=1 from phases 1..3, computed as one 2D convolution over a
        doubled batch. Returns `(B, h, w, 2*filters)`, channel `o*2 + d`.
        """
        b, h, w, _ = ops.shape(x)
        k, c, f = self.kernel_size, self._channels, self.filters
        kernel = ops.cast(self.mixing_kernel, x.dtype)  # (3, k, k, C, O)
        kernel = ops.transpose(kernel, (1, 2, 0, 3, 4))  # (k, k, 3, C, O)
        kernel = ops.reshape(kernel, (k, k, 3 * c, f))  # input channel j*C + c
        windows = ops.concatenate([x[..., : 3 * c], x[..., c:]], axis=0)  # (2B, h, w, 3*C)
        y = ops.conv(self._same_pad(windows), kernel, padding="valid")  # (2B, h, w, O)
        if self.use_bias:
            y = y + ops.cast(self.mixing_bias, y.dtype)
        y = ops.reshape(y, (2, b, h, w, f))  # (d, B, h, w, O)
        y = ops.transpose(y, (1, 2, 3, 4, 0))  # (B, h, w, O, d)
        return ops.reshape(y, (b, h, w, 2 * f))  # channel o*2 + d

    def fused_kernel(self, dtype="float32"):
        """The mixing and merge folded into one `(k, k, 4*C, filters)` kernel.

        Nothing nonlinear stands between the two, so the module is one linear
        map of the phase-major input; this returns its kernel and bias (None
        without `use_bias`). Composing costs `O(k^2 * C * mixed * filters)`
        multiplies per call, which large batches amortise.
        """
        k, f = self.kernel_size, self.filters
        mix = ops.cast(self.mixing_kernel, dtype)
        merge = ops.cast(self.merge_kernel, dtype)
        if self.mixing == "group":
            channels = self._channels
            mix = ops.reshape(mix, (k, k, 4, channels, -1))  # (k, k, p, c, m)
            merge = ops.reshape(merge, (channels, -1, f))  # (c, m, o)
            kernel = ops.einsum("xypcm,cmo->xypco", mix, merge)
            bias_in = None if not self.use_bias else ops.cast(self.mixing_bias, dtype)
            bias = None if bias_in is None else ops.matmul(bias_in, merge_flat(merge))
        else:
            merge = ops.reshape(merge, (f, 2, f))  # rows o*2 + d -> (o, d, q)
            # Output depth d reads phases d..d+2 with kernel slices j = p - d.
            per_phase = []
            for p in range(4):
                terms = [
                    ops.einsum("xyco,oq->xycq", mix[p - d], merge[:, d, :])
                    for d in (0, 1)
                    if 0 <= p - d <= 2
                ]
                per_phase.append(terms[0] if len(terms) == 1 else terms[0] + terms[1])
            kernel = ops.stack(per_phase, axis=2)  # (k, k, p, c, o)
            bias = None
            if self.use_bias:
                mix_bias = ops.cast(self.mixing_bias, dtype)
                bias = ops.einsum("o,odq->q", mix_bias, merge)
        kernel = ops.reshape(kernel, (k, k, 4 * self._channels, f))
        if self.use_bias:
            bias = bias + ops.cast(self.merge_bias, dtype)
        return kernel, bias

    def compute_output_shape(self, input_shape, phase_index_shape=None):
        return halved_output_shape(self.__class__.__name__, input_shape, self.filters, self.return_index)

    def compute_output_spec(self, inputs, phase_index=None):
        shape = self.compute_output_shape(inputs.shape)
        return output_spec_with_index(shape, self.compute_dtype, self.return_index)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "mixing": self.mixing,
                "mixing_width": self.mixing_width,
                "kernel_size": self.kernel_size,
                "padding": self.padding,
                "align": self.align,
                "return_index": self.return_index,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config


def group_width(channels, filters, mixing_width="lcm", name="polyphase_downsample"):
    """Channels of the grouped convolution: a multiple of `channels` (one group each).

    `"lcm"`: `lcm(channels, filters)` (the paper), refused with a ValueError
    above `MAX_WIDTH_FACTOR * max(channels, filters)`; `"min"`: the smallest
    multiple of `channels` that is `>= filters`.

    Example:
    >>> group_width(64, 128), group_width(3, 64), group_width(255, 256, "min")
    (128, 192, 510)
    """
    smallest = channels * -(-filters // channels)
    if mixing_width == "min":
        return smallest
    mixed = math.lcm(channels, filters)
    if mixed > MAX_WIDTH_FACTOR * max(channels, filters):
        raise ValueError(
            f"PolyphaseDownsample '{name}': the paper's group width lcm({channels}, {filters}) = "
            f"{mixed} channels is more than {MAX_WIDTH_FACTOR}x max(C_in, filters); pass "
            f"mixing_width='min' ({smallest} channels) or change the channel counts. "
            f"Received: mixing_width='lcm'"
        )
    return mixed


def merge_flat(merge):
    """(C, M, O) -> (C*M, O)."""
    return ops.reshape(merge, (-1, merge.shape[-1]))


def align_max_norm(x, phase_index=None):
    """Rolls each image by the (dy, dx) of its highest-L2-norm phase.

    `x` must have even height and width. With `phase_index` (shape `(B,)`,
    values `p = 2*dy + dx`) given, rolls by those phases instead of choosing.

    Returns:
        `(rolled, phase_index)`: `x` rolled circularly by `(-dy, -dx)`, so the
        chosen phase becomes phase 0, and the int32 phases of shape `(B,)`.
    """
    if phase_index is None:
        phase_index = choose_phase(phase_stack(x))  # (B,), float32 norms, shift-consistent ties
    phase_index = ops.stop_gradient(ops.cast(phase_index, "int32"))
    return shifted_pixels(x, phase_index, 1), phase_index  # one gather, no rolled copies
