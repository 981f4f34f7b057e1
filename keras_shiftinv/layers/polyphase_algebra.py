"""The algebra of `PolyphaseDownsample` as pure functions of tensors and kernels.

The layer holds the weights and picks a path; everything it computes is here:
the two mixings (`group_mix`, `conv3d_mix`), their fold with the 1x1 merge
into one dense kernel (`fused_kernel`), that kernel as the kernel of one
strided convolution over the map (`strided_kernel`), the group width
(`group_width`) and the multiply-count rule that picks the cheaper exact path
(`fusing_pays`, with its constants named below). Kernels are written over the
phase-major stack, input channel `p*C + c` (`ops.space_to_depth(x, 2)`); the
convolutions run on the map itself with every phase padded in place
(`_utils.phase_pad`), stride 2, which reads the same pixels with no split;
docs/design.md, "The module", says what the module computes.
"""

import contextlib
import math

import numpy as np
from keras import ops

MIXINGS = ("group", "conv3d")
MIXING_WIDTHS = ("lcm", "min")
ALIGNS = (None, "max_norm")
# The paper's lcm width is refused above this many times max(C_in, filters).
MAX_WIDTH_FACTOR = 4

# The cost rule (`fusing_pays`), in dense-convolution multiplies, calibrated on CPU.
# Each of the grouped path's `4 * width` intermediate values per pixel costs this many
# multiplies. Calibrated (round 4) when the depthwise conv wrote one value per phase and a sum
# followed; since round 8 the strided depthwise conv writes `width`, so the rule overcounts the
# factored path. Left unchanged, not recalibrated: with it `group` trains at 0.98x of `stride` and
# its export path mix is the fastest or within 0.03x (docs/guide-speed.md, "Round 8").
INTERMEDIATE_VALUE_COST = 32
# In training the folded kernel is composed in the forward pass and in two gradients.
TRAINING_COMPOSE_PASSES = 3
# At inference, the grouped path's multiplies cost this many dense-conv multiplies (TF on CPU,
# measured per module: docs/guide-speed.md, "Inference").
INFERENCE_GROUP_WEIGHT = 6
# At inference with the batch unknown when traced (batch None: Keras, SavedModel), the path is
# decided for this many images, once, at trace time: a decision left to run time puts an `If`
# (`ops.cond`) in the graph, which cost far more than any wrong guess (ResNet-18 group, 224x224,
# batch 8: 1.62x -> 1.14x of stride; docs/guide-speed.md, "Round 4: path choice at inference").
INFERENCE_BATCH = 8

# How `fusing_pays` chooses at inference: "count" (the cost rule above), or one path for every
# site: "fused" (one folded kernel) or "factored" (mixing, then merge). Set while tracing by
# `inference_path`; either path computes the same function.
INFERENCE_PATHS = ("count", "fused", "factored")
_inference_path = ["count"]


@contextlib.contextmanager
def inference_path(path):
    """Within the block, layers traced at inference take `path` (one of `INFERENCE_PATHS`).

    The choice is made when a graph is traced (static batch) or baked into it
    (dynamic batch), so wrap the tracing: an export, a `tf.function`'s first
    call. Training calls keep the cost rule.

    Example:
    >>> with inference_path("factored"):
    ...     fusing_pays("group", 10**6, 3, 16, 32, 32)
    False
    """
    if path not in INFERENCE_PATHS:
        raise ValueError(f"Invalid value for argument `path`. Expected one of {list(INFERENCE_PATHS)}. "
                         f"Received: path={path!r}")
    _inference_path.append(path)
    try:
        yield
    finally:
        _inference_path.pop()


def current_inference_path():
    """The inference path in force: `"count"`, or the innermost `inference_path(...)`'s."""
    return _inference_path[-1]


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


def fusing_pays(mixing, pixels, kernel_size, channels, filters, mixed, training=False, folded=False):
    """Whether one folded kernel is cheaper than the factored path for `pixels` output pixels.

    A cost model in multiplies: folding costs `compose` once per call
    (`TRAINING_COMPOSE_PASSES` times in training) and saves `unfused - fused`
    per output pixel; the grouped path also pays `INTERMEDIATE_VALUE_COST` per
    intermediate value, and at inference its multiplies weigh
    `INFERENCE_GROUP_WEIGHT` dense-conv multiplies. `pixels` may be a tensor
    (dynamic batch); then so is the answer, unless no batch size changes it
    (a Python bool then). `mixed` is the grouped width (ignored for
    `"conv3d"`). `folded`: the fused kernel is a constant folded before
    tracing (`folded_kernels`), so folding costs nothing per call. Inside
    `inference_path("fused")` / `("factored")` the inference answer is that
    path. Either path computes the same function.

    Example:
    >>> fusing_pays("group", 8 * 16 * 16, 3, 16, 32, 32), fusing_pays("group", 8 * 16 * 16, 3, 16, 32, 32, training=True)
    (True, False)
    """
    if not training and current_inference_path() != "count":
        return current_inference_path() == "fused"
    k, c, f = kernel_size, channels, filters
    fused = 4 * c * f * k * k
    passes = TRAINING_COMPOSE_PASSES if training else 0 if folded else 1
    if mixing == "group":
        unfused = 4 * mixed * k * k + mixed * f + INTERMEDIATE_VALUE_COST * 4 * mixed
        compose = 4 * k * k * mixed * f
        if not training:
            unfused = INFERENCE_GROUP_WEIGHT * unfused
    else:
        unfused = 6 * c * f * k * k + 2 * f * f  # 2 phase windows x 3 phases, then the merge
        compose = 6 * k * k * c * f * f
    if unfused <= fused:
        return False  # no batch pays for the fold: decided without the batch size
    return pixels * (unfused - fused) >= passes * compose


def strided_kernel(kernel, strides):
    """A kernel over the phase-major stack as the kernel of one strided convolution over the map.

    `kernel` is `(k,)*rank + (P*C, F)`, input channel `p*C + c` with phase `p`
    row-major over `strides` (`_utils.phase_offsets`); returns
    `(k*s_0, ..., k*s_{rank-1}, C, F)`: tap `i` of phase offset `q` along an
    axis of stride `s` moves to tap `s*i + q`. On a map padded by
    `_utils.phase_pad`, a "valid" convolution with stride `strides` and this
    kernel is the `k x k` convolution of the padded phase maps (the same
    multiplies, in another order). Numpy in, numpy out.

    Example:
    >>> kernel = np.arange(4.0).reshape(1, 4, 1)  # k = 1, phases 0..3 of one channel (1-D, stride 4)
    >>> strided_kernel(kernel, (4,))[:, 0, 0]
    array([0., 1., 2., 3.])
    """
    rank = len(strides)
    taps, (stacked, f) = tuple(kernel.shape[:rank]), tuple(kernel.shape[rank:])
    c = stacked // math.prod(strides)
    xp = np if isinstance(kernel, np.ndarray) else ops
    kernel = xp.reshape(kernel, (*taps, *strides, c, f))  # (k..., s..., C, F): channel p*C + c, p row-major
    order = [i for axis in range(rank) for i in (axis, rank + axis)] + [2 * rank, 2 * rank + 1]
    kernel = xp.transpose(kernel, order)  # (k_0, s_0, k_1, s_1, ..., C, F)
    return xp.reshape(kernel, (*[t * s for t, s in zip(taps, strides)], c, f))  # (k*s..., C, F)


def group_mix(x, kernel, bias, strides=(2, 2)):
    """The grouped convolution alone, on the map with every phase padded (`_utils.phase_pad`).

    A grouped conv with `groups=C` over the channel-major phases `c*4+p` is a
    depthwise conv of the map with a `(2k, 2k)` kernel and stride 2
    (`strided_kernel`). `kernel` has the layout of `Conv2D(groups=C)`,
    `(k, k, 4, C*M)`; `bias` is `(C*M,)` or None. `x` is
    `(B, H + 2k - 2, W + 2k - 2, C)`; returns `(B, H/2, W/2, C*M)`, channel `c*M + m`.
    """
    k, phases, mixed = kernel.shape[0], kernel.shape[-2], kernel.shape[-1]
    c = x.shape[-1]
    kernel = ops.cast(kernel, x.dtype)  # (k, k, 4, C*M)
    kernel = ops.reshape(kernel, (k, k, phases * c, mixed // c))  # (k, k, 4*C, M): channel p*C + c
    y = ops.depthwise_conv(x, strided_kernel(kernel, strides), strides=strides, padding="valid")  # (B, h, w, C*M)
    if bias is not None:
        y = y + ops.cast(bias, y.dtype)
    return y


def conv3d_mix(x, kernel, bias):
    """The 3D convolution alone, on the map with every phase padded (`_utils.phase_pad`).

    `kernel` has the layout of `Conv3D`, `(3, k, k, C, O)`; `bias` is `(O,)`
    or None. With no padding on the phase axis it has two outputs, d=0 from
    phases 0..2 and d=1 from phases 1..3, computed as one 2D convolution of
    the padded phase stack (`space_to_depth` of `x`) over a doubled batch (a
    strided convolution of the map would carry the phase each window skips
    as zero taps: a third more multiplies). Returns `(B, H/2, W/2, 2*O)`,
    channel `o*2 + d`.
    """
    k, c, f = kernel.shape[1], kernel.shape[-2], kernel.shape[-1]
    x = ops.space_to_depth(x, 2)  # (B, h + k - 1, w + k - 1, 4*C): the padded phase stack, channel p*C + c
    kernel = ops.cast(kernel, x.dtype)  # (3, k, k, C, O)
    kernel = ops.transpose(kernel, (1, 2, 0, 3, 4))  # (k, k, 3, C, O)
    kernel = ops.reshape(kernel, (k, k, 3 * c, f))  # input channel j*C + c
    windows = ops.concatenate([x[..., : 3 * c], x[..., c:]], axis=0)  # (2B, h', w', 3*C)
    y = ops.conv(windows, kernel, padding="valid")  # (2B, h, w, O)
    _, h, w, _ = ops.shape(y)
    if bias is not None:
        y = y + ops.cast(bias, y.dtype)
    y = ops.reshape(y, (2, -1, h, w, f))  # (d, B, h, w, O)
    y = ops.transpose(y, (1, 2, 3, 4, 0))  # (B, h, w, O, d)
    return ops.reshape(y, (-1, h, w, 2 * f))  # channel o*2 + d


def fused_kernel(mixing, mixing_kernel, merge_kernel, channels, mixing_bias=None, merge_bias=None, dtype="float32"):
    """The mixing and the 1x1 merge folded into one dense kernel, `(k, k, 4*C, filters)` in 2-D.

    Nothing nonlinear stands between the two, so the module is one linear map
    of the phase-major input. Kernels in the layer's layouts (`"group"`:
    `(k, k, 4, width)`, or `(k,)*rank + (P, width)` for `P` phases at any rank;
    `"conv3d"`: `(3, k, k, C, filters)`; merge `(mixed, filters)`);
    `channels` is `C`. Returns `(kernel, bias)`, the kernel
    `(k,)*rank + (P*C, filters)` (input channel `p*C + c`), bias None without
    biases (give both or neither). Composing costs
    `O(k^2 * C * mixed * filters)` multiplies per call, which large batches
    amortise.

    Example:
    >>> mix = np.ones((1, 1, 4, 2), "float32")  # C = 2 groups of width 1
    >>> kernel, bias = fused_kernel("group", mix, np.array([[1.0], [10.0]], "float32"), channels=2)
    >>> ops.convert_to_numpy(kernel)[0, 0, :, 0]  # input channel p*C + c weighs merge[c]
    array([ 1., 10.,  1., 10.,  1., 10.,  1., 10.], dtype=float32)
    """
    f = merge_kernel.shape[-1]
    mix = ops.cast(mixing_kernel, dtype)
    merge = ops.cast(merge_kernel, dtype)
    use_bias = mixing_bias is not None
    if mixing == "group":
        spatial, phases = tuple(mixing_kernel.shape[:-2]), mixing_kernel.shape[-2]
        mix = ops.reshape(mix, (math.prod(spatial), phases, channels, -1))  # (taps, p, c, m)
        merge3 = ops.reshape(merge, (channels, -1, f))  # (c, m, o): group c owns rows c*M..c*M+M-1
        kernel = ops.einsum("tpcm,cmo->tpco", mix, merge3)
        bias = None
        if use_bias:
            bias = ops.matmul(ops.cast(mixing_bias, dtype), merge)  # (C*M,) @ (C*M, O)
    else:
        spatial, phases = tuple(mixing_kernel.shape[1:3]), 4
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
        if use_bias:
            bias = ops.einsum("o,odq->q", ops.cast(mixing_bias, dtype), merge)
    kernel = ops.reshape(kernel, (*spatial, phases * channels, f))  # input channel p*C + c
    if use_bias:
        bias = bias + ops.cast(merge_bias, dtype)
    return kernel, bias
