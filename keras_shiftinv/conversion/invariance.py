"""Whether a model is exactly invariant to circular shifts: a check of its graph.

The check follows every tensor of the graph with one of these states:

- `("map", grid)`: a feature map that moves with a circular shift of the
  input, on the grid `grid` (the input's grid, or the grid an aligned site
  chose: `("aligned", site, grid before)`);
- `("pad", grid, (rows, cols))`: such a map padded circularly by `rows` /
  `cols` in all (a window of that reach, or a crop of that size, makes it
  a map again);
- `("phase", grid, site)`: the phase index an aligned site chose on `grid`;
- `("inv",)`: invariant (after global pooling, or not spatial);
- `("broken",)`: downstream of a layer that breaks the invariance.

A layer is allowed only where it provably commutes with circular shifts on
its grid: pointwise layers, merges of maps on one grid, stride-1 windows
over a circular pad of exactly their reach, a stride-1 `BlurPool2D` with
circular padding (the low-pass methods' blur), aligned sites (`AdaptivePolyphasePool2D`,
`PolyphaseDownsample(align="max_norm")`) on even maps, and the sites that
reuse their phase on the same grid. Anything else that sees a map (a
`"valid"` window that shrinks it, zero or reflect padding, a crop, a
flatten, an unaligned subsampling, an unknown layer or op) is named. The
check is exact in the direction that matters: when it finds nothing, every
output is a function of the input's circular orbit only (docs/conversion.md).
"""

import keras
from keras import tree

from keras_shiftinv.conversion import graph
from keras_shiftinv.layers import AdaptivePolyphasePool2D
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import SpatialPadding2D
from keras_shiftinv.layers import AdaptivePolyphasePoolND
from keras_shiftinv.layers import PolyphaseDownsampleND
from keras_shiftinv.layers import SpatialPaddingND

INV = ("inv",)
BROKEN = ("broken",)

POINTWISE = (
    keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU,
    keras.layers.Dropout, keras.layers.SpatialDropout2D, keras.layers.GaussianNoise,
    keras.layers.SpatialDropout1D, keras.layers.SpatialDropout3D,
    keras.layers.GaussianDropout, keras.layers.AlphaDropout, keras.layers.Rescaling,
    keras.layers.Identity, keras.layers.ActivityRegularization, keras.layers.Dense,
)
LAST_AXIS = (keras.layers.BatchNormalization, keras.layers.Normalization, keras.layers.Softmax)
MERGES = (
    keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average,
    keras.layers.Maximum, keras.layers.Minimum, keras.layers.Concatenate,
)
WINDOWS = (
    keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
    keras.layers.MaxPooling2D, keras.layers.AveragePooling2D,
    keras.layers.Conv1D, keras.layers.Conv3D, keras.layers.MaxPooling1D, keras.layers.AveragePooling1D,
    keras.layers.MaxPooling3D, keras.layers.AveragePooling3D,
)
GLOBAL_POOLS = (
    keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalAveragePooling1D, keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalAveragePooling3D, keras.layers.GlobalMaxPooling3D,
)
ZERO_PADDINGS = (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D)
CROPPINGS = (keras.layers.Cropping1D, keras.layers.Cropping2D, keras.layers.Cropping3D)
MAP_RANKS = (3, 4, 5)  # signals, images, volumes (channels last)
# Element-wise op-nodes (`x + 3.0`, `keras.ops.relu6(x)` in a functional graph).
ELEMENTWISE_OPS = {
    "Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum", "Power",
    "Negative", "Abs", "Absolute", "Exp", "Log", "Sqrt", "Square", "Reciprocal", "Sign", "Clip",
    "Cast", "Erf", "Tanh", "Sigmoid", "HardSigmoid", "Relu", "Relu6", "Silu", "HardSilu",
    "Gelu", "Elu", "Selu", "Softplus", "LeakyRelu",
}


def invariance_breaks(model):
    """The layers that keep a model from being exactly circular-shift invariant.

    Args:
        model: a functional or built Sequential `keras.Model`.

    Returns:
        A list of `"path (Class): reason"` lines, empty when every output is
        invariant to circular shifts of the inputs (of the static input size;
        with unknown sizes, of inputs whose sides are multiples of the total
        stride).

    Example:
    >>> inputs = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3, name="shrink")(inputs)
    >>> model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    >>> invariance_breaks(model)
    ["shrink (Conv2D): a stride-1 'valid' 3x3 window shrinks the map (8x8 -> 6x6)"]
    """
    network = graph.graph_of(model)
    states = {}
    for tensor in tree.flatten(network._inputs_struct):
        states[id(tensor)] = ("map", "input") if len(tensor.shape) in MAP_RANKS else INV
    breaks = []
    _run(network, states, "", breaks)
    for tensor in tree.flatten(network._outputs_struct):
        if states[id(tensor)][0] in ("map", "pad", "phase"):
            name = tensor._keras_history.operation.name
            breaks.append(
                f"{name} (output): a feature map moves with the shift; pool it globally for invariance"
            )
    return breaks


def _run(network, states, prefix, breaks):
    for node in graph.ordered_nodes(network):
        op = node.operation
        inputs = [states.get(id(t), BROKEN) for t in node.input_tensors]
        nested = graph.graph_of(op)
        if nested is not None and all(state != BROKEN for state in inputs):
            inner = {}
            for tensor, state in zip(tree.flatten(nested._inputs_struct), inputs):
                inner[id(tensor)] = state
            _run(nested, inner, f"{prefix}{op.name}/", breaks)
            outputs = [inner.get(id(t), BROKEN) for t in tree.flatten(nested._outputs_struct)]
        elif any(state == BROKEN for state in inputs):
            outputs = [BROKEN] * len(node.outputs)
        elif all(state == INV for state in inputs):
            outputs = [INV] * len(node.outputs)
        else:
            outputs, reason = _visit(node, inputs)
            if reason is not None:
                breaks.append(f"{prefix}{op.name} ({type(op).__name__}): {reason}")
                outputs = [BROKEN] * len(node.outputs)
        for tensor, state in zip(node.outputs, outputs):
            states[id(tensor)] = state


def _visit(node, inputs):
    """`(output states, None)`, or `(None, reason)` where the layer breaks invariance."""
    op = node.operation
    name = type(op).__name__
    spatial = [state for state in inputs if state != INV]
    state = spatial[0]
    if any(s[0] == "phase" for s in spatial) and not _is_aligned(op):
        return None, "reads a phase index"
    last = len(node.input_tensors[0].shape) - 1  # the channel axis
    if isinstance(op, (AdaptivePolyphasePool2D, PolyphaseDownsample, AdaptivePolyphasePoolND, PolyphaseDownsampleND)):
        return _aligned(node, inputs)
    if isinstance(op, POINTWISE) or (isinstance(op, LAST_AXIS) and _last_axis(op, last)):
        return [state], None
    if isinstance(op, keras.layers.PReLU):
        shared = set(op.shared_axes or ())
        return ([state], None) if set(range(1, last)) <= shared else (None, "per-position weights")
    if isinstance(op, MERGES) or name in ELEMENTWISE_OPS:
        if isinstance(op, keras.layers.Concatenate) and op.axis not in (-1, last):
            return None, f"concatenates along axis {op.axis}"
        if len(set(spatial)) > 1:
            return None, "merges maps on different grids (sites that choose their phases apart)"
        return [state] * len(node.outputs), None
    if isinstance(op, GLOBAL_POOLS):
        if state[0] != "map" or op.data_format != "channels_last":
            return None, "pools a padded map"
        return [INV], None
    if isinstance(op, (SpatialPadding2D, SpatialPaddingND)):
        if op.mode != "circular":
            return None, f"{op.mode} padding"
        return [_padded(state, op.padding)], None
    if isinstance(op, ZERO_PADDINGS):
        return None, "zero padding"
    if isinstance(op, CROPPINGS):
        cropping = (op.cropping,) if isinstance(op, keras.layers.Cropping1D) else op.cropping
        if state[0] == "pad" and state[2] == tuple(a + b for a, b in cropping):
            return [("map", state[1])], None  # a circular pad cropped back: a roll
        return None, "crops the map"
    if isinstance(op, WINDOWS):
        return _window(node, state)
    if isinstance(op, BlurPool2D) and op.stride == 1 and state[0] == "map":
        if op.padding == "circular" or op.filt_size == 1:  # a circular convolution (or the identity)
            return [state], None
        return None, f"{op.padding} padding inside the blur"
    if isinstance(op, (keras.layers.Flatten, keras.layers.Reshape)):
        return None, "reshapes a feature map"
    return None, f"not known to commute with circular shifts ({name} on a feature map)"


def _last_axis(layer, last=3):
    axis = getattr(layer, "axis", -1)
    axis = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    return axis in ([-1], [last])


def _padded(state, pads):
    """`pads`: one `(before, after)` per spatial axis; the state keeps the total per axis."""
    totals = tuple(before + after for before, after in pads)
    if state[0] == "pad":
        return ("pad", state[1], tuple(t + u for t, u in zip(state[2], totals)))
    return ("pad", state[1], totals)


def _window(node, state):
    op = node.operation
    strides = graph.strides_of(op)
    kernel = graph.kernel_of(op)
    rate = tuple(getattr(op, "dilation_rate", None) or (1,) * len(kernel))
    reach = tuple((k - 1) * d for k, d in zip(kernel, rate))
    size = "x".join(str(k) for k in kernel)
    if getattr(op, "data_format", "channels_last") != "channels_last":
        return None, "channels_first"
    if max(strides) > 1:
        return None, f"subsamples at a fixed phase (strides {strides}; not an aligned site)"
    if state[0] == "pad":
        if state[2] == reach and op.padding == "valid":
            return [("map", state[1])], None
        return None, f"a circular pad of {state[2]} does not match the {size} window's reach {reach}"
    if not any(reach):
        return [state], None
    if op.padding == "same":
        return None, f"'same' zero padding of a {size} window"
    before = "x".join(str(n) for n in node.input_tensors[0].shape[1:-1])
    after = "x".join(str(n) for n in node.outputs[0].shape[1:-1])
    return None, f"a stride-1 'valid' {size} window shrinks the map ({before} -> {after})"


def _is_aligned(op):
    if isinstance(op, (AdaptivePolyphasePool2D, AdaptivePolyphasePoolND)):
        return True
    return isinstance(op, (PolyphaseDownsample, PolyphaseDownsampleND)) and op.align is not None


def _aligned(node, inputs):
    """An aligned site: a new grid, chosen here or reused from its chooser."""
    op = node.operation
    if not _is_aligned(op):
        return None, "mixes the four phases at a fixed grid (not aligned)"
    state = inputs[0]
    if state[0] != "map":
        return None, "aligns a padded map"
    if isinstance(op, (PolyphaseDownsample, PolyphaseDownsampleND)) and op.kernel_size > 1 and op.padding != "circular":
        return None, f"{op.padding} padding inside the module"
    sizes = node.input_tensors[0].shape[1:-1]
    strides = getattr(op, "strides", (2,) * len(sizes))  # the 2-D layers: (2, 2)
    if any(n is not None and n % 2 and s == 2 for n, s in zip(sizes, strides)):
        return None, f"an odd map ({'x'.join(map(str, sizes))}): the phase choice is not shift-consistent"
    grid = state[1]
    if len(inputs) > 1:  # `phase_index=` from a chooser
        phase = inputs[1]
        if phase[0] != "phase" or phase[1] != grid:
            return None, "reuses a phase chosen on another grid"
        return [("map", ("aligned", phase[2], grid))] + [phase] * (len(node.outputs) - 1), None
    chosen = ("aligned", id(node), grid)
    outputs = [("map", chosen)]
    if len(node.outputs) > 1:
        outputs.append(("phase", grid, id(node)))
    return outputs, None
