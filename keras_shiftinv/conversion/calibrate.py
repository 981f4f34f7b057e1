"""Data-aware conversion: fits the modules and re-estimates batch norm on real inputs.

`calibrate` walks the converted model's fitted modules (`PolyphaseDownsample`)
and `BatchNormalization` layers in the order the model runs them. For each it
runs the converted model (inference mode) on the calibration batches up to
that layer, so every step sees the outputs of the steps before it (earlier
sites' errors and re-estimated statistics included), and:

- a module: refits it so that it reproduces the original strided op on those
  activations. The target is the original op applied to the same (aligned)
  input the module reads, so a phase-choosing module is fitted on the grid
  it really samples. A max-pool site's target is the max-pool itself. First
  the 1x1 merge kernel (and merge bias) alone, by least squares on the
  module's mixed features (the white-noise merge is one candidate, so the
  error can only go down); then, where that leaves a relative error above
  `EXACT`, `ALS_ITERATIONS` rounds of alternating least squares
  (`refit_mixing`): the merge fixed, the mixing kernel that fits best (one
  linear system over all of `group`'s per-input-channel kernels, or over
  `conv3d`'s 3-D kernel, solved by `CG_STEPS` Jacobi-preconditioned
  conjugate-gradient steps from the current kernel, so the error never
  rises), then the mixing fixed, the best merge and merge bias again. The
  best iterate is kept only if its error is lower. The group module keeps
  its rank limit (`M` mixing columns per input channel), but those columns
  move to the directions the activations use.
- a batch-norm layer: sets `moving_mean` / `moving_variance` to the mean and
  the biased (population, divide by N) variance of its input over every
  calibration pixel (all images, rows and columns), accumulated in float64.

The least squares uses at most `SAMPLE_PIXELS` output pixels per site (drawn
once with a fixed seed), in float64 with a small ridge. The merge step's
system is the module's mixed width (`C*M` for `group`, `2*filters` for
`conv3d`). The alternating refit works on the normal equations of the
sampled pixels' `k x k x 4C` windows (`D = 4*k*k*C` unknowns per output,
accumulated batch by batch), so its cost is `pixels * D**2` once plus
`D**2 * filters` per conjugate-gradient step; windows wider than
`ALS_MAX_FEATURES` keep the merge-only refit.
"""

import keras
import numpy as np
from keras import ops

from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import pad_spatial
from keras_shiftinv.layers import pad_to_even
from keras_shiftinv.layers.polyphase_downsample import align_max_norm

SAMPLE_PIXELS = 20000
BATCH_SIZE = 128
RIDGE = 1e-8
ALS_ITERATIONS = 4  # rounds of mixing step + merge step
CG_STEPS = 30  # conjugate-gradient steps per mixing step
ALS_MAX_FEATURES = 4608  # the largest window (k*k*4*C) refitted beyond the merge
EXACT = 1e-5  # a merge-only error below this is left as it is


def calibration_batches(data, batch_size=BATCH_SIZE):
    """The calibration inputs as a list of float32 numpy batches `(B, H, W, C)`.

    Args:
        data: a numpy array of images, a `tf.data.Dataset` of images or of
            `(images, labels)` batches, or an iterable of such batches.
        batch_size: batch size used for a numpy array.
    """
    if isinstance(data, np.ndarray):
        if data.ndim != 4 or len(data) == 0:
            raise ValueError(
                "Argument `calibration_data` must hold images (B, H, W, C) with B >= 1. "
                f"Received: calibration_data with shape {data.shape}"
            )
        return [data[i : i + batch_size].astype("float32") for i in range(0, len(data), batch_size)]
    if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise TypeError(
            "Argument `calibration_data` must be a numpy array, a tf.data.Dataset or an "
            f"iterable of batches. Received: calibration_data={type(data).__name__}"
        )
    batches = []
    for batch in data:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]  # (images, labels[, weights]): the images only
        batch = np.asarray(ops.convert_to_numpy(batch), "float32")
        if batch.ndim == 3:
            batch = batch[None]  # one unbatched image
        batches.append(batch)
    if not batches:
        raise ValueError("Argument `calibration_data` is empty. Received: calibration_data with 0 batches")
    return batches


class _Captured(Exception):
    """Stops the forward pass once the layer of interest has read its inputs."""


def _capture(model, layer, batches):
    """The arguments `layer.call` receives on each batch: [(inputs, phase_index)]."""
    seen = []

    def spy(inputs, *args, **kwargs):
        phase = kwargs.get("phase_index", args[0] if args else None)
        seen.append((inputs, phase))
        raise _Captured()

    layer.call = spy
    try:
        for batch in batches:
            try:
                model(batch, training=False)
            except _Captured:
                pass
    finally:
        del layer.call  # the class's own method again
    return seen


def run_order(model, batch):
    """The modules and batch-norm layers of `model` in the order one forward pass calls them."""
    layers = [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, (PolyphaseDownsample, keras.layers.BatchNormalization))
    ]
    order = []
    for layer in layers:
        def spy(*args, _layer=layer, _call=layer.call, **kwargs):
            if _layer not in order:
                order.append(_layer)
            return _call(*args, **kwargs)

        layer.call = spy
    try:
        model(batch[:1], training=False)
    finally:
        for layer in layers:
            del layer.call
    return order


def reestimate_batch_norm(model, layer, batches):
    """Sets the layer's moving statistics to those of its calibration inputs (see module doc)."""
    axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
    total, squares, count = 0.0, 0.0, 0
    for inputs, _ in _capture(model, layer, batches):
        x = np.moveaxis(np.asarray(ops.convert_to_numpy(inputs), "float64"), axis, -1)
        x = x.reshape(-1, x.shape[-1])  # (pixels, channels)
        total = total + x.sum(axis=0)
        squares = squares + (x * x).sum(axis=0)
        count += x.shape[0]
    mean = total / count
    variance = np.maximum(squares / count - mean * mean, 0.0)
    layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
    layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))


def _aligned(module, inputs, phase):
    """The even-padded, aligned input the module's mixing reads."""
    x = pad_to_even(ops.convert_to_tensor(inputs, "float32"), module.padding)
    if module.align == "max_norm" or phase is not None:
        x, _ = align_max_norm(x, phase)
    return x


def _target(site, module, x):
    """The original strided op on the module's (aligned, even) input, `(B, H/2, W/2, F)`."""
    layer, kind = site.layer, site.kind
    (top, _), (left, _) = site.pads
    kh, kw = site.kernel
    h, w = x.shape[1] // 2, x.shape[2] // 2
    pads = ((top, max(kh - 1 - top, 0) + 1), (left, max(kw - 1 - left, 0) + 1))
    padded = pad_spatial(x, pads, module.padding)
    if kind == "conv":
        y = ops.conv(padded, layer.kernel, strides=2, padding="valid")
    elif kind == "depthwise":
        y = ops.depthwise_conv(padded, layer.kernel, strides=2, padding="valid")
    elif kind == "separable":  # the depthwise part; the pointwise conv follows the module
        y = ops.depthwise_conv(padded, layer.depthwise_kernel, strides=2, padding="valid")
    elif kind == "max_pool":
        y = ops.max_pool(padded, (kh, kw), strides=2, padding="valid")
    else:
        y = ops.average_pool(padded, (kh, kw), strides=2, padding="valid")
    y = y[:, :h, :w, :]
    if kind in ("conv", "depthwise") and layer.use_bias:
        y = y + layer.bias
    return y


def _features(module, x):
    """The module's mixed features (before the merge) of an aligned input, `(B, h, w, mixed)`."""
    return module.mix(x)


def _sample(rng, sizes):
    """Sorted flat indices of at most `SAMPLE_PIXELS` of `sum(sizes)` pixels, per batch."""
    total = sum(sizes)
    keep = np.arange(total) if total <= SAMPLE_PIXELS else np.sort(rng.choice(total, SAMPLE_PIXELS, replace=False))
    bounds = np.cumsum([0, *sizes])
    return [keep[(keep >= lo) & (keep < hi)] - lo for lo, hi in zip(bounds[:-1], bounds[1:])]


def fit_site(model, site, module, batches, rng, iterations=None):
    """Refits the module on calibration activations; returns (error before, after).

    First the merge alone (least squares on the mixed features); then, where
    that leaves an error above `EXACT`, `iterations` rounds of alternating
    least squares over the mixing kernel and the merge (`refit_mixing`).
    """
    iterations = ALS_ITERATIONS if iterations is None else iterations
    aligned, features, targets = [], [], []
    for inputs, phase in _capture(model, module, batches):
        x = _aligned(module, inputs, phase)
        aligned.append(x)
        features.append(np.asarray(ops.convert_to_numpy(_features(module, x)), "float64"))
        targets.append(np.asarray(ops.convert_to_numpy(_target(site, module, x)), "float64"))
    picks = _sample(rng, [z[..., 0].size for z in features])
    z = np.concatenate([f.reshape(-1, f.shape[-1])[i] for f, i in zip(features, picks)])  # (pixels, mixed)
    y = np.concatenate([t.reshape(-1, t.shape[-1])[i] for t, i in zip(targets, picks)])  # (pixels, F)
    if module.use_bias:
        z = np.concatenate([z, np.ones((len(z), 1))], axis=1)  # the merge bias as a last row
    merge = module.merge_kernel.numpy().astype("float64")
    if module.use_bias:
        merge = np.concatenate([merge, module.merge_bias.numpy()[None].astype("float64")])
    norm = np.linalg.norm(y)
    before = float(np.linalg.norm(z @ merge - y) / norm) if norm > 0 else 0.0
    gram = z.T @ z
    ridge = RIDGE * np.trace(gram) / len(gram) * np.eye(len(gram))
    solved = np.linalg.solve(gram + ridge, z.T @ y)
    after = float(np.linalg.norm(z @ solved - y) / norm) if norm > 0 else 0.0
    if after <= before:
        if module.use_bias:
            module.merge_bias.assign(solved[-1].astype(module.merge_bias.dtype))
            solved = solved[:-1]
        module.merge_kernel.assign(solved.astype(module.merge_kernel.dtype))
    after = min(before, after)
    size = module.kernel_size**2 * 4 * module.input_channels
    if iterations and after > EXACT and size <= ALS_MAX_FEATURES:
        p = module.kernel_size // 2
        stacks = [ops.convert_to_numpy(pad_spatial(ops.space_to_depth(x, 2), ((p, p), (p, p)), module.padding))
                  for x in aligned]  # (B, h + 2p, w + 2p, 4*C): the padded phase-major stack
        after = refit_mixing(module, normal_equations(stacks, targets, picks, module.kernel_size), iterations)
    return before, after


def normal_equations(stacks, targets, picks, k):
    """Float64 `(G, B, yy)` of the sampled pixels' patches `S~ = [S, 1]` and targets `Y`.

    `S` holds, per output pixel, the `k x k` window of the padded phase-major
    stack, flattened `(x, y, p*C + c)` as `fused_kernel`'s rows; the last
    column is the constant 1 (the biases). `G = S~^T S~`, `B = S~^T Y`,
    `yy = |Y|^2`: the error of any fused kernel follows from them.
    """
    gram = cross = None
    yy = 0.0
    offsets = np.arange(k)
    for stack, target, pick in zip(stacks, targets, picks):
        b, i, j = np.unravel_index(pick, target.shape[:3])
        rows = (i[:, None] + offsets)[:, :, None]  # (n, k, 1)
        cols = (j[:, None] + offsets)[:, None, :]  # (n, 1, k)
        patches = stack[b[:, None, None], rows, cols]  # (n, k, k, 4*C)
        s = np.asarray(patches, "float64").reshape(len(pick), -1)  # (n, D)
        s = np.concatenate([s, np.ones((len(s), 1))], axis=1)  # (n, D + 1)
        y = target.reshape(-1, target.shape[-1])[pick]  # (n, F)
        gram = s.T @ s if gram is None else gram + s.T @ s
        cross = s.T @ y if cross is None else cross + s.T @ y
        yy += float(np.sum(y * y))
    return gram, cross, yy


def _expand(module, mix):
    """The mixing kernel as a dense `(D, mixed)` matrix: features = patches @ it."""
    if module.mixing == "group":
        k, c = module.kernel_size, module.input_channels
        mix = mix.reshape(k, k, 4, c, -1)  # (x, y, p, c, m)
        dense = np.einsum("xypcm,cd->xypcdm", mix, np.eye(c))  # zero off the channel's own group
        return dense.reshape(k * k * 4 * c, -1)  # (D, C*M), column c*M + m
    three, k, _, c, f = mix.shape
    dense = np.zeros((k, k, 4, c, f, 2))
    for d in (0, 1):  # output depth d reads phases d..d+2 with slices j = p - d
        dense[:, :, d : d + 3, :, :, d] = np.transpose(mix, (1, 2, 0, 3, 4))  # (x, y, j, c, o)
    return dense.reshape(k * k * 4 * c, 2 * f)  # (D, 2F), column o*2 + d


def _collapse(module, dense, shape):
    """The adjoint of `_expand`: a `(D, mixed)` gradient back onto the mixing kernel's layout."""
    k, c = module.kernel_size, module.input_channels
    if module.mixing == "group":
        dense = dense.reshape(k, k, 4, c, c, -1)  # (x, y, p, c, c', m)
        return np.einsum("xypcdm,cd->xypcm", dense, np.eye(c)).reshape(shape)
    dense = dense.reshape(k, k, 4, c, -1, 2)  # (x, y, p, c, o, d)
    mix = sum(dense[:, :, d : d + 3, :, :, d] for d in (0, 1))  # (x, y, j, c, o)
    return np.transpose(mix, (2, 0, 1, 3, 4))  # (3, k, k, C, O)


def _augment(module, mix, mixing_bias):
    """`[[expand(mix), 0], [mixing_bias, 1]]`: fused kernel + bias = this @ [merge; merge_bias]."""
    dense = _expand(module, mix)
    last = mixing_bias[None]  # (1, mixed): the constant input through the mixing bias
    if module.use_bias:
        dense = np.concatenate([dense, np.zeros((len(dense), 1))], axis=1)
        last = np.concatenate([last, np.ones((1, 1))], axis=1)
    return np.concatenate([dense, last])


def _error(fused, gram, cross, yy):
    """Relative error `|S~ W - Y| / |Y|` from the normal equations."""
    if yy <= 0:
        return 0.0
    square = np.sum(fused * (gram @ fused)) - 2 * np.sum(fused * cross) + yy
    return float(np.sqrt(max(square, 0.0) / yy))


def _mixing_step(module, mix, mixing_bias, merge, gram, cross):
    """The merge fixed: the best mixing kernel, by preconditioned conjugate gradients from `mix`."""
    n = len(gram) - 1
    merge_kernel = merge[: len(mixing_bias)]  # (mixed, F), without the merge bias row
    offset = mixing_bias @ merge_kernel + (merge[-1] if module.use_bias else 0.0)  # (F,)
    g = gram[:n, :n]

    def apply(m):  # the normal operator L^T G L of mix -> fused kernel
        return _collapse(module, g @ (_expand(module, m) @ merge_kernel) @ merge_kernel.T, mix.shape)

    rhs = _collapse(module, (cross[:n] - gram[:n, n:] * offset) @ merge_kernel.T, mix.shape)
    diagonal = _collapse(module, np.outer(np.diag(g), np.sum(merge_kernel**2, axis=1)), mix.shape)
    ridge = RIDGE * max(float(np.mean(diagonal)), 1e-30)
    inverse = 1.0 / (diagonal + ridge)
    x = mix.copy()
    r = rhs - apply(x) - ridge * x
    z = inverse * r
    p = z.copy()
    rz = np.sum(r * z)
    for _ in range(CG_STEPS):
        if rz <= 1e-30 * max(np.sum(rhs * rhs), 1e-300):
            break
        q = apply(p) + ridge * p
        step = rz / np.sum(p * q)
        x, r = x + step * p, r - step * q
        z = inverse * r
        rz, previous = np.sum(r * z), rz
        p = z + (rz / previous) * p
    return x


def _merge_step(module, mix, mixing_bias, gram, cross):
    """The mixing fixed: the best merge (and merge bias) by normal equations."""
    dense = _augment(module, mix, mixing_bias)  # (D + 1, mixed [+ 1])
    normal = dense.T @ gram @ dense
    ridge = RIDGE * np.trace(normal) / len(normal) * np.eye(len(normal))
    return np.linalg.solve(normal + ridge, dense.T @ cross)


def refit_mixing(module, equations, iterations):
    """Alternating least squares over the mixing kernel and the merge; returns the error.

    Starts from the module's weights (the merge-only refit), alternates a
    mixing step (merge fixed) and a merge step (mixing fixed) on the sampled
    pixels' normal equations, and assigns the best iterate only if its error
    is lower than the start's. The mixing bias is kept.
    """
    gram, cross, yy = equations
    mix = module.mixing_kernel.numpy().astype("float64")
    mixed = module.merge_kernel.shape[0]
    mixing_bias = np.zeros(mixed)  # per mixed channel
    if module.use_bias:
        mixing_bias = module.mixing_bias.numpy().astype("float64")
        if module.mixing == "conv3d":
            mixing_bias = np.repeat(mixing_bias, 2)  # (F,) -> (2F,), channel o*2 + d
    merge = module.merge_kernel.numpy().astype("float64")
    if module.use_bias:
        merge = np.concatenate([merge, module.merge_bias.numpy()[None].astype("float64")])
    start = _error(_augment(module, mix, mixing_bias) @ merge, gram, cross, yy)
    best, previous = (start, None, None), start
    for _ in range(iterations):
        mix = _mixing_step(module, mix, mixing_bias, merge, gram, cross)
        merge = _merge_step(module, mix, mixing_bias, gram, cross)
        error = _error(_augment(module, mix, mixing_bias) @ merge, gram, cross, yy)
        if error < best[0]:
            best = (error, mix, merge)
        if previous - error < 1e-3 * previous:
            break  # no longer improving
        previous = error
    error, mix, merge = best
    if mix is not None:
        module.mixing_kernel.assign(mix.astype(module.mixing_kernel.dtype))
        if module.use_bias:
            module.merge_bias.assign(merge[-1].astype(module.merge_bias.dtype))
            merge = merge[:-1]
        module.merge_kernel.assign(merge.astype(module.merge_kernel.dtype))
    return error


def calibrate(model, sites, data, seed=0, iterations=None):
    """Fits every module of `sites` and re-estimates every batch norm, in run order.

    Args:
        model: the converted model (its weights are changed in place).
        sites: `{id(module): site}` of the fitted modules.
        data: calibration inputs (see `calibration_batches`), or its list of batches.
        seed: seed of the pixel sample.

    Returns:
        `{id(module): (error before, error after)}` on the calibration activations.
    """
    batches = data if isinstance(data, list) else calibration_batches(data)
    rng = np.random.default_rng(seed)
    errors = {}
    for layer in run_order(model, batches[0]):
        if isinstance(layer, keras.layers.BatchNormalization):
            reestimate_batch_norm(model, layer, batches)
        elif id(layer) in sites:
            errors[id(layer)] = fit_site(model, sites[id(layer)], layer, batches, rng, iterations)
    return errors
