"""Shift-invariance and accuracy metrics (docs/design.md, "Metrics").

Every function takes a Keras model of any backend (images -> logits, or
probabilities with `from_logits=False`) and the *uncropped* square images
(side `S`, e.g. 256 for ImageNet, 40 for the zero-padded Fashion-MNIST) with
their labels: a tuple `(images, labels)` of numpy arrays (no TensorFlow
needed), or an iterable of such batches such as a `tf.data` dataset
(`_inputs.batches`). The function crops them itself. Results are plain
Python floats; randomness comes from `seed` alone.
"""

import numpy as np
from tqdm.auto import tqdm

from keras_shiftinv.metrics._inputs import batches
from keras_shiftinv.metrics._inputs import check_crop
from keras_shiftinv.metrics._inputs import crop
from keras_shiftinv.metrics._inputs import predict_probabilities
from keras_shiftinv.metrics.worst_case import worst_case_accuracy

IMAGENET_PROTOCOL = {"crop_size": 224, "max_shift": 32, "positions": 64, "passes": 5}
FASHION_MNIST_PROTOCOL = {"crop_size": 32, "max_shift": 4, "positions": 16, "passes": 5}


def _batches(dataset, progress=None):
    yield from tqdm(batches(dataset), desc=progress, disable=progress is None, leave=False)


def consistency(model, dataset, crop_size=224, passes=5, seed=0, from_logits=True, progress=None):
    """Zhang's classification consistency, in percent.

    For every batch and pass, two offsets are drawn uniformly in
    `[0, S - crop_size]^2`; both crops are classified and the share of equal
    argmax labels is counted.
    """
    rng = np.random.default_rng(seed)
    agree = total = 0
    for images, _ in _batches(dataset, progress):
        side = check_crop(images, crop_size)
        for _ in range(passes):
            (t1, l1), (t2, l2) = rng.integers(0, side - crop_size + 1, size=(2, 2))
            a = predict_probabilities(model, crop(images, t1, l1, crop_size), from_logits).argmax(-1)
            b = predict_probabilities(model, crop(images, t2, l2, crop_size), from_logits).argmax(-1)
            agree += int(np.sum(a == b))
            total += len(a)
    return 100.0 * agree / total


def circular_consistency(model, dataset, crop_size=224, max_shift=32, passes=1, seed=0,
                         from_logits=True, progress=None):
    """APS's circular consistency, in percent.

    The center crop is rolled circularly by two offsets drawn uniformly in
    `[-max_shift, max_shift)^2` per batch and pass; equal argmax is counted.
    """
    if not 0 <= max_shift <= crop_size:
        raise ValueError(
            f"`max_shift` must be between 0 and crop_size={crop_size}. Received: max_shift={max_shift}"
        )
    rng = np.random.default_rng(seed)
    agree = total = 0
    for images, _ in _batches(dataset, progress):
        side = check_crop(images, crop_size)
        start = (side - crop_size) // 2
        crops = crop(images, start, start, crop_size)
        for _ in range(passes):
            s1, s2 = rng.integers(-max_shift, max_shift, size=(2, 2)) if max_shift else np.zeros((2, 2), int)
            a = predict_probabilities(model, np.roll(crops, tuple(s1), axis=(1, 2)), from_logits).argmax(-1)
            b = predict_probabilities(model, np.roll(crops, tuple(s2), axis=(1, 2)), from_logits).argmax(-1)
            agree += int(np.sum(a == b))
            total += len(a)
    return 100.0 * agree / total


def shift_offsets(positions):
    """(top, left) of the stability protocol: right, down, right, down, ..."""
    return [(k // 2, (k + 1) // 2) for k in range(positions)]


def stability_curves(model, dataset, crop_size=224, positions=64, max_images=None, from_logits=True,
                     progress=None):
    """True-class probability along alternating one-pixel shifts (paper Fig. 9/10).

    From the crop at the top-left corner, the crop moves one pixel right, then
    one down, alternately, `positions` crops in all.

    Returns:
        dict with `curves` (N, positions) array, `labels` (N,), per-image
        `std` and `range` (max - min) arrays, and their means `mean_std`,
        `mean_range`.
    """
    offsets = shift_offsets(positions)
    curves, labels = [], []
    seen = 0
    for images, y in _batches(dataset, progress):
        side = check_crop(images, crop_size)
        need = max(max(o) for o in offsets)
        if side - crop_size < need:
            raise ValueError(
                f"{positions} positions need images at least crop_size + {need} = {crop_size + need} "
                f"pixels wide. Received: image size {side}, crop_size={crop_size}"
            )
        if max_images is not None:
            images, y = images[: max_images - seen], y[: max_images - seen]
        batch = np.stack([crop(images, t, l, crop_size) for t, l in offsets], axis=1)
        flat = batch.reshape((-1,) + batch.shape[2:])  # (N * positions, s, s, C)
        probs = predict_probabilities(model, flat, from_logits).reshape(len(images), positions, -1)
        curves.append(probs[np.arange(len(images)), :, y])
        labels.append(y)
        seen += len(images)
        if max_images is not None and seen >= max_images:
            break
    curves = np.concatenate(curves)
    std = curves.std(axis=1)
    spread = curves.max(axis=1) - curves.min(axis=1)
    return {
        "curves": curves,
        "labels": np.concatenate(labels),
        "std": std,
        "range": spread,
        "mean_std": float(std.mean()),
        "mean_range": float(spread.mean()),
    }


def mean_absolute_change(model, dataset, crop_size=224, from_logits=True, progress=None):
    """Mean |p(y0|x) - p(y0|x shifted by one pixel)|, y0 the unshifted prediction.

    `x` is the center crop; the shifted crops are one pixel to the right and
    one pixel down, and both count.
    """
    changes = []
    for images, _ in _batches(dataset, progress):
        side = check_crop(images, crop_size)
        if side < crop_size + 1:
            raise ValueError(
                f"A one-pixel shift needs images larger than the crop. Received: image size {side}, "
                f"crop_size={crop_size}"
            )
        start = (side - crop_size - 1) // 2
        base = predict_probabilities(model, crop(images, start, start, crop_size), from_logits)
        y0 = base.argmax(-1)
        rows = np.arange(len(images))
        for dt, dl in ((0, 1), (1, 0)):
            shifted = predict_probabilities(model, crop(images, start + dt, start + dl, crop_size), from_logits)
            changes.append(np.abs(base[rows, y0] - shifted[rows, y0]))
    return float(np.concatenate(changes).mean())


def top_k_accuracy(model, dataset, crop_size=224, k=(1, 5), from_logits=True, progress=None):
    """Top-k accuracies in percent on the center crops: `{1: ..., 5: ...}`."""
    hits = {kk: 0 for kk in k}
    total = 0
    for images, y in _batches(dataset, progress):
        side = check_crop(images, crop_size)
        start = (side - crop_size) // 2
        probs = predict_probabilities(model, crop(images, start, start, crop_size), from_logits)
        ranked = np.argsort(-probs, axis=-1, kind="stable")
        for kk in k:
            hits[kk] += int(np.sum(np.any(ranked[:, :kk] == y[:, None], axis=-1)))
        total += len(y)
    return {kk: 100.0 * hits[kk] / total for kk in k}


def evaluate_all(model, dataset, protocol, seed=0, stability_images=None, from_logits=True, progress=True):
    """Every metric of a protocol (`IMAGENET_PROTOCOL`, `FASHION_MNIST_PROTOCOL`).

    The stability curves and the worst-case accuracies (every crop offset;
    every fractional offset of a 1/4-pixel grid) use the first
    `stability_images` images; the other metrics all of them. The half-pixel
    metrics (`subpixel`) shift circularly by `protocol["max_shift"] + 1/2`
    at most, `protocol["passes"]` times.
    """
    from keras_shiftinv.metrics import subpixel  # it imports this module's helpers

    s = protocol["crop_size"]
    label = (lambda name: name) if progress else (lambda name: None)
    acc = top_k_accuracy(model, dataset, s, from_logits=from_logits, progress=label("accuracy"))
    stab = stability_curves(model, dataset, s, protocol["positions"], stability_images, from_logits,
                            progress=label("stability"))
    worst = worst_case_accuracy(model, dataset, s, max_images=stability_images, progress=label("worst case"))
    return {
        "consistency": consistency(model, dataset, s, protocol["passes"], seed, from_logits, label("consistency")),
        "circular_consistency": circular_consistency(
            model, dataset, s, protocol["max_shift"], 1, seed, from_logits, label("circular consistency")
        ),
        "mac": mean_absolute_change(model, dataset, s, from_logits, label("MAC")),
        "stability_std": stab["mean_std"],
        "stability_range": stab["mean_range"],
        "top1": acc[1],
        "top5": acc[5],
        "worst_case_accuracy": worst["worst_case_accuracy"],
        "flip_rate": worst["flip_rate"],
        "worst_case_center_top1": worst["center_top1"],
        "subpixel_consistency": subpixel.subpixel_consistency(
            model, dataset, s, protocol["max_shift"], protocol["passes"], seed, from_logits, label("half-pixel")
        ),
        "subpixel_mac": subpixel.half_pixel_mac(model, dataset, s, from_logits, label("half-pixel MAC")),
        "fractional_worst_case_accuracy": subpixel.fractional_worst_case_accuracy(
            model, dataset, crop_size=s, max_images=stability_images, progress=label("fractional worst case")
        )["fractional_worst_case_accuracy"],
        "_stability": stab,
    }
