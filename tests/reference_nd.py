"""Independent numpy implementations of the 1-D and 3-D layers.

Written from docs/design.md, "The module" and "Other ranks": loops over
offsets and kernel taps in float64, no Keras.
"""

import itertools
import math

import numpy as np

NP_MODES = {"zeros": "constant", "reflect": "reflect", "circular": "wrap"}


def pad(x, pads, mode):
    """pads: one (before, after) per spatial axis of a channels-last array."""
    return np.pad(x, ((0, 0), *pads, (0, 0)), mode=NP_MODES[mode])


def offsets(strides):
    """Row-major phase offsets: phase p of (2, 2, 2) is 4*dz + 2*dy + dx."""
    return list(itertools.product(*[range(s) for s in strides]))


def pad_even(x, strides, mode):
    return pad(x, [(0, n % 2 if s == 2 else 0) for n, s in zip(x.shape[1:-1], strides)], mode)


def phase(x, offset, strides):
    return x[(slice(None), *[slice(o, None, s) for o, s in zip(offset, strides)])]


def max_norm_phase(item, strides, criterion="l2"):
    """The phase of largest norm of one even-sized item (no batch axis); ties: peak, then index."""
    def rank(p):
        part = item[tuple(slice(o, None, s) for o, s in zip(offsets(strides)[p], strides))].astype("float64")
        norm = np.sum(part**2) if criterion == "l2" else np.sum(np.abs(part))
        peak = np.max(np.abs(part))
        return (-np.inf if np.isnan(norm) else norm, -np.inf if np.isnan(peak) else peak, -p)

    return max(range(len(offsets(strides))), key=rank)


def roll_to_phase(x, phases, strides):
    axes = tuple(range(len(strides)))
    return np.stack([np.roll(item, tuple(-o for o in offsets(strides)[p]), axis=axes) for item, p in zip(x, phases)])


def aps(x, strides, mode="zeros", criterion="l2", phases=None):
    x = pad_even(x.astype("float64"), strides, mode)
    if phases is None:
        phases = [max_norm_phase(item, strides, criterion) for item in x]
    return np.stack([phase(x[b : b + 1], offsets(strides)[p], strides)[0] for b, p in enumerate(phases)]), np.array(phases)


def conv_valid(x, w):
    """Cross-correlation, stride 1, no padding, any rank. w: (*taps, Cin, Cout)."""
    taps = w.shape[:-2]
    out_size = [n - k + 1 for n, k in zip(x.shape[1:-1], taps)]
    out = np.zeros((x.shape[0], *out_size, w.shape[-1]))
    for tap in itertools.product(*[range(k) for k in taps]):
        window = x[(slice(None), *[slice(t, t + n) for t, n in zip(tap, out_size)])]
        out += window @ w[tap]
    return out


def polyphase_downsample(x, weights, strides, padding, align=None, use_bias=False, phases=None):
    """weights: [mixing_kernel (*k, P, width), merge_kernel (width, F)] (+ biases).

    Channel-major split (channel c*P + p), a grouped conv with C groups of P
    input channels each, 'same' padding in `padding`, then the 1x1 merge.
    """
    x = pad_even(x.astype("float64"), strides, padding)
    if phases is None and align == "max_norm":
        phases = [max_norm_phase(item, strides) for item in x]
    if phases is not None:
        x = roll_to_phase(x, phases, strides)
    parts = [phase(x, o, strides) for o in offsets(strides)]
    c, n_phases = x.shape[-1], len(parts)
    split = np.stack(parts, axis=-1).reshape(*parts[0].shape[:-1], c * n_phases)  # channel c*P + p
    mix_k, merge_k = weights[0], weights[1]
    k = mix_k.shape[0]
    split = pad(split, [(k // 2, k // 2)] * len(strides), padding)
    per = mix_k.shape[-1] // c
    y = np.concatenate(
        [conv_valid(split[..., g * n_phases : (g + 1) * n_phases], mix_k[..., g * per : (g + 1) * per]) for g in range(c)],
        axis=-1,
    )
    if use_bias:
        y = y + weights[2]
    y = y @ merge_k
    return y + weights[3] if use_bias else y


def blur_pool(x, filt_size, strides, padding):
    """Separable binomial blur along the axes with stride > 1, then subsampling."""
    taps = np.array([math.comb(filt_size - 1, i) for i in range(filt_size)], "float64")
    taps /= taps.sum()
    x = x.astype("float64")
    for axis, s in enumerate(strides, start=1):
        if s == 1:
            continue
        pads = [(0, 0)] * len(strides)
        pads[axis - 1] = ((filt_size - 1) // 2, filt_size // 2)
        xp = pad(x, pads, padding)
        n = x.shape[axis]
        out = 0
        for i, t in enumerate(taps):
            out = out + t * np.take(xp, np.arange(i, i + n), axis=axis)
        x = np.take(out, np.arange(0, n, s), axis=axis)
    return x


def polyphase_upsample(y, strides, mode, kernel=None, bias=None, padding="zeros", phases=None):
    """Up by `strides`: output phase p (offsets o) at `[o_1::s_1, ...]`, then a forward roll by its phase.

    mode "place": the input is phase 0, zeros elsewhere. mode "learned": a "same" conv of `kernel`
    (*k, C, P*F), output channel p*F + f is phase p, channel f; `bias` (F,) added everywhere.
    """
    y = y.astype("float64")
    n_phases = len(offsets(strides))
    if mode == "place":
        parts = [y] + [np.zeros_like(y)] * (n_phases - 1)
    else:
        k = kernel.shape[0]
        z = conv_valid(pad(y, [(k // 2, k // 2)] * len(strides), padding), kernel.astype("float64"))
        f = z.shape[-1] // n_phases
        parts = [z[..., p * f : (p + 1) * f] for p in range(n_phases)]
    out = np.zeros((y.shape[0], *[n * s for n, s in zip(y.shape[1:-1], strides)], parts[0].shape[-1]))
    for p, o in enumerate(offsets(strides)):
        out[(slice(None), *[slice(oi, None, s) for oi, s in zip(o, strides)])] = parts[p]
    if bias is not None:
        out = out + bias
    if phases is None:
        return out
    axes = tuple(range(len(strides)))
    return np.stack([np.roll(item, offsets(strides)[p], axis=axes) for item, p in zip(out, phases)])
