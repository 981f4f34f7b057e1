"""Rank-generic bases of the 1-D and 3-D layers and of `PolyphaseDownsample` / `PolyphaseUpsample2D`.

The public classes (`PolyphaseDownsample1D`, `BlurPool3D`, ...) fix the rank
and document the arguments; docs/design.md, "Other ranks", says what they
compute.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_shiftinv.layers._utils import PADDING_MODES
from keras_shiftinv.layers._utils import IndexedOutputSpec
from keras_shiftinv.layers._utils import as_float
from keras_shiftinv.layers._utils import check_choice
from keras_shiftinv.layers._utils import check_return_index
from keras_shiftinv.layers._utils import check_odd_kernel_size
from keras_shiftinv.layers._utils import check_positive_int
from keras_shiftinv.layers._utils import check_signal_shape
from keras_shiftinv.layers._utils import check_strides
from keras_shiftinv.layers._utils import gather_phase
from keras_shiftinv.layers._utils import pad_axes
from keras_shiftinv.layers._utils import pad_to_even_axes
from keras_shiftinv.layers._utils import phase_pad
from keras_shiftinv.layers._utils import resolve_phase
from keras_shiftinv.layers._utils import rolled_by_phase
from keras_shiftinv.layers._utils import strided_output_shape
from keras_shiftinv.layers import polyphase_algebra as algebra
from keras_shiftinv.layers.polyphase_algebra import ALIGNS
from keras_shiftinv.layers.polyphase_algebra import MIXING_WIDTHS
from keras_shiftinv.layers.polyphase_algebra import group_width

CRITERIA = ("l2", "l1")


class PolyphaseDownsampleND(IndexedOutputSpec, keras.layers.Layer):
    """The paper's module for `rank` spatial axes, group mixing only (see the subclasses).

    The argument checks, the weights, the fused path (`fused_kernel`, one
    convolution) and the config live here once. A subclass may replace
    `check_mixing` and `mixing_shape` (the mixings it takes and their kernel
    layouts) and `mix_and_merge` (the 2-D layer picks the fused or the
    factored path). It sets `takes_strides = False` where its stride is
    fixed at 2 (no `strides` key in its config) and `strides_attribute =
    False` where it has no public `strides` (the 2-D layer never had one:
    code that finds strided layers by their `strides` must not see it).
    """

    rank = None
    takes_strides = True
    strides_attribute = True

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
        strides=2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_positive_int("filters", filters)
        self.mixing = self.check_mixing(mixing)
        self.mixing_width = check_choice("mixing_width", mixing_width, MIXING_WIDTHS)
        self.kernel_size = check_odd_kernel_size(kernel_size)
        self.padding = check_choice("padding", padding, PADDING_MODES)
        self.align = check_choice("align", align, ALIGNS)
        self.return_index = check_return_index(return_index, self.align)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self._strides = check_strides(strides, self.rank)  # per axis: what the split and the shapes read
        if self.strides_attribute:
            self.strides = self._strides
        self.phases = int(np.prod(self._strides))

    def check_mixing(self, mixing):
        """`mixing` if this layer takes it, else a ValueError."""
        if mixing != "group":
            raise ValueError(
                f"{self.__class__.__name__} supports only `mixing='group'`: the 2-D layer's "
                "'conv3d' mixing (a kernel of 3 over its 4 phases) has no agreed meaning for the "
                f"2 or 8 phases of other ranks (docs/design.md, 'Other ranks'). Received: mixing={mixing!r}"
            )
        return mixing

    def mixing_shape(self, channels):
        """`(mixing kernel shape, merge rows)`: the grouped layout `(k,)*rank + (P, width)`, width rows."""
        mixed = group_width(channels, self.filters, self.mixing_width, self.name)
        return (*[self.kernel_size] * self.rank, self.phases, mixed), mixed

    def build(self, input_shape):
        channels = check_signal_shape(self.__class__.__name__, input_shape, self.rank)
        kernel_shape, mixed = self.mixing_shape(channels)
        self.mixing_kernel = self.add_weight(
            name="mixing_kernel", shape=kernel_shape, initializer=self.kernel_initializer
        )
        self.merge_kernel = self.add_weight(
            name="merge_kernel", shape=(mixed, self.filters), initializer=self.kernel_initializer
        )
        self._channels = channels
        if self.use_bias:
            self.mixing_bias = self.add_weight(
                name="mixing_bias", shape=(kernel_shape[-1],), initializer=self.bias_initializer
            )
            self.merge_bias = self.add_weight(
                name="merge_bias", shape=(self.filters,), initializer=self.bias_initializer
            )

    def call(self, inputs, phase_index=None, training=None):
        inputs = as_float(inputs, self.compute_dtype)  # integer / bool -> compute dtype
        x, phase_index = self.padded_phases(inputs, phase_index)  # (B, *(n + 2*s*p), C)
        y = self.mix_and_merge(x, training)
        return (y, phase_index) if self.return_index else y

    def padded_phases(self, inputs, phase_index=None):
        """Even-padded, aligned where asked, every phase padded in place: `((B, *(n + 2*s*p), C), phase_index)`.

        Each phase map padded by `p = kernel_size // 2` with `padding`, in
        place (`_utils.phase_pad`: one gather where the map is static and the
        padding circular or reflect), for the "valid" strided convolutions
        that follow: no split into a phase-major stack.
        """
        x = pad_to_even_axes(inputs, self._strides, self.padding)
        if self.align == "max_norm" or phase_index is not None:
            phase_index = resolve_phase(x, self._strides, phase_index)
        x = phase_pad(x, self._strides, self.kernel_size // 2, self.padding, phase_index)
        return x, phase_index

    def mix_and_merge(self, x, training=None):
        """The mixing and the merge of the padded map: here always the one fused convolution."""
        return self._fused(x)

    def _biases(self):
        return (self.mixing_bias, self.merge_bias) if self.use_bias else (None, None)

    def _fused(self, x, folded=None):
        """One strided convolution of the padded map with the folded kernel (`fused_kernel`, or `folded` constants).

        `folded`: `(kernel, bias)` already in the strided layout (`algebra.strided_kernel`).
        """
        if folded is None:
            kernel, bias = self.fused_kernel(x.dtype)
            kernel = algebra.strided_kernel(kernel, self._strides)  # (k*s..., C, F)
        else:
            kernel, bias = folded
        kernel = ops.cast(kernel, x.dtype)
        bias = None if bias is None else ops.cast(bias, x.dtype)
        y = ops.conv(x, kernel, strides=self._strides, padding="valid")  # `x` arrives padded phase-wise: "same"
        return y if bias is None else y + bias

    @property
    def input_channels(self):
        """The number of input channels `C_in`, known once the layer is built."""
        return self._channels

    def fused_kernel(self, dtype="float32"):
        """The mixing and the 1x1 merge folded into one `(k,)*rank + (P*C, filters)` kernel.

        Nothing nonlinear stands between the two, so the module is one linear
        map of the phase-major stack (channel `p*C + c`;
        `polyphase_algebra.fused_kernel`). Returns `(kernel, bias)`, bias None
        without `use_bias`.
        """
        mixing_bias, merge_bias = self._biases()
        return algebra.fused_kernel(
            self.mixing, self.mixing_kernel, self.merge_kernel, self._channels, mixing_bias, merge_bias, dtype
        )

    def compute_output_shape(self, input_shape, phase_index_shape=None):
        check_signal_shape(self.__class__.__name__, input_shape, self.rank)
        shape = strided_output_shape(input_shape, self._strides, self.filters)
        return (shape, (input_shape[0],)) if self.return_index else shape

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
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        if self.takes_strides:
            config["strides"] = self._strides
        return config


class AdaptivePolyphasePoolND(IndexedOutputSpec, keras.layers.Layer):
    """APS for `rank` spatial axes (see the subclasses)."""

    rank = None

    def __init__(self, criterion="l2", padding="zeros", return_index=False, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.criterion = check_choice("criterion", criterion, CRITERIA)
        self.padding = check_choice("padding", padding, PADDING_MODES)
        self.return_index = bool(return_index)
        self.strides = check_strides(strides, self.rank)

    def build(self, input_shape):
        check_signal_shape(self.__class__.__name__, input_shape, self.rank)

    def call(self, inputs, phase_index=None):
        inputs = as_float(inputs, self.compute_dtype)
        x = pad_to_even_axes(inputs, self.strides, self.padding)
        phase_index = resolve_phase(x, self.strides, phase_index, self.criterion)
        outputs = gather_phase(x, phase_index, self.strides)  # one gather of the chosen phase
        return (outputs, phase_index) if self.return_index else outputs

    def compute_output_shape(self, input_shape, phase_index_shape=None):
        check_signal_shape(self.__class__.__name__, input_shape, self.rank)
        shape = strided_output_shape(input_shape, self.strides, input_shape[-1])
        return (shape, (input_shape[0],)) if self.return_index else shape

    def get_config(self):
        config = super().get_config()
        config.update({"criterion": self.criterion, "padding": self.padding, "return_index": self.return_index})
        if self.rank > 1:
            config["strides"] = self.strides
        return config


class BlurPoolND(keras.layers.Layer):
    """Separable binomial blur, then subsampling, along the strided axes (see the subclasses)."""

    rank = None
    _strides_name = "strides"

    def __init__(self, filt_size=4, strides=2, padding="reflect", **kwargs):
        super().__init__(**kwargs)
        self.filt_size = check_positive_int("filt_size", filt_size)
        if not 1 <= self.filt_size <= 7:
            raise ValueError(
                f"Argument `filt_size` must be between 1 and 7. Received: filt_size={filt_size}"
            )
        self.strides = check_strides(strides, self.rank, allowed=range(1, 65), name=self._strides_name)
        self.padding = check_choice("padding", padding, PADDING_MODES)
        # The 1-D binomial taps; BlurPool2D's filter is their outer product.
        self._taps = [math.comb(self.filt_size - 1, i) / 2 ** (self.filt_size - 1) for i in range(self.filt_size)]

    def build(self, input_shape):
        check_signal_shape(self.__class__.__name__, input_shape, self.rank)

    def call(self, inputs):
        x = as_float(inputs, self.compute_dtype)  # integer / bool -> compute dtype
        n, before = self.filt_size, (self.filt_size - 1) // 2
        for axis, stride in enumerate(self.strides, start=1):
            if stride == 1:
                continue  # an axis with stride 1 is neither blurred nor subsampled
            pads = [(0, 0)] * self.rank
            pads[axis - 1] = (before, n // 2)
            x = pad_axes(x, pads, self.padding)
            out = 0
            for i, tap in enumerate(self._taps):
                index = [slice(None)] * (self.rank + 2)
                index[axis] = slice(i, i - (n - 1) or None, stride)  # ceil(size / stride) entries
                out = out + ops.cast(tap, x.dtype) * x[tuple(index)]
            x = out
        return x

    def compute_output_shape(self, input_shape):
        check_signal_shape(self.__class__.__name__, input_shape, self.rank)
        return strided_output_shape(input_shape, self.strides, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"filt_size": self.filt_size, "padding": self.padding})
        config["strides" if self.rank > 1 else "stride"] = self.strides if self.rank > 1 else self.strides[0]
        return config


UPSAMPLE_MODES = ("place", "learned")


def interleave_phases(phases, strides, channels):
    """(B, *low, P*F) phase-major -> (B, *(low * strides), F), phase p at `[o_1::s_1, ...]`."""
    rank = len(strides)
    shape = ops.shape(phases)
    low = [shape[axis] for axis in range(1, rank + 1)]
    x = ops.reshape(phases, (-1, *low, *strides, channels))  # (B, *low, *s, F): P split row-major
    order = [0] + [i for axis in range(1, rank + 1) for i in (axis, rank + axis)] + [2 * rank + 1]
    x = ops.transpose(x, order)  # (B, n_1, s_1, n_2, s_2, ..., F)
    return ops.reshape(x, (-1, *[n * s for n, s in zip(low, strides)], channels))  # (B, *high, F)


class PolyphaseUpsampleND(keras.layers.Layer):
    """Upsampling at the phase an aligned downsampling chose, `rank` spatial axes (see the subclasses).

    A subclass may replace the two data movements, `interleave` and `roll`
    (the 2-D layer uses `depth_to_space` and one gather), and sets
    `takes_strides = False` where its stride is fixed at 2 (no `strides` key
    in its config).
    """

    rank = None
    takes_strides = True

    def __init__(
        self,
        filters=None,
        mode="learned",
        kernel_size=1,
        padding="zeros",
        use_bias=True,
        kernel_initializer="he_normal",
        bias_initializer="zeros",
        strides=2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.mode = check_choice("mode", mode, UPSAMPLE_MODES)
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
        self.strides = check_strides(strides, self.rank)
        self.phases = int(np.prod(self.strides))

    def build(self, input_shape):
        channels = check_signal_shape(self.__class__.__name__, input_shape, self.rank)
        self._channels = channels
        if self.mode == "place":
            return
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*[self.kernel_size] * self.rank, channels, self.phases * self.filters),
            initializer=self.kernel_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)

    def call(self, inputs, phase_index=None):
        inputs = as_float(inputs, self.compute_dtype)  # integer / bool -> compute dtype
        if self.mode == "place":
            zeros = ops.zeros_like(inputs)
            phases = ops.concatenate([inputs] + [zeros] * (self.phases - 1), axis=-1)  # (B, *n, P*C)
            channels = self._channels
        else:
            p = self.kernel_size // 2
            x = pad_axes(inputs, [(p, p)] * self.rank, self.padding)
            phases = ops.conv(x, ops.cast(self.kernel, x.dtype), padding="valid")  # (B, *n, P*F)
            channels = self.filters
        outputs = self.interleave(phases, channels)
        if self.mode == "learned" and self.use_bias:
            outputs = outputs + ops.cast(self.bias, outputs.dtype)
        if phase_index is None:
            return outputs
        phase_index = ops.stop_gradient(ops.cast(phase_index, "int32"))
        return rolled_by_phase(outputs, phase_index, self.strides)  # forward by its phase: undoes the down layer's roll

    def interleave(self, phases, channels):
        """(B, *low, P*channels) phase-major -> (B, *high, channels)."""
        return interleave_phases(phases, self.strides, channels)

    def compute_output_shape(self, input_shape, phase_index_shape=None):
        check_signal_shape(self.__class__.__name__, input_shape, self.rank)
        high = [None if n is None else n * s for n, s in zip(input_shape[1:-1], self.strides)]
        return (input_shape[0], *high, input_shape[-1] if self.filters is None else self.filters)

    def compute_output_spec(self, inputs, phase_index=None):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=self.compute_dtype)

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
        if self.takes_strides:
            config["strides"] = self.strides
        return config


def normalize_pads_nd(padding, rank):
    """An int, or one `(before, after)` per spatial axis (1-D: one pair) -> a tuple of `rank` pairs."""
    pairs = padding
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        pairs = ((padding, padding),) * rank
    elif rank == 1 and isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
        isinstance(p, (int, np.integer)) for p in padding
    ):
        pairs = (tuple(padding),)
    try:
        pads = tuple((int(before), int(after)) for before, after in pairs)
    except (TypeError, ValueError):
        pads = None
    if pads is None or len(pads) != rank or any(p < 0 for pair in pads for p in pair):
        layout = "(before, after)" if rank == 1 else "((before, after),) * " + str(rank)
        raise ValueError(
            f"Argument `padding` must be a non-negative int or {layout}. Received: padding={padding!r}"
        )
    return pads


class SpatialPaddingND(keras.layers.Layer):
    """Pads the `rank` spatial axes with zeros, reflection or circular wrap-around (see the subclasses)."""

    rank = None

    def __init__(self, padding=1, mode="zeros", **kwargs):
        super().__init__(**kwargs)
        self.padding = normalize_pads_nd(padding, self.rank)
        self.mode = check_choice("mode", mode, PADDING_MODES)

    def build(self, input_shape):
        check_signal_shape(self.__class__.__name__, input_shape, self.rank)

    def call(self, inputs):
        inputs = as_float(inputs, self.compute_dtype)  # integer / bool -> compute dtype
        return pad_axes(inputs, self.padding, self.mode)

    def compute_output_shape(self, input_shape):
        check_signal_shape(self.__class__.__name__, input_shape, self.rank)
        grown = [None if n is None else n + a + b for n, (a, b) in zip(input_shape[1:-1], self.padding)]
        return (input_shape[0], *grown, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"padding": self.padding, "mode": self.mode})
        return config
