"""Least-squares fits of `PolyphaseDownsample` to a strided convolution.

A stride-2 convolution is one convolution over the four polyphase components
(phase-major `4*C` channels) at half resolution: tap `t` of the kernel, which
reads input row `2*i + t - top`, becomes the tap `a = floor((t - top) / 2)` of
phase `dy = (t - top) mod 2` on the half grid. The module's folded kernel
(`PolyphaseDownsample.fused_kernel`) is fitted to that target: per input
channel a truncated SVD for `mixing="group"`, alternating least squares for
`mixing="conv3d"` (docs/design.md, 'Converting models').
"""

import itertools

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


# Any rank and per-axis strides (1-D, 3-D, (1, 2) in 2-D): the rank-generic modules, group mixing.


def module_kernel_size(kernel, befores, strides):
    """The smallest odd module kernel that holds every tap of a strided op, on the reduced grid.

    Tap `t` of an axis with stride `s` and `before` pads reads reduced-grid
    offset `floor((t - before) / s)`.

    Example:
    >>> module_kernel_size((3, 3), (1, 1), (2, 2)), module_kernel_size((5,), (2,), (2,)), module_kernel_size((3, 3), (1, 1), (1, 2))
    (3, 3, 3)
    """
    reach = max(abs((t - b) // s) for k, b, s in zip(kernel, befores, strides) for t in range(k))
    return 2 * reach + 1


def half_grid_target_nd(kernel, befores, strides):
    """A strided op's `(*k, C, F)` kernel as a `(K,)*rank + (P, C, F)` kernel on the reduced grid.

    Phase `p` is row-major over the per-axis offsets `d = (t - before) mod s`
    (as `phase_offsets`); `K = module_kernel_size(...)`.

    Example:
    >>> target = half_grid_target_nd(np.arange(1.0, 4.0).reshape(3, 1, 1), [1], [2])
    >>> target.shape, target[:, :, 0, 0].tolist()  # taps -1, 0, +1 -> (a, d) = (-1, 1), (0, 0), (0, 1)
    ((3, 2, 1, 1), [[0.0, 1.0], [2.0, 3.0], [0.0, 0.0]])
    """
    rank = len(strides)
    size = module_kernel_size(kernel.shape[:rank], befores, strides)
    reach = size // 2
    phases = int(np.prod(strides))
    target = np.zeros((size,) * rank + (phases,) + kernel.shape[rank:], "float64")
    for tap in itertools.product(*[range(k) for k in kernel.shape[:rank]]):
        parts = [divmod(t - b, s) for t, b, s in zip(tap, befores, strides)]
        p = int(np.ravel_multi_index([d for _, d in parts], strides))
        target[tuple(a + reach for a, _ in parts) + (p,)] += kernel[tap]
    return target


def crop_target_nd(target, size, rank):
    """Centres the first `rank` axes of a target on `size` taps each (pads or drops)."""
    reach, keep = target.shape[0] // 2, size // 2
    shared = min(reach, keep)
    out = np.zeros((size,) * rank + target.shape[rank:], target.dtype)
    out[(slice(keep - shared, keep + shared + 1),) * rank] = target[(slice(reach - shared, reach + shared + 1),) * rank]
    return out


def fit_group_nd(target, mixing_kernel, size, per_channel=False):
    """Per input channel, the best rank-`M` factorisation of a `(K,)*rank + (P, C, F)` target.

    The module's mixing kernel `(size,)*rank + (P, C*M)` (column `c*M + m`)
    and merge `(C*M, filters)`: `filters = F`, or with `per_channel` (a
    depthwise conv or pool, output `c*F + f` reads only channel `c`) `C*F`.
    Columns beyond the target's rank keep their initial values (their merge
    rows are zero). Returns `(mixing_kernel, merge_kernel, relative_error)`,
    the error including the taps the `size` crop drops.
    """
    rank = target.ndim - 3
    kept = crop_target_nd(target, size, rank)
    phases, channels, depth = kept.shape[-3:]
    taps = size**rank
    mix = np.array(mixing_kernel, "float64").reshape(taps, phases, channels, -1)  # (T, P, C, M)
    per_group = mix.shape[-1]
    per = np.moveaxis(kept.reshape(taps, phases, channels, depth), 2, 0).reshape(channels, taps * phases, depth)
    u, s, vt = np.linalg.svd(per, full_matrices=False)
    r = min(per_group, s.shape[-1])
    root = np.sqrt(s[:, :r])  # (C, r)
    left = u[:, :, :r] * root[:, None, :]  # (C, T*P, r)
    mix[..., :r] = np.moveaxis(left.reshape(channels, taps, phases, r), 0, 2)  # (T, P, C, r)
    block = root[:, :, None] * vt[:, :r]  # (C, r, F)
    merge = np.zeros((channels, per_group, channels * depth if per_channel else depth))
    for c in range(channels):
        columns = slice(c * depth, (c + 1) * depth) if per_channel else slice(None)
        merge[c, :r, columns] = block[c]
    lost = np.sum(target**2) - np.sum(kept**2) + np.sum(s[:, r:] ** 2)
    total = np.linalg.norm(target)
    error = float(np.sqrt(max(lost, 0.0)) / total) if total > 0 else 0.0
    return mix.reshape(np.shape(mixing_kernel)), merge.reshape(channels * per_group, -1), error
