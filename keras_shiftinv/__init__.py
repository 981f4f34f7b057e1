"""keras-shiftinv: shift-robust downsampling for Keras 3 convolutional networks."""

from keras_shiftinv import _startup

if _startup.is_command_line():  # before keras: no TensorFlow start-up lines on the command line
    _startup.quiet_tensorflow_import()

from keras_shiftinv.conversion import ConversionReport
from keras_shiftinv.conversion import convert
from keras_shiftinv.export import export_saved_model
from keras_shiftinv.layers import AdaptivePolyphasePool2D
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import PolyphaseUpsample2D
from keras_shiftinv.layers import SpatialPadding2D
from keras_shiftinv.layers import polyphase_split
from keras_shiftinv.models import DOWNSAMPLE_METHODS
from keras_shiftinv import methods
from keras_shiftinv.models import resnet
from keras_shiftinv.models import resnet18
from keras_shiftinv.models import resnet34
from keras_shiftinv.models import resnet50
from keras_shiftinv.models import resnet101
from keras_shiftinv.models import resnet152
from keras_shiftinv.models import unet

__version__ = "0.1.0"

__all__ = [
    "AdaptivePolyphasePool2D",
    "BlurPool2D",
    "ConversionReport",
    "DOWNSAMPLE_METHODS",
    "PolyphaseDownsample",
    "PolyphaseUpsample2D",
    "SpatialPadding2D",
    "__version__",
    "convert",
    "export_saved_model",
    "polyphase_split",
    "methods",
    "resnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "unet",
]
