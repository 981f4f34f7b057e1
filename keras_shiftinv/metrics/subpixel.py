"""Sub-pixel shift metrics (docs/design.md, "Metrics"; docs/subpixel.md).

The aligned methods are exact for integer circular shifts; these metrics ask
what happens between pixels, as Alias-Free ConvNets (Michaeli et al., CVPR
2023) measure it:

- `half_pixel_shift`: the ideal (Fourier) circular shift by `s + 1/2` pixels:
  each axis is upsampled x2 by zero-padding its spectrum, rolled by `2s + 1`
  on the fine grid and subsampled. An even side's Nyquist bin is split evenly
  between the two new bins (+n/2 and -n/2), so the result stays real; the
  Nyquist component `cos(pi * p)` then lands on `cos(pi * (p - 1/2)) = 0` at
  every pixel, so a half-pixel shift removes it. Two half-pixel shifts
  therefore equal a roll by one pixel exactly for images without Nyquist
  energy (any odd side) and differ from it by that component otherwise.
- `subpixel_consistency` / `half_pixel_mac`: top-1 agreement and the mean
  absolute change of the top class's probability between the center crop and
  its half-pixel shift (circular, like `circular_consistency`).
- `fractional_worst_case_accuracy`: correct at every offset of a grid of step
  `1/steps` pixel in `(-1, 1)^2`, the image resampled bilinearly, reading a
  one-pixel border around the center crop.

Inputs are the uncropped squares, as every metric here takes them: a tuple
`(images, labels)` of numpy arrays or an iterable of such batches; the label-
free metrics also take a bare `(N, S, S, C)` numpy array.
"""

import numpy as np
from tqdm.auto import tqdm

from keras_shiftinv.metrics._inputs import batches
from keras_shiftinv.metrics._inputs import check_crop
from keras_shiftinv.metrics._inputs import crop
from keras_shiftinv.metrics._inputs import predict_probabilities


def _upsample2(x, axis):
    """x2 trigonometric interpolation of a real array along `axis` (even samples are `x`)."""
    n = x.shape[axis]
    spectrum = np.fft.fft(x, axis=axis)
    fine = np.zeros(x.shape[:axis] + (2 * n,) + x.shape[axis + 1 :], dtype=complex)
    low = (n + 1) // 2  # bins 0 .. low-1 are the non-negative frequencies below Nyquist
    take = lambda a, b: np.take(spectrum, np.arange(a, b), axis=axis)  # noqa: E731
    index = [slice(None)] * x.ndim
    index[axis] = slice(0, low)
    fine[tuple(index)] = take(0, low)
    negatives = n - low - (n % 2 == 0)  # bins n-negatives .. n-1: the negative frequencies
    if negatives:
        index[axis] = slice(2 * n - negatives, 2 * n)
        fine[tuple(index)] = take(n - negatives, n)
    if n % 2 == 0:  # Nyquist: half to +n/2, half to -n/2
        half = take(n // 2, n // 2 + 1) / 2
        index[axis] = slice(n // 2, n // 2 + 1)
        fine[tuple(index)] = half
        index[axis] = slice(3 * n // 2, 3 * n // 2 + 1)
        fine[tuple(index)] = half
    return 2.0 * np.fft.ifft(fine, axis=axis).real


def half_pixel_shift(images, shift=(0, 0)):
    """Images moved circularly by `(shift[0] + 1/2, shift[1] + 1/2)` pixels (down, right).

    The Fourier shift: each spatial axis is upsampled x2 by zero-padding its
    spectrum (an even side's Nyquist bin split evenly, see the module
    docstring), the fine grid is rolled by `2 * shift + 1` and every second
    pixel kept. The output pixel `p` is the band-limited image at
    `p - shift - 1/2`.

    Args:
        images: real array `(N, H, W, C)`.
        shift: `(sy, sx)` integers.

    Returns:
        float array of the same shape (float32 for float32 input).

    Example:
    >>> x = np.cos(2 * np.pi * np.arange(8) / 8)[None, :, None, None] * np.ones((1, 8, 8, 1))
    >>> y = half_pixel_shift(x)  # rows move by 1/2: cos(2 pi (p - 1/2) / 8)
    >>> bool(np.allclose(y[0, :, 0, 0], np.cos(2 * np.pi * (np.arange(8) - 0.5) / 8)))
    True
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"`images` must be a batch (N, H, W, C). Received: shape={images.shape}")
    if len(shift) != 2 or not all(isinstance(s, (int, np.integer)) for s in shift):
        raise ValueError(f"`shift` must be two integers (sy, sx). Received: shift={shift!r}")
    out = images.astype("float64")
    for axis, s in zip((1, 2), shift):
        fine = _upsample2(out, axis)
        out = np.take(np.roll(fine, 2 * int(s) + 1, axis=axis), np.arange(0, fine.shape[axis], 2), axis=axis)
    return out.astype(images.dtype) if images.dtype == np.float32 else out


def _image_batches(images, progress):
    """Image batches of a bare array or of the `(images, labels)` forms."""
    if isinstance(images, np.ndarray):
        images = (images, np.zeros(len(images)))
    for batch, _ in tqdm(batches(images), desc=progress, disable=progress is None, leave=False):
        yield batch


def _center(batch, crop_size):
    side = check_crop(batch, crop_size)
    start = (side - crop_size) // 2
    return crop(batch, start, start, crop_size)


def subpixel_consistency(model, images, crop_size=224, max_shift=32, passes=1, seed=0, from_logits=True,
                         progress=None):
    """Half-pixel consistency in percent: the share of unchanged top-1 classes.

    For every batch and pass a shift `(sy, sx)` is drawn uniformly in
    `[-max_shift, max_shift)^2`; the center crop and its `half_pixel_shift`
    by it (so it moves by `(sy + 1/2, sx + 1/2)`) are classified and equal
    argmax labels counted.

    Args:
        model: Keras model, images -> logits (or probabilities).
        images: the uncropped squares: an `(N, S, S, C)` array, a tuple
            `(images, labels)` or an iterable of such batches.
        crop_size: the model's input side.
        max_shift: the integer part of the shift is in `[-max_shift, max_shift)`.
        passes: shifts per batch.
        seed: seed of the shifts.
        from_logits: the model gives logits (only the argmax is used here).
        progress: tqdm description, or None.

    Example:
    >>> x = keras.Input((4, 4, 1))
    >>> model = keras.Model(x, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    >>> images = np.random.default_rng(0).random((8, 6, 6, 1)).astype("float32")
    >>> subpixel_consistency(model, images, crop_size=4, max_shift=2)  # the mean is kept exactly
    100.0
    """
    _check_max_shift(max_shift, crop_size)
    rng = np.random.default_rng(seed)
    agree = total = 0
    for batch in _image_batches(images, progress):
        crops = _center(batch, crop_size)
        base = predict_probabilities(model, crops, from_logits).argmax(-1)
        for _ in range(passes):
            shift = tuple(int(s) for s in rng.integers(-max_shift, max_shift, size=2)) if max_shift else (0, 0)
            moved = predict_probabilities(model, half_pixel_shift(crops, shift), from_logits).argmax(-1)
            agree += int(np.sum(base == moved))
            total += len(base)
    if not total:
        raise ValueError("Sub-pixel consistency needs at least one image. Received: an empty dataset")
    return 100.0 * agree / total


def half_pixel_mac(model, images, crop_size=224, from_logits=True, progress=None):
    """Mean |p(y0|x) - p(y0|x moved by (1/2, 1/2))|, y0 the top class of the center crop `x`.

    The move is `half_pixel_shift(x, (0, 0))` (circular). Arguments as in
    `subpixel_consistency`; probabilities are the softmax of logits when
    `from_logits`.
    """
    changes = []
    for batch in _image_batches(images, progress):
        crops = _center(batch, crop_size)
        base = predict_probabilities(model, crops, from_logits)
        moved = predict_probabilities(model, half_pixel_shift(crops), from_logits)
        top = base.argmax(-1)
        rows = np.arange(len(top))
        changes.append(np.abs(base[rows, top] - moved[rows, top]))
    if not changes:
        raise ValueError("Half-pixel MAC needs at least one image. Received: an empty dataset")
    return float(np.concatenate(changes).mean())


def fractional_offsets(steps):
    """The `(dy, dx)` grid: multiples of `1/steps` in `(-1, 1)`, row-major.

    Example:
    >>> fractional_offsets(2)
    [(-0.5, -0.5), (-0.5, 0.0), (-0.5, 0.5), (0.0, -0.5), (0.0, 0.0), (0.0, 0.5), (0.5, -0.5), (0.5, 0.0), (0.5, 0.5)]
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"`steps` must be a positive integer. Received: steps={steps!r}")
    values = [k / steps for k in range(-steps + 1, steps)]
    return [(dy, dx) for dy in values for dx in values]


def bilinear_crop(images, top, left, crop_size):
    """The `crop_size` square whose pixel `(i, j)` is the image at `(top + i, left + j)`, bilinearly.

    `top` and `left` may be fractional; every position read must lie inside
    the image (no padding).
    """
    side_y, side_x = images.shape[1:3]
    if not (0 <= top and top + crop_size - 1 <= side_y - 1 and 0 <= left and left + crop_size - 1 <= side_x - 1):
        raise ValueError(
            f"The crop reads outside the {side_y}x{side_x} image. Received: top={top}, left={left}, "
            f"crop_size={crop_size}"
        )
    out = images.astype("float64")
    for axis, start in ((1, top), (2, left)):
        where = start + np.arange(crop_size)
        below = np.minimum(np.floor(where).astype(int), images.shape[axis] - 2)
        shape = [1, 1, 1, 1]
        shape[axis] = crop_size
        weight = (where - below).reshape(shape)  # (1, s, 1, 1) or (1, 1, s, 1): broadcast along `axis`
        out = (1 - weight) * np.take(out, below, axis=axis) + weight * np.take(out, below + 1, axis=axis)
    return out.astype(images.dtype) if images.dtype == np.float32 else out


def fractional_worst_case_accuracy(model, images, labels=None, steps=4, crop_size=224, max_images=None,
                                   crops_per_call=1024, progress=None):
    """Accuracy when every fractional offset of a `1/steps` grid must be classified correctly.

    The crop of side `crop_size` at the center `c = (S - crop_size) // 2` is
    resampled bilinearly at `(c + dy, c + dx)` for every `(dy, dx)` of
    `fractional_offsets(steps)` (`(2 * steps - 1)^2` offsets, 49 for
    `steps=4`); the images need a one-pixel border around the crop
    (`S >= crop_size + 2`). An image counts as correct only if the argmax at
    every offset equals its label. Offset `(0, 0)` is the plain center crop,
    so the score never exceeds the center-crop top-1 (returned too).

    Args:
        model: Keras model, images -> logits or probabilities.
        images: an `(N, S, S, C)` array with `labels`, or (labels None) a
            tuple `(images, labels)` or an iterable of such batches.
        labels: int array `(N,)` for array `images`.
        steps: grid steps per pixel.
        crop_size: the model's input side.
        max_images: use only the first N images.
        crops_per_call: about how many crops go into one `predict_on_batch`.
        progress: tqdm description, or None.

    Returns:
        dict: `fractional_worst_case_accuracy`, `center_top1` (percent),
        `offsets`, `images`.

    Example:
    >>> x = keras.Input((2, 2, 1))
    >>> y = keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Cropping2D(((0, 1), (0, 1)))(x)))
    >>> model = keras.Model(x, y)
    >>> model.set_weights([np.array([[0.0, 1.0]]), np.array([0.0, -0.5])])  # class 1 iff pixel (0, 0) > 0.5
    >>> images = np.zeros((2, 4, 4, 1), "float32")
    >>> images[:, 1, 1] = [[0.8], [4.0]]  # the pixel read; at offset (1/2, 1/2) it weighs 1/4
    >>> fractional_worst_case_accuracy(model, images, np.array([1, 1]), steps=2, crop_size=2)
    {'fractional_worst_case_accuracy': 50.0, 'center_top1': 100.0, 'offsets': 9, 'images': 2}
    """
    offsets = fractional_offsets(steps)
    if labels is not None:
        if not isinstance(images, np.ndarray):
            raise ValueError(f"With `labels`, `images` must be a numpy array. Received: images={type(images)}")
        images = (images, np.asarray(labels))
    correct = center_hits = seen = 0
    for batch, y in tqdm(batches(images), desc=progress, disable=progress is None, leave=False):
        side = check_crop(batch, crop_size)
        if side < crop_size + 2:
            raise ValueError(
                f"Fractional shifts need a one-pixel border around the crop: images of at least "
                f"crop_size + 2 = {crop_size + 2} pixels. Received: image size {side}"
            )
        if max_images is not None:
            batch, y = batch[: max_images - seen], y[: max_images - seen]
        if not len(y):
            break
        start = (side - crop_size) // 2
        group = max(1, crops_per_call // len(y))
        predicted = []
        for first in range(0, len(offsets), group):
            chosen = offsets[first : first + group]
            crops = np.stack([bilinear_crop(batch, start + dy, start + dx, crop_size) for dy, dx in chosen])
            flat = crops.reshape((-1,) + crops.shape[2:])  # (G * N, s, s, C), offset-major
            logits = np.asarray(model.predict_on_batch(flat))
            predicted.append(logits.argmax(-1).reshape(len(chosen), len(y)).T)  # (N, G)
        predicted = np.concatenate(predicted, axis=1)  # (N, K)
        correct += int(np.sum(np.all(predicted == y[:, None], axis=1)))
        center_hits += int(np.sum(predicted[:, offsets.index((0.0, 0.0))] == y))
        seen += len(y)
        if max_images is not None and seen >= max_images:
            break
    if not seen:
        raise ValueError("Fractional worst-case accuracy needs at least one image. Received: an empty dataset")
    return {
        "fractional_worst_case_accuracy": 100.0 * correct / seen,
        "center_top1": 100.0 * center_hits / seen,
        "offsets": len(offsets),
        "images": seen,
    }


def _check_max_shift(max_shift, crop_size):
    if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or not 0 <= max_shift <= crop_size:
        raise ValueError(
            f"`max_shift` must be an integer between 0 and crop_size={crop_size}. Received: max_shift={max_shift!r}"
        )
