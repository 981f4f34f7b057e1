"""Model builders."""

from keras_shiftinv.models.resnet import DOWNSAMPLE_METHODS
from keras_shiftinv.models.resnet import METHODS
from keras_shiftinv.models.resnet import resnet
from keras_shiftinv.models.resnet import resnet18
from keras_shiftinv.models.resnet import resnet34
from keras_shiftinv.models.resnet import resnet50
from keras_shiftinv.models.resnet import resnet101
from keras_shiftinv.models.resnet import resnet152
from keras_shiftinv.models.resnet1d import METHODS_1D
from keras_shiftinv.models.resnet1d import resnet1d
from keras_shiftinv.models.unet import unet

__all__ = [
    "DOWNSAMPLE_METHODS", "METHODS", "METHODS_1D", "resnet", "resnet1d", "resnet18", "resnet34", "resnet50",
    "resnet101", "resnet152", "unet",
]
