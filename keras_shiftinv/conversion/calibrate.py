"""Data-aware conversion: fits the modules and re-estimates batch norm on real inputs.

`calibrate` walks the converted model's fitted modules (`PolyphaseDownsample`)
and `BatchNormalization` layers in the order the model runs them. For each it
runs the converted model (inference mode) on the calibration batches up to
that layer, so every step sees the outputs of the steps before it (earlier
sites' errors and re-estimated statistics included), and:

- a module: keeps its mixing kernel (the white-noise fit) and refits its 1x1
  merge kernel (and merge bias) by least squares so that the module
  reproduces the original strided op on those activations. The target is
  the original op applied to the same (aligned) input the module reads, so a
  phase-choosing module is fitted on the grid it really samples. A max-pool
  site's target is the max-pool itself. The merge is the best one for the
  module's mixing on the calibration activations, so the calibration error
  is at most the white-noise fit's on the same activations.
- a batch-norm layer: sets `moving_mean` / `moving_variance` to the mean and
  the biased (population, divide by N) variance of its input over every
  calibration pixel (all images, rows and columns), accumulated in float64.

The least squares uses at most `SAMPLE_PIXELS` output pixels per site (drawn
once with a fixed seed), solved by normal equations in float64 with a tiny
ridge; its size is the module's mixed width (`C*M` for `group`, `2*filters`
for `conv3d`), so it is cheap even at ResNet-50 widths.
"""

import keras
import numpy as np
from keras import ops

from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers._utils import pad_spatial
from keras_shiftinv.layers._utils import pad_to_even
from keras_shiftinv.layers.polyphase_downsample import align_max_norm

SAMPLE_PIXELS = 20000
BATCH_SIZE = 32
RIDGE = 1e-8


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
    stack = ops.space_to_depth(x, 2)  # (B, h, w, 4*C), phase-major
    return module.group_mix(stack) if module.mixing == "group" else module.conv3d_mix(stack)


def fit_site(model, site, module, batches, rng):
    """Refits the module's merge on calibration activations; returns (error before, after)."""
    features, targets = [], []
    for inputs, phase in _capture(model, module, batches):
        x = _aligned(module, inputs, phase)
        z = np.asarray(ops.convert_to_numpy(_features(module, x)), "float64")
        y = np.asarray(ops.convert_to_numpy(_target(site, module, x)), "float64")
        features.append(z.reshape(-1, z.shape[-1]))  # (pixels, mixed)
        targets.append(y.reshape(-1, y.shape[-1]))  # (pixels, F)
    z, y = np.concatenate(features), np.concatenate(targets)
    if len(z) > SAMPLE_PIXELS:
        keep = rng.choice(len(z), SAMPLE_PIXELS, replace=False)
        z, y = z[keep], y[keep]
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
    return before, min(before, after)


def calibrate(model, sites, data, seed=0):
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
            errors[id(layer)] = fit_site(model, sites[id(layer)], layer, batches, rng)
    return errors
