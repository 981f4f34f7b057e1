"""keras-shiftinv: shift-robust downsampling for Keras 3 convolutional networks."""

from keras_shiftinv.export import export_saved_model
from keras_shiftinv.layers import AdaptivePolyphasePool2D
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import SpatialPadding2D
from keras_shiftinv.layers import polyphase_split
from keras_shiftinv.models import DOWNSAMPLE_METHODS
from keras_shiftinv.models import resnet18

__version__ = "0.1.0"

__all__ = [
    "AdaptivePolyphasePool2D",
    "BlurPool2D",
    "DOWNSAMPLE_METHODS",
    "PolyphaseDownsample",
    "SpatialPadding2D",
    "__version__",
    "export_saved_model",
    "polyphase_split",
    "resnet18",
]
