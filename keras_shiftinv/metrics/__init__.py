"""The paper's shift-invariance metrics (docs/design.md, "Metrics")."""

from keras_shiftinv.metrics.classification import FASHION_MNIST_PROTOCOL
from keras_shiftinv.metrics.classification import IMAGENET_PROTOCOL
from keras_shiftinv.metrics.classification import circular_consistency
from keras_shiftinv.metrics.classification import consistency
from keras_shiftinv.metrics.classification import evaluate_all
from keras_shiftinv.metrics.classification import mean_absolute_change
from keras_shiftinv.metrics.classification import shift_offsets
from keras_shiftinv.metrics.classification import stability_curves
from keras_shiftinv.metrics.classification import top_k_accuracy
from keras_shiftinv.metrics.segmentation import circular_massc
from keras_shiftinv.metrics.segmentation import crop_massc
from keras_shiftinv.metrics.segmentation import equivariance_error
from keras_shiftinv.metrics.segmentation import evaluate_segmentation
from keras_shiftinv.metrics.segmentation import segmentation_scores
from keras_shiftinv.metrics.segmentation import shift_metrics
from keras_shiftinv.metrics.subpixel import bilinear_crop
from keras_shiftinv.metrics.subpixel import fractional_offsets
from keras_shiftinv.metrics.subpixel import fractional_worst_case_accuracy
from keras_shiftinv.metrics.subpixel import half_pixel_mac
from keras_shiftinv.metrics.subpixel import half_pixel_shift
from keras_shiftinv.metrics.subpixel import subpixel_consistency
from keras_shiftinv.metrics.worst_case import crop_offsets
from keras_shiftinv.metrics.worst_case import worst_case_accuracy

__all__ = [
    "FASHION_MNIST_PROTOCOL",
    "IMAGENET_PROTOCOL",
    "bilinear_crop",
    "circular_consistency",
    "circular_massc",
    "consistency",
    "crop_offsets",
    "crop_massc",
    "equivariance_error",
    "evaluate_all",
    "evaluate_segmentation",
    "fractional_offsets",
    "fractional_worst_case_accuracy",
    "half_pixel_mac",
    "half_pixel_shift",
    "mean_absolute_change",
    "segmentation_scores",
    "shift_metrics",
    "shift_offsets",
    "stability_curves",
    "subpixel_consistency",
    "top_k_accuracy",
    "worst_case_accuracy",
]
