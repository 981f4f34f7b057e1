"""Independent numpy implementations of the layers.

Written from docs/design.md, "The module" and "Methods and sites".
"""

import math

import numpy as np

NP_MODES = {"zeros": "constant", "reflect": "reflect", "circular": "wrap"}
PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


def pad(x, top, bottom, left, right, mode):
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), mode=NP_MODES[mode])


def pad_even(x, mode):
    return pad(x, 0, x.shape[1] % 2, 0, x.shape[2] % 2, mode)


def split_channel_major(x, mode="zeros"):
    """Channel c*4 + p holds x[:, dy::2, dx::2, c], p = 2*dy + dx."""
    x = pad_even(x, mode)
    b, h, w, c = x.shape
    out = np.zeros((b, h // 2, w // 2, 4 * c), x.dtype)
    for p, (dy, dx) in enumerate(PHASES):
        for ch in range(c):
            out[..., ch * 4 + p] = x[:, dy::2, dx::2, ch]
    return out


def conv2d_valid(x, w):
    """Plain cross-correlation, stride 1, no padding. w: (kh, kw, Cin, Cout)."""
    kh, kw = w.shape[:2]
    b, h, wd, _ = x.shape
    out = np.zeros((b, h - kh + 1, wd - kw + 1, w.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("bhwc,co->bhwo", x[:, i : i + out.shape[1], j : j + out.shape[2]], w[i, j])
    return out


def grouped_conv_same(x, kernel, groups, mode):
    """Conv2D(groups=groups) with 'same' padding in `mode`. kernel: (k, k, Cin/groups, F)."""
    k = kernel.shape[0]
    x = pad(x, k // 2, k // 2, k // 2, k // 2, mode)
    cin, f = x.shape[-1] // groups, kernel.shape[-1]
    per = f // groups
    outs = [
        conv2d_valid(x[..., g * cin : (g + 1) * cin], kernel[..., g * per : (g + 1) * per])
        for g in range(groups)
    ]
    return np.concatenate(outs, axis=-1)


def conv3d_phase(stack5, kernel, mode):
    """stack5: (B, 4, h, w, C); kernel (3, k, k, C, O); valid on D, 'same' on h, w."""
    k = kernel.shape[1]
    out = []
    for d in range(stack5.shape[1] - 2):
        acc = 0
        for j in range(3):
            acc = acc + conv2d_valid(pad(stack5[:, d + j], k // 2, k // 2, k // 2, k // 2, mode), kernel[j])
        out.append(acc)
    return np.stack(out, axis=1)  # (B, 2, h, w, O)


def max_norm_phases(x):
    """Per (even-sized) image, the phase 2*dy + dx of highest L2 norm.

    Ties go to the largest |value|, then to the lowest index; NaN ranks lowest
    (docs/design.md, "The module").
    """
    def rank(img, p):
        dy, dx = PHASES[p]
        phase = img[dy::2, dx::2].astype("float64")
        norm, peak = np.sum(phase**2), np.max(np.abs(phase))
        return (-np.inf if np.isnan(norm) else norm, -np.inf if np.isnan(peak) else peak, -p)

    return np.array([max(range(4), key=lambda p: rank(img, p)) for img in x])


def roll_phases(x, phases):
    """Rolls image b by (-dy, -dx) of its phase phases[b], p = 2*dy + dx."""
    return np.stack([np.roll(img, (-(p // 2), -(p % 2)), axis=(0, 1)) for img, p in zip(x, phases)])


def align_max_norm(x):
    """Rolls each (even-sized) image so its highest-L2 phase comes first."""
    return roll_phases(x, max_norm_phases(x))


def group_width(c, f, mixing_width="lcm"):
    """The grouped conv's width: lcm(c, f), or the smallest multiple of c that is >= f."""
    return math.lcm(c, f) if mixing_width == "lcm" else c * math.ceil(f / c)


def polyphase_downsample(
    x, weights, mixing, padding, align=None, use_bias=False, phases=None, mixing_width="lcm"
):
    """weights: [mixing_kernel, merge_kernel] (+ [mixing_bias, merge_bias]).

    `phases` (one per image) rolls by the given phases instead of choosing them.
    """
    x = pad_even(x.astype("float64"), padding)
    if phases is not None:
        x = roll_phases(x, phases)
    elif align == "max_norm":
        x = align_max_norm(x)
    mix_k, merge_k = weights[0], weights[1]
    mix_b, merge_b = (weights[2], weights[3]) if use_bias else (0.0, 0.0)
    cm = split_channel_major(x, padding)
    b, h, w, c4 = cm.shape
    c = c4 // 4
    if mixing == "group":
        assert mix_k.shape[-1] == group_width(c, merge_k.shape[-1], mixing_width)
        y = grouped_conv_same(cm, mix_k, c, padding) + mix_b
    else:
        stack5 = cm.reshape(b, h, w, c, 4).transpose(0, 4, 1, 2, 3)  # (B, 4, h, w, C)
        y = conv3d_phase(stack5, mix_k, padding) + mix_b  # (B, 2, h, w, O)
        y = y.transpose(0, 2, 3, 4, 1).reshape(b, h, w, -1)  # channel o*2 + d
    return y @ merge_k + merge_b


def binomial(n):
    row = np.array([math.comb(n - 1, i) for i in range(n)], "float64")
    f = np.outer(row, row)
    return f / f.sum()


def blur_pool(x, filt_size, stride, padding):
    filt = binomial(filt_size)
    lo, hi = (filt_size - 1) // 2, filt_size // 2
    xp = pad(x.astype("float64"), lo, hi, lo, hi, padding)
    b, h, w, c = xp.shape
    out = np.zeros((b, h - filt_size + 1, w - filt_size + 1, c))
    for i in range(filt_size):
        for j in range(filt_size):
            out += filt[i, j] * xp[:, i : i + out.shape[1], j : j + out.shape[2]]
    return out[:, ::stride, ::stride]


def polyphase_upsample(y, phases, mode, kernel=None, bias=None, padding="zeros"):
    """PolyphaseUpsample2D from its definition (issue 10): phases, interleave, roll by +(dy, dx).

    mode "place": y is phase 0, zeros elsewhere. mode "learned": a 'same' conv of y to
    4*F channels, phase-major (channel p*F + f). `phases` None: no roll.
    """
    y = y.astype("float64")
    if mode == "place":
        b, h, w, f = y.shape
        parts = [y] + [np.zeros_like(y)] * 3
    else:
        k = kernel.shape[0]
        mixed = conv2d_valid(pad(y, k // 2, k // 2, k // 2, k // 2, padding), kernel)
        b, h, w, f4 = mixed.shape
        f = f4 // 4
        parts = [mixed[..., p * f : (p + 1) * f] for p in range(4)]
    out = np.zeros((b, 2 * h, 2 * w, f))
    for p, (dy, dx) in enumerate(PHASES):
        out[:, dy::2, dx::2] = parts[p]
    if bias is not None:
        out = out + bias
    if phases is None:
        return out
    return np.stack([np.roll(img, (p // 2, p % 2), axis=(0, 1)) for img, p in zip(out, phases)])
