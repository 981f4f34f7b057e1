"""Least-squares fits of `PolyphaseDownsample` to a strided convolution.

A stride-2 convolution is one convolution over the four polyphase components
(phase-major `4*C` channels) at half resolution: tap `t` of the kernel, which
reads input row `2*i + t - top`, becomes the tap `a = floor((t - top) / 2)` of
phase `dy = (t - top) mod 2` on the half grid. The module's folded kernel
(`PolyphaseDownsample.fused_kernel`) is fitted to that target: per input
channel a truncated SVD for `mixing="group"`, alternating least squares for
`mixing="conv3d"` (docs/design.md, 'Converting models').
"""

import numpy as np


def half_grid_target(kernel, top, left):
    """The strided conv as a `(K, K, 4, C, F)` kernel on the half grid.

    Args:
        kernel: `(kh, kw, C, F)` numpy kernel of a stride-2 convolution.
        top: rows of padding before the input (`x` row `2*i + t - top`).
        left: columns of padding before the input.

    Returns:
        `(target, K)`: `target[a, b, p, c, o]` with `p = 2*dy + dx`, the
        weight of input `x[2*(i+a-K//2) + dy, 2*(j+b-K//2) + dx, c]` in output
        `(i, j, o)`; `K` is the smallest odd size that holds every tap.

    Example:
    >>> target, size = half_grid_target(np.ones((1, 1, 2, 3)), 0, 0)
    >>> size, target[0, 0, :, 0, 0].tolist()
    (1, [1.0, 0.0, 0.0, 0.0])
    """
    kh, kw = kernel.shape[:2]
    rows = [divmod(t - top, 2) for t in range(kh)]  # (a, dy) per tap
    cols = [divmod(t - left, 2) for t in range(kw)]
    reach = max(abs(a) for a, _ in rows + cols)
    size = 2 * reach + 1
    target = np.zeros((size, size, 4) + kernel.shape[2:], "float64")
    for ty, (a, dy) in enumerate(rows):
        for tx, (b, dx) in enumerate(cols):
            target[a + reach, b + reach, 2 * dy + dx] += kernel[ty, tx]
    return target, size


def crop_target(target, size):
    """Centres a `(K, K, ...)` half-grid target on `size x size` taps (pads or drops)."""
    reach, keep = target.shape[0] // 2, size // 2
    out = np.zeros((size, size) + target.shape[2:], target.dtype)
    shared = min(reach, keep)
    out[keep - shared : keep + shared + 1, keep - shared : keep + shared + 1] = target[
        reach - shared : reach + shared + 1, reach - shared : reach + shared + 1
    ]
    return out


def relative_error(fitted, target):
    norm = np.linalg.norm(target)
    return float(np.linalg.norm(fitted - target) / norm) if norm > 0 else 0.0


def fit_group(target, mixing_kernel):
    """Per input channel, the best rank-`M` factorisation of the target.

    Args:
        target: `(K, K, 4, C, F)` half-grid kernel.
        mixing_kernel: the module's initial `(K, K, 4, C*M)` mixing kernel;
            its columns beyond the target's rank are kept (their merge rows are
            zero), so they still learn when fine-tuned.

    Returns:
        `(mixing_kernel, merge_kernel, relative_error)`.
    """
    size, _, _, channels, filters = target.shape
    mix = np.array(mixing_kernel, "float64").reshape(size, size, 4, channels, -1)
    per_group = mix.shape[-1]  # M
    merge = np.zeros((channels, per_group, filters))
    per_channel = np.moveaxis(target, 3, 0).reshape(channels, -1, filters)  # (C, K*K*4, F)
    u, s, vt = np.linalg.svd(per_channel, full_matrices=False)
    rank = min(per_group, s.shape[-1])
    root = np.sqrt(s[:, :rank])  # (C, rank)
    left = u[:, :, :rank] * root[:, None, :]  # (C, K*K*4, rank)
    mix[..., :rank] = np.moveaxis(left.reshape(channels, size, size, 4, rank), 0, 3)
    merge[:, :rank] = root[:, :, None] * vt[:, :rank]
    fused = np.einsum("xypcm,cmo->xypco", mix, merge)
    return (
        mix.reshape(size, size, 4, channels * per_group),  # (K, K, 4, C*M), channel c*M+m
        merge.reshape(channels * per_group, filters),
        relative_error(fused, target),
    )


def _conv3d_fused(mix, a0, a1):
    """(3, n, F) phase slices and (F, F) merges -> (4, n, F): T_p = X_p A0 + X_{p-1} A1."""
    zero = np.zeros_like(mix[0])
    padded = np.concatenate([zero[None], mix, zero[None]])  # index j + 1
    return np.stack([padded[p + 1] @ a0 + padded[p] @ a1 for p in range(4)])


def fit_conv3d(target, iterations=None, ridge=1e-9):
    """Alternating least squares for the 3D-conv module.

    The fused kernel of phase `p` is `X_p A0 + X_{p-1} A1` (`X_j`: slice `j`
    of the 3D kernel, `A_d`: the merge rows of output depth `d`). Starting
    from `A0 = I, A1 = 0` (exact when the target's phase 3 is zero, as for
    every 1x1 strided conv), it alternates the two linear least-squares
    problems and keeps the best iterate.

    Returns:
        `(mixing_kernel (3, K, K, C, F), merge_kernel (2F, F), relative_error)`.
    """
    size, _, _, channels, filters = target.shape
    if iterations is None:  # each iteration solves (3F x 3F) systems: bound the time
        iterations = 30 if filters <= 256 else 8 if filters <= 512 else 3
    phases = np.moveaxis(target, 2, 0).reshape(4, -1, filters)  # (p, K*K*C, F)
    a0, a1 = np.eye(filters), np.zeros((filters, filters))
    mix = phases[:3].copy()
    # With A0 = I, A1 = 0 the fit misses exactly phase 3 (no products needed).
    total = np.linalg.norm(phases)
    best = (float(np.linalg.norm(phases[3]) / total) if total > 0 else 0.0, mix, a0, a1)
    if best[0] <= 1e-12:
        iterations = 0
    eye3 = ridge * np.eye(3 * filters) if iterations else None
    eye2 = ridge * np.eye(2 * filters) if iterations else None
    previous = best[0]
    for _ in range(iterations):
        # Mix step: [X0 X1 X2] @ B = [T0 T1 T2 T3].
        b = np.zeros((3 * filters, 4 * filters))
        for j in range(3):
            b[j * filters : (j + 1) * filters, j * filters : (j + 1) * filters] = a0
            b[j * filters : (j + 1) * filters, (j + 1) * filters : (j + 2) * filters] = a1
        rhs = np.concatenate(list(phases), axis=1)  # (n, 4F)
        solved = np.linalg.solve(b @ b.T + eye3, b @ rhs.T).T  # (n, 3F)
        mix = np.stack(np.split(solved, 3, axis=1))  # (3, n, F)
        # Merge step: T_p = [X_p, X_{p-1}] @ [A0; A1].
        zero = np.zeros_like(mix[0])
        padded = [zero, *mix, zero]
        design = np.concatenate(
            [np.concatenate([padded[p + 1], padded[p]], axis=1) for p in range(4)]
        )  # (4n, 2F)
        stacked = phases.reshape(-1, filters)  # (4n, F)
        merge = np.linalg.solve(design.T @ design + eye2, design.T @ stacked)
        a0, a1 = merge[:filters], merge[filters:]
        error = relative_error(_conv3d_fused(mix, a0, a1), phases)
        if error < best[0]:
            best = (error, mix, a0, a1)
        if error < 1e-9 or previous - error < 1e-3 * previous:
            break  # converged, or no longer improving
        previous = error
    error, mix, a0, a1 = best
    mixing = mix.reshape(3, size, size, channels, filters)
    merge = np.stack([a0, a1], axis=1).reshape(2 * filters, filters)  # row o*2 + d
    return mixing, merge, error


def fit_depthwise(target, mixing, mixing_kernel=None):
    """Fits a per-channel (depthwise) target `(K, K, 4, C, D)` channel by channel.

    Output channels `c*D .. c*D + D-1` read only input channel `c` (a
    depthwise conv with multiplier `D`, or a pool with `D = 1`); the fit keeps
    that block structure, which makes it exact for `group` and cheap for
    `conv3d`. Returns kernels in the module's full layouts and the error.
    """
    size, _, _, channels, depth = target.shape
    filters = channels * depth
    norms, errors = [], []
    if mixing == "group":
        mix = np.array(mixing_kernel, "float64").reshape(size, size, 4, channels, -1)
        merge = np.zeros((channels, mix.shape[-1], filters))  # (c, m, o)
        for c in range(channels):
            block_mix, block_merge, error = fit_group(target[:, :, :, c : c + 1], mix[..., c, :])
            mix[..., c, :] = block_mix.reshape(size, size, 4, -1)
            merge[c, :, c * depth : (c + 1) * depth] = block_merge
            norms.append(np.linalg.norm(target[:, :, :, c]))
            errors.append(error)
        mixing_kernel = mix.reshape(size, size, 4, -1)
        merge_kernel = merge.reshape(-1, filters)
    else:
        mixing_kernel = np.zeros((3, size, size, channels, filters))
        merge = np.zeros((filters, 2, filters))  # (o, d, q)
        for c in range(channels):
            block = slice(c * depth, (c + 1) * depth)
            block_mix, block_merge, error = fit_conv3d(target[:, :, :, c : c + 1])
            mixing_kernel[:, :, :, c, block] = block_mix[:, :, :, 0]
            merge[block, :, block] = block_merge.reshape(depth, 2, depth)
            norms.append(np.linalg.norm(target[:, :, :, c]))
            errors.append(error)
        merge_kernel = merge.reshape(2 * filters, filters)  # row o*2 + d
    norms, errors = np.array(norms), np.array(errors)
    total = np.linalg.norm(norms)
    error = float(np.linalg.norm(norms * errors) / total) if total > 0 else 0.0
    return mixing_kernel, merge_kernel, error
