"""Argument checks and padding helpers shared by the layers (not public API)."""

import functools
import itertools

import keras
import numpy as np
from keras import ops

PADDING_MODES = ("zeros", "reflect", "circular")
# (dy, dx) of the stride-2 phase p = 0..3, p = 2*dy + dx: the paper's components "1, 2, 3, 4".
PHASE_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))
# `choose_phase` reduces a map of fewer channels over each phase's positions first, then its
# channels (faster there, on 2-core CPU in TF: benchmarks/bench_sites.py, docs/guide-speed.md, "Round 6").
POSITIONS_FIRST_BELOW = 32
# `phase_pad` gathers from one constant index table up to this many entries (int32; 8 MiB).
PAD_TABLE_LIMIT = 2**21


def check_choice(name, value, choices):
    """`value` if it is one of `choices`, else a ValueError naming the argument."""
    if value not in choices:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected one of "
            f"{list(choices)}. Received: {name}={value!r}"
        )
    return value


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"Argument `{name}` must be a positive integer. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    if value <= 0:
        raise ValueError(
            f"Argument `{name}` must be a positive integer. Received: {name}={value}"
        )
    return int(value)


def check_odd_kernel_size(value):
    """A positive odd kernel size, so that 'same' padding is symmetric."""
    value = check_positive_int("kernel_size", value)
    if value % 2 == 0:
        raise ValueError(
            "Argument `kernel_size` must be odd, so that 'same' padding is "
            f"symmetric. Received: kernel_size={value}"
        )
    return value


def check_channels_last(name):
    """Refuses a global `channels_first` setting: the package is channels-last only.

    The layers read (batch, height, width, channels) whatever the global Keras
    setting, but the Keras layers around them (and the `ops` they call) follow
    it, so the mix would silently misread the axes.
    """
    data_format = keras.config.image_data_format()
    if data_format != "channels_last":
        raise ValueError(
            f"{name} is channels-last only (inputs (batch, height, width, channels)); call "
            "keras.config.set_image_data_format('channels_last') before building it. "
            f"Received: image_data_format={data_format!r}"
        )


def as_float(x, dtype):
    """Casts integer and bool inputs to `dtype` (the layer's compute dtype).

    Floating inputs pass through unchanged (Keras autocasts them already).
    """
    x = ops.convert_to_tensor(x)
    if keras.backend.is_float_dtype(x.dtype):
        return x
    return ops.cast(x, dtype)


def check_image_shape(layer_name, input_shape):
    """Checks a channels-last 4D shape with a known channel count."""
    return check_signal_shape(layer_name, input_shape, 2)


def check_return_index(return_index, align):
    """`return_index` as a bool; True needs an alignment, which is what chooses a phase."""
    if return_index and align is None:
        raise ValueError(
            "Argument `return_index=True` needs `align='max_norm'` (without "
            f"alignment no phase is chosen). Received: align={align!r}"
        )
    return bool(return_index)


def halved_output_shape(layer_name, input_shape, channels, return_index):
    """Output shape of a stride-2 layer, `(B, ceil(H/2), ceil(W/2), channels)`.

    With `return_index` the layer also returns its phase index, shape `(B,)`.
    """
    check_image_shape(layer_name, input_shape)
    b, h, w, _ = input_shape
    half = lambda n: None if n is None else (n + 1) // 2  # noqa: E731
    shape = (b, half(h), half(w), channels)
    return (shape, (b,)) if return_index else shape


def output_spec_with_index(shape, dtype, return_index):
    """KerasTensor(s) for a shape, or for `(shape, (B,))` with `return_index`; the phase index is int32."""
    if return_index:
        return keras.KerasTensor(shape[0], dtype=dtype), keras.KerasTensor(shape[1], dtype="int32")
    return keras.KerasTensor(shape, dtype=dtype)


class IndexedOutputSpec:
    """Mixin: `compute_output_spec` from `compute_output_shape`, the phase index int32.

    For the layers called as `layer(x, phase_index=None)` (any rank); a layer
    without `return_index` returns the output alone.
    """

    return_index = False

    def compute_output_spec(self, inputs, phase_index=None):
        shape = self.compute_output_shape(inputs.shape)
        return output_spec_with_index(shape, self.compute_dtype, self.return_index)


def _pad_indices(size, before, after, mode):
    """Indices into an axis of length `size` that pad it like np.pad (numpy where `size` is static)."""
    xp = np if isinstance(size, (int, np.integer)) else ops
    idx = xp.arange(-before, size + after, dtype="int32")
    if mode == "circular":
        return xp.mod(idx, size)
    # mode == "reflect": period 2 * (size - 1); a length-1 axis repeats itself.
    period = xp.maximum(2 * (size - 1), 1)
    m = xp.mod(idx, period)
    index = xp.where(m >= size, period - m, m)
    return index.astype("int32") if xp is np else index


def pad_spatial(x, pads, mode):
    """Pads axes 1 and 2 of a (B, H, W, C) tensor.

    Args:
        x: channels-last 4D tensor.
        pads: `((top, bottom), (left, right))` in pixels.
        mode: `"zeros"`, `"reflect"` (as `np.pad(mode="reflect")`, also for
            pads larger than the axis) or `"circular"` (as `np.pad(mode="wrap")`).
    """
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    if mode == "zeros":
        return ops.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
    _, h, w, c = ops.shape(x)  # the batch stays -1 below: no shape arithmetic left in an export
    rows = _pad_indices(h, top, bottom, mode)  # (H + top + bottom,)
    cols = _pad_indices(w, left, right, mode)  # (W + left + right,)
    pixels = ops.reshape(rows[:, None] * w + cols[None, :], (-1,))  # index into the H*W pixels, row-major
    x = take_in_range(ops.reshape(x, (-1, h * w, c)), pixels, axis=1)  # (B, H'*W', C): one gather, one copy
    return ops.reshape(x, (-1, h + top + bottom, w + left + right, c))  # (B, H', W', C)


def pad_to_even(x, mode):
    """Pads one row at the bottom / one column at the right where odd."""
    shape = ops.shape(x)
    static = x.shape
    if static[1] is not None and static[2] is not None:
        pads = ((0, static[1] % 2), (0, static[2] % 2))
        return pad_spatial(x, pads, mode)
    # Dynamic sizes: pad one and crop back to the even size.
    even_h = shape[1] + shape[1] % 2
    even_w = shape[2] + shape[2] % 2
    x = pad_spatial(x, ((0, 1), (0, 1)), mode)
    return x[:, :even_h, :even_w, :]


def choose_phase(x, strides=(2, 2), criterion="l2"):
    """(B, *spatial, C), strided axes even -> (B,) int32: the phase of largest norm, per item.

    Ranking (docs/design.md, "The module"): the float32-accumulated norm;
    among exact ties, the largest |value|; among ties of both, the lowest
    index (`phase_offsets(strides)` order). NaN keys rank lowest, so the
    index is always a valid phase.

    Both keys are reductions over each phase's entries, in one of two
    orders picked once per shape: with `C >= POSITIONS_FIRST_BELOW` channels
    each pixel is first reduced over its channels and only that map, `C`
    times smaller, is split into phases (a reshape); with fewer channels,
    where a reduction over a short innermost axis is slow, the positions
    within each phase are reduced first (reductions over outer axes of the
    map reshaped to `(B, n1/s1, s1, ..., nk/sk, sk*C)`), then the channels.
    Either way the map is never copied phase by phase, the peaks are the
    same values, and the norms the same sums in another order (float32
    rounding, as for a shifted copy: docs/design.md, "The module").

    Example:
    >>> x = np.zeros((1, 4, 4, 2)); x[0, 1, 0, 1] = -3.0  # phase (dy, dx) = (1, 0)
    >>> int(ops.convert_to_numpy(choose_phase(x))[0])
    2
    """
    x = _accumulation_dtype(ops.convert_to_tensor(x))
    values = ops.square(x) if criterion == "l2" else ops.abs(x)
    shape = ops.shape(x)
    phases = int(np.prod(strides))
    split = [-1]  # the batch, whatever its size
    for axis, s in enumerate(strides, start=1):
        split += [shape[axis] // s, s]  # (B, n1/s1, s1, ..., nk/sk, sk)
    if x.shape[-1] is not None and x.shape[-1] < POSITIONS_FIRST_BELOW:
        channels = x.shape[-1]

        def reduce(v, fn):  # (B, *spatial, C) -> (B, P)
            v = ops.reshape(v, [*split[:-1], split[-1] * channels])  # (B, n1/s1, s1, ..., nk/sk, sk*C)
            for axis in range(2 * len(strides) - 1, 0, -2):  # the n/s axes, innermost first: outer-axis reductions
                v = fn(v, axis=axis)
            return fn(ops.reshape(v, (-1, phases, channels)), axis=-1)  # (B, s1, ..., sk*C) -> (B, P)

        norms = reduce(values, ops.sum)
        peaks = ops.maximum(reduce(x, ops.max), -reduce(x, ops.min))  # each phase's largest |value|
        return first_max_index(norms, peaks)
    norms = ops.sum(values, axis=-1)  # (B, *spatial): each pixel's norm over the channels
    peaks = ops.maximum(ops.max(x, axis=-1), -ops.min(x, axis=-1))  # (B, *spatial): its largest |value|
    within = tuple(range(1, 2 * len(strides), 2))  # the n/s axes: positions within a phase
    norms = ops.reshape(ops.sum(ops.reshape(norms, split), axis=within), (-1, phases))  # (B, n1/s1, s1, ...) -> (B, P)
    peaks = ops.reshape(ops.max(ops.reshape(peaks, split), axis=within), (-1, phases))  # phase p in phase_offsets order
    return first_max_index(norms, peaks)


def _accumulation_dtype(x):
    low = keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16")
    return ops.cast(x, "float32") if low else x


def shifted_pixels(x, phase_index, stride):
    """Pixels `(stride*i + dy, stride*j + dx)`, circularly, of each image: one gather.

    `x` is `(B, H, W, C)` with even `H`, `W`; `phase_index` `(B,)` holds
    `p = 2*dy + dx` per image. `stride=1` gives `x` rolled by `(-dy, -dx)`
    (shape `(B, H, W, C)`), `stride=2` phase `p` of `x` (shape
    `(B, H/2, W/2, C)`). Only the chosen pixels are read: no other phase is
    copied, and a NaN elsewhere cannot reach the output. A single `Gather`
    of `(B*H*W, C)` rows, which LiteRT and ONNX run as builtin ops.
    """
    return gather_phase(x, phase_index, (2, 2), subsample=stride == 2)


def rolled_by_phase(x, phase_index, strides=(2, 2)):
    """Each item of `x` rolled circularly forward by its phase's offsets: one gather.

    The inverse of `align_axes`'s roll (2-D: of `shifted_pixels(x, phase_index, 1)`),
    and the same as `ops.roll` by `(dy, dx)` on axes 1 and 2 (`tf.Roll` has no
    LiteRT builtin: docs/design.md, "Export and serving"), for `(B, H, W, C)`
    with even `H`, `W`; with `strides` of another rank, along each strided axis
    of `(B, *spatial, C)` (the up layers of every rank).

    Example:
    >>> x = np.arange(4.0).reshape(1, 2, 2, 1)
    >>> ops.convert_to_numpy(rolled_by_phase(x, np.array([1])))[0, :, :, 0]  # (dy, dx) = (0, 1)
    array([[1., 0.],
           [3., 2.]])
    """
    return gather_phase(x, phase_index, strides, subsample=False, sign=-1)


def gather_phase(x, phase_index, strides, subsample=True, sign=1):
    """Each item's pixels offset by `sign` times its phase's offsets, circularly: one gather.

    `x` is `(B, *spatial, C)`, even along every axis whose stride is 2;
    `phase_index` `(B,)` holds each item's phase, in `phase_offsets(strides)`
    order (2-D: `p = 2*dy + dx`). Along axis `a` (size `n`, stride `s`,
    offset `o`) item `b` keeps the entries `(s*i + sign*o) mod n` with
    `subsample`, shape `n / s` (its phase), or `(i + sign*o) mod n` without,
    shape `n` (a circular roll by `-sign*o`). Only those pixels are read: no
    other phase is copied, and a NaN elsewhere cannot reach the output. A
    single `Gather` of `(B*prod(spatial), C)` rows, which LiteRT and ONNX run
    as builtin ops; the same for 1-D, 2-D and 3-D maps.

    Example:
    >>> x = np.arange(6.0).reshape(1, 6, 1)
    >>> ops.convert_to_numpy(gather_phase(x, np.array([1]), (2,)))[0, :, 0]  # odd steps
    array([1., 3., 5.])
    """
    shape = ops.shape(x)  # Python ints where static, scalar tensors where not
    spatial = list(shape[1:-1])
    phase_index = ops.cast(phase_index, "int32")
    offsets = np.array(phase_offsets(strides), dtype="int32").T[:, :, None]  # (rank, P, 1)
    total = 1
    for n in spatial:
        total = total * n
    flat = ops.reshape(ops.arange(shape[0], dtype="int32") * total, (-1, *[1] * len(strides)))  # (B, 1, ..., 1)
    sizes = []
    for axis, (n, s) in enumerate(zip(spatial, strides)):
        step = s if subsample else 1
        pitch = 1
        for inner in spatial[axis + 1:]:
            pitch = pitch * inner  # row-major distance between neighbours along this axis
        table = _axis_table(n, step, sign * offsets[axis], pitch)  # (P, n/step)
        index = take_in_range(table, phase_index)  # (B, n/step): each item's entries along the axis
        sizes.append(n // step)
        flat = flat + ops.reshape(index, (-1, *[1] * axis, n // step, *[1] * (len(strides) - axis - 1)))
    pixels = ops.reshape(x, (-1, x.shape[-1]))  # (B*prod(spatial), C)
    out = take_in_range(pixels, ops.reshape(flat, (-1,)))  # (B*prod(sizes), C)
    return ops.reshape(out, (-1, *sizes, x.shape[-1]))  # (B, *sizes, C)


def phase_pad(x, strides, pad=0, mode="zeros", phase_index=None):
    """`(B, *spatial, C)`, strided axes even -> `(B, *(n + 2*s*pad), C)`: every phase padded by `pad`, in place.

    What a polyphase module's convolution reads: its `k x k` kernel over the
    phase maps, each padded by `pad = k // 2` with `mode`, is one `(s*k)`-wide
    kernel with stride `s` over this map (`polyphase_algebra.strided_kernel`).
    Along an axis of stride `s`, padded entry `s*i + q` (`i` counted from
    `-pad`) holds entry `i` of phase `q`'s padded map, i.e. input pixel
    `s*h(i) + q`, `h` that phase map's padding index (`_pad_indices`): for
    `"zeros"` and `"circular"` this is the map itself padded by `s*pad`; for
    `"reflect"` each phase reflects within itself. With `phase_index` `(B,)`,
    each item is first rolled by minus its phase's offsets (the alignment of
    `align_axes`).

    For a static map padded `"circular"` or `"reflect"` the roll and the
    padding are one gather from a constant index table (nothing else in an
    export). Otherwise the roll (one gather), then the padding (`ops.pad`, or
    one gather per axis).

    Example:
    >>> x = np.arange(6.0).reshape(1, 6, 1)  # phases [0, 2, 4] and [1, 3, 5]
    >>> ops.convert_to_numpy(phase_pad(x, (2,), pad=1, mode="reflect"))[0, :, 0]
    array([2., 3., 0., 1., 2., 3., 4., 5., 2., 3.])
    """
    spatial, channels = x.shape[1:-1], x.shape[-1]
    rows = 1 if phase_index is None else int(np.prod(strides))  # the table's rows: one per roll
    out = [None if n is None else n + 2 * s * pad for n, s in zip(spatial, strides)]
    static = all(n is not None for n in spatial)
    small = static and rows * int(np.prod(out)) <= PAD_TABLE_LIMIT
    if mode == "zeros" or pad == 0 or not small:
        if phase_index is not None:
            x = gather_phase(x, phase_index, strides, subsample=False)  # the roll
        if pad == 0:
            return x
        if mode == "zeros":
            return pad_axes(x, [(s * pad, s * pad) for s in strides], "zeros")
        shape = ops.shape(x)
        for axis, s in enumerate(strides, start=1):
            x = take_in_range(x, _phase_pad_indices(shape[axis], s, pad, mode), axis=axis)
        return x
    total = int(np.prod(spatial))
    table = _phase_pad_table(tuple(spatial), tuple(strides), pad, mode, phase_index is not None)  # (rows, prod(out))
    if phase_index is None:  # the same pixels for every item: a constant gather along the flattened map
        x = take_in_range(ops.reshape(x, (-1, total, channels)), table[0], axis=1)  # (B, prod(out), C)
    else:
        index = take_in_range(table, ops.cast(phase_index, "int32"))  # (B, prod(out)): each item's pixels
        index = index + ops.arange(ops.shape(x)[0], dtype="int32")[:, None] * total  # into the B*N pixels
        x = take_in_range(ops.reshape(x, (-1, channels)), ops.reshape(index, (-1,)))  # (B*prod(out), C)
    return ops.reshape(x, (-1, *out, channels))  # (B, *out, C)


def _phase_pad_indices(n, step, pad, mode):
    """`(n + 2*step*pad,)`: entry `step*i + q` is `step*h(i) + q`, `h` the phase map's padding (`_pad_indices`).

    Numpy where `n` is static.
    """
    half = _pad_indices(n // step, pad, pad, mode)  # (n/step + 2*pad,)
    xp = np if isinstance(half, np.ndarray) else ops
    return xp.reshape(step * half[:, None] + xp.arange(step, dtype="int32")[None, :], (-1,))  # (i, q) row-major


@functools.lru_cache(maxsize=64)
def _phase_pad_table(spatial, strides, pad, mode, aligned):
    """`phase_pad`'s index table, `(rows, prod(out))` int32, read-only; built once per shape.

    Row `r` (one row without alignment, one per phase with it) lists, in the
    output's row-major order, the flat input pixel of each entry: along each
    axis `(_phase_pad_indices(...) + o_r) mod n`, `o_r` row `r`'s roll.
    """
    rank = len(strides)
    rolls = phase_offsets(strides) if aligned else [(0,) * rank]
    table = 0
    for axis, (n, s) in enumerate(zip(spatial, strides)):
        entries = _phase_pad_indices(n, s, pad, mode)  # (n + 2*s*pad,)
        pitch = int(np.prod(spatial[axis + 1:]))  # row-major distance between neighbours along the axis
        per_roll = np.stack([np.mod(entries + roll[axis], n) * pitch for roll in rolls])  # (rows, out)
        table = table + per_roll.reshape(len(rolls), *[1] * axis, -1, *[1] * (rank - axis - 1))
    table = table.reshape(len(rolls), -1).astype("int32")  # (rows, *out) flattened
    table.setflags(write=False)
    return table


def _axis_table(n, step, offsets, pitch):
    """`(P, n/step)`: entry `(step*i + offsets[p]) mod n`, times `pitch`; numpy where `n` and `pitch` are static.

    A constant table leaves no index arithmetic to run (nor to export): only
    the per-item row lookup and the additions.
    """
    if isinstance(n, int) and isinstance(pitch, int):
        return np.mod(np.arange(n // step, dtype="int32") * step + offsets, n).astype("int32") * pitch
    steps = ops.arange(n // step, dtype="int32")[None, :] * step  # (1, n/step)
    return ops.mod(steps + ops.convert_to_tensor(offsets), n) * pitch


def take_in_range(x, indices, axis=0):
    """`ops.take(x, indices, axis)` for indices known to lie in `[0, x.shape[axis])`.

    On TensorFlow one `tf.gather`: Keras's `take` first maps negative indices
    (three more passes over the indices in TF, up to eight nodes in an ONNX
    export, and a constant index that is no longer one), which indices built
    in range never need. Other backends: `ops.take`.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # the backend in use: already imported by Keras

        return tf.gather(x, indices, axis=axis)
    return ops.take(x, indices, axis=axis)


def align_max_norm(x, phase_index=None):
    """Rolls each image by the (dy, dx) of its highest-L2-norm phase.

    `x` must have even height and width. With `phase_index` (shape `(B,)`,
    values `p = 2*dy + dx`) given, rolls by those phases instead of choosing.

    Returns:
        `(rolled, phase_index)`: `x` rolled circularly by `(-dy, -dx)`, so the
        chosen phase becomes phase 0, and the int32 phases of shape `(B,)`.
    """
    return align_axes(x, (2, 2), phase_index)  # the rank-generic alignment at strides (2, 2)


def _nan_lowest(values):
    """NaN -> -inf, so that a NaN ranks below every number (`x != x` only for NaN)."""
    return ops.where(values == values, values, float("-inf"))


def first_max_index(values, tie_break=None):
    """Index of the first maximum along the last axis, as int32.

    Equals `ops.argmax(values, axis=-1)` for values without NaN, but built only
    from max / compare / where / min, which every converter handles (the TF
    backend's float `argmax` goes through `bitcast`, which neither the LiteRT
    nor the ONNX converter supports). NaN ranks lowest (all NaN: index 0).
    With `tie_break` (same shape), exact ties of `values` go to the largest
    `tie_break`, and only then to the lowest index.
    """
    n = values.shape[-1]
    values = _nan_lowest(values)
    is_max = values >= ops.max(values, axis=-1, keepdims=True)
    if tie_break is not None:
        key = ops.where(is_max, _nan_lowest(tie_break), float("-inf"))
        is_max = ops.logical_and(is_max, key >= ops.max(key, axis=-1, keepdims=True))
    positions = ops.arange(n, dtype="float32")  # float: a float `where` exports as one op, an int one as six
    return ops.cast(ops.min(ops.where(is_max, positions, float(n)), axis=-1), "int32")


# Rank-generic helpers of the 1-D and 3-D layers (the 2-D layers keep the
# functions above). Spatial axes are 1..rank; `strides` has one entry, 1 or 2,
# per spatial axis.

SIGNAL_LAYOUTS = {1: "(batch, steps, channels)", 2: "(batch, height, width, channels)", 3: "(batch, depth, height, width, channels)"}


def check_signal_shape(layer_name, input_shape, rank):
    """Checks a channels-last `(rank + 2)`-D shape with a known channel count."""
    check_channels_last(layer_name)
    if len(input_shape) != rank + 2:
        raise ValueError(
            f"{layer_name} expects a {rank + 2}D input of shape {SIGNAL_LAYOUTS[rank]}. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    if input_shape[-1] is None:
        raise ValueError(
            f"{layer_name} needs a known number of input channels (last axis). "
            f"Received: input_shape={tuple(input_shape)}"
        )
    return int(input_shape[-1])


def check_strides(value, rank, allowed=(1, 2), name="strides"):
    """An int or a `rank`-tuple of ints in `allowed`, at least one of them > 1 -> tuple."""
    strides = (value,) * rank if isinstance(value, (int, np.integer)) else value
    valid = (
        isinstance(strides, (tuple, list))
        and len(strides) == rank
        and all(not isinstance(s, bool) and isinstance(s, (int, np.integer)) and s in allowed for s in strides)
        and max(strides) > 1
    )
    if not valid:
        raise ValueError(
            f"Argument `{name}` must be an int or a tuple of {rank} ints, each in "
            f"{list(allowed)[0]}..{list(allowed)[-1]}, at least one of them > 1. Received: {name}={value!r}"
        )
    return tuple(int(s) for s in strides)


def strided_output_shape(input_shape, strides, channels):
    """`(B, ceil(n_i / s_i) ..., channels)` for a channels-last shape."""
    out = [None if n is None else -(-n // s) for n, s in zip(input_shape[1:-1], strides)]
    return (input_shape[0], *out, channels)


def pad_axes(x, pads, mode):
    """Pads the spatial axes 1..len(pads) of a channels-last tensor.

    `pads` holds one `(before, after)` per spatial axis; modes as `pad_spatial`.
    """
    if all(before == after == 0 for before, after in pads):
        return x
    if mode == "zeros":
        return ops.pad(x, [[0, 0], *[list(p) for p in pads], [0, 0]])
    shape = ops.shape(x)
    for axis, (before, after) in enumerate(pads, start=1):
        if before or after:
            x = take_in_range(x, _pad_indices(shape[axis], before, after, mode), axis=axis)
    return x


def pad_to_even_axes(x, strides, mode):
    """Pads one entry at the end of each odd axis whose stride is 2."""
    static = x.shape[1:-1]
    if all(n is not None for n, s in zip(static, strides) if s == 2):
        return pad_axes(x, [(0, n % 2 if s == 2 else 0) for n, s in zip(static, strides)], mode)
    # Dynamic sizes: pad one and crop back to the even size.
    shape = ops.shape(x)
    crop = [slice(None)]
    for axis, s in enumerate(strides, start=1):
        crop.append(slice(None, shape[axis] + shape[axis] % 2) if s == 2 else slice(None))
    x = pad_axes(x, [(0, 1 if s == 2 else 0) for s in strides], mode)
    return x[tuple(crop)]


def phase_offsets(strides):
    """The offsets of the phases, in row-major order: phase `p` of strides (2, 2, 2) is `4*dt + 2*dy + dx`.

    Example:
    >>> phase_offsets((1, 2, 2))
    [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)]
    """
    return list(itertools.product(*[range(s) for s in strides]))


def phase_stack_axes(x, strides):
    """(B, *spatial, C) with even strided axes -> (B, *spatial / strides, P, C)."""
    parts = [
        x[(slice(None), *[slice(o, None, s) for o, s in zip(offset, strides)])]
        for offset in phase_offsets(strides)
    ]
    return ops.stack(parts, axis=-2)  # (B, *half, P, C)


def resolve_phase(x, strides, phase_index=None, criterion="l2"):
    """`phase_index` if given, else `choose_phase(x, strides, criterion)`: int32 `(B,)`, no gradient."""
    if phase_index is None:
        phase_index = choose_phase(x, strides, criterion)
    return ops.stop_gradient(ops.cast(phase_index, "int32"))


def align_axes(x, strides, phase_index=None):
    """Rolls each item of an even-sized `x` by minus the offsets of its max-norm phase.

    With `phase_index` given, rolls by those phases instead. Returns
    `(rolled, phase_index)`, the index int32 of shape `(B,)`.
    """
    phase_index = resolve_phase(x, strides, phase_index)
    return gather_phase(x, phase_index, strides, subsample=False), phase_index  # one gather, no rolled copies
