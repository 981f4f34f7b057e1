"""Model builders."""

from keras_shiftinv.models.resnet import DOWNSAMPLE_METHODS
from keras_shiftinv.models.resnet import resnet18

__all__ = ["DOWNSAMPLE_METHODS", "resnet18"]
