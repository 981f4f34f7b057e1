"""Segmentation accuracy and shift-consistency metrics.

Every function takes a Keras model of any backend (images -> per-pixel
logits of shape `(B, H, W, K)`) and the images with their masks (integer
class maps of shape `(B, H, W)`): a tuple `(images, masks)` of numpy arrays,
or an iterable of such batches (a `tf.data` dataset, a list of numpy pairs).
Shifts are `(dy, dx)` pairs in pixels, positive down and right;
`random_shifts` draws them as the LPS evaluation does (Rojas-Gomez et al.,
NeurIPS 2022: offsets uniform in `[-max_shift, max_shift]`). Results are plain
Python floats, percentages where the name says so.
"""

import numpy as np

from keras_shiftinv.metrics._inputs import batches


def _batches(dataset):
    return batches(dataset)


def _logits(model, images, chunk=64):
    parts = [model.predict_on_batch(images[i : i + chunk]) for i in range(0, len(images), chunk)]
    return np.concatenate([np.asarray(p, dtype="float64") for p in parts])


def random_shifts(max_shift, num_shifts, seed=0):
    """`num_shifts` offsets `(dy, dx)`, each uniform in `[-max_shift, max_shift]`."""
    rng = np.random.default_rng(seed)
    return [tuple(int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2)) for _ in range(num_shifts)]


def crop_shift(images, shift):
    """Moves the content by `(dy, dx)` pixels; zeros enter, content leaves the frame.

    The "linear" shift of LPS: a window of the zero-padded image.
    """
    dy, dx = shift
    out = np.zeros_like(images)
    h, w = images.shape[1:3]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def confusion_matrix(masks, predictions, num_classes):
    """`(num_classes, num_classes)` counts, row = true class, column = predicted."""
    index = np.asarray(masks, "int64").ravel() * num_classes + np.asarray(predictions, "int64").ravel()
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def scores_from_confusion(confusion):
    """Pixel accuracy and mIoU (both %) and per-class IoU from a confusion matrix.

    IoU of class c is `TP / (TP + FP + FN)`; mIoU averages it over the classes
    that occur in the masks or the predictions (the others have no IoU: NaN).

    Example:
    >>> cm = confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1], num_classes=3)
    >>> scores = scores_from_confusion(cm)  # IoU 1/2 and 2/3; class 2 absent
    >>> round(scores["pixel_accuracy"], 2), round(scores["miou"], 2)
    (75.0, 58.33)
    """
    confusion = np.asarray(confusion, "float64")
    tp = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    return {
        "pixel_accuracy": float(100.0 * tp.sum() / confusion.sum()),
        "miou": float(100.0 * np.nanmean(iou)),
        "iou": [float(v) for v in iou],
    }


def segmentation_scores(model, dataset, num_classes):
    """Pixel accuracy and mIoU of the argmax prediction: `scores_from_confusion`'s dict."""
    confusion = np.zeros((num_classes, num_classes), "int64")
    for images, masks in _batches(dataset):
        confusion += confusion_matrix(masks, _logits(model, images).argmax(-1), num_classes)
    return scores_from_confusion(confusion)


def shift_metrics(model, dataset, shifts):
    """Circular mASSC, crop mASSC and equivariance error in one pass over `dataset`.

    For each shift `s` (averaged over the shifts, as LPS does):

    - `circular_massc` (%): the share of pixels whose argmax label on
      `roll(x, s)`, rolled back by `-s`, equals the label on `x`.
    - `crop_massc` (%): the content is moved by `s` with zeros entering
      (`crop_shift`, LPS's "linear" shift) and the labels are compared where
      both frames see the same content, the `(H - |dy|) x (W - |dx|)` overlap.
    - `equivariance_error`: `||f(roll(x, s)) - roll(f(x), s)||^2 / ||f(x)||^2`
      on the logits, summed over all images and pixels.

    An exactly equivariant model scores 100 circular mASSC and error 0; its
    crop mASSC still depends on what the crop cuts off and lets in.

    Returns:
        dict with the three floats.
    """
    n = len(shifts)
    circular, crop, crop_total, diff = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    pixels, norm = 0, 0.0
    for images, _ in _batches(dataset):
        base = _logits(model, images)
        labels = base.argmax(-1)
        h, w = labels.shape[1:]
        for i, (dy, dx) in enumerate(shifts):
            rolled = _logits(model, np.roll(images, (dy, dx), axis=(1, 2)))
            diff[i] += np.sum((rolled - np.roll(base, (dy, dx), axis=(1, 2))) ** 2)
            circular[i] += np.sum(np.roll(rolled.argmax(-1), (-dy, -dx), axis=(1, 2)) == labels)
            moved = _logits(model, crop_shift(images, (dy, dx))).argmax(-1)
            moved = moved[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
            kept = labels[:, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
            crop[i] += np.sum(moved == kept)
            crop_total[i] += kept.size
        pixels += labels.size
        norm += np.sum(base**2)
    return {
        "circular_massc": float(100.0 * np.mean(circular / pixels)),
        "crop_massc": float(100.0 * np.mean(crop / crop_total)),
        "equivariance_error": float(np.mean(diff / norm)),
    }


def circular_massc(model, dataset, shifts):
    """LPS's circular mASSC in percent (see `shift_metrics`)."""
    return shift_metrics(model, dataset, shifts)["circular_massc"]


def crop_massc(model, dataset, shifts):
    """LPS's crop ("linear") mASSC in percent (see `shift_metrics`)."""
    return shift_metrics(model, dataset, shifts)["crop_massc"]


def equivariance_error(model, dataset, shifts):
    """`||f(roll(x, s)) - roll(f(x), s)||^2 / ||f(x)||^2` (see `shift_metrics`)."""
    return shift_metrics(model, dataset, shifts)["equivariance_error"]


def evaluate_segmentation(model, dataset, num_classes, max_shift=8, num_shifts=5, seed=0):
    """Every segmentation metric on `dataset`, with shifts from `random_shifts`."""
    shifts = random_shifts(max_shift, num_shifts, seed)
    scores = segmentation_scores(model, dataset, num_classes)
    return {
        "miou": scores["miou"],
        "pixel_accuracy": scores["pixel_accuracy"],
        **shift_metrics(model, dataset, shifts),
        "iou": scores["iou"],
        "shifts": [list(s) for s in shifts],
    }
