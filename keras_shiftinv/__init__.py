"""keras-shiftinv: shift-robust downsampling for Keras 3 convolutional networks.

The core (layers, methods, models, conversion, metrics, saving) runs on any
Keras backend; the TensorFlow-only parts (`export_saved_model` here, the
`data`, `training` and `export` packages) are imported on first use
(docs/backends.md).
"""

import importlib

from keras_shiftinv import _startup
from keras_shiftinv._backend import missing_backend_message

if _startup.is_command_line():  # before keras: no TensorFlow start-up lines on the command line
    _startup.quiet_tensorflow_import()

__version__ = "0.1.0"

# TensorFlow-only names of the package face, imported on first use: name -> module
_LAZY = {"export_saved_model": "keras_shiftinv.export"}
# Subpackages reachable as attributes (`ks.data.load`) without importing them first
_SUBMODULES = ("data", "evaluation", "experiments", "export", "metrics", "report", "saving", "training")

_MISSING_BACKEND = missing_backend_message()
if _MISSING_BACKEND is None:  # else every name below is a one-line error (`__getattr__`)
    from keras_shiftinv.conversion import ConversionReport
    from keras_shiftinv.conversion import convert
    from keras_shiftinv.distill import distill
    from keras_shiftinv.layers import AdaptivePolyphasePool2D
    from keras_shiftinv.layers import BlurPool2D
    from keras_shiftinv.layers import PolyphaseDownsample
    from keras_shiftinv.layers import PolyphaseUpsample2D
    from keras_shiftinv.layers import SpatialPadding2D
    from keras_shiftinv.layers import polyphase_split
    from keras_shiftinv.models import DOWNSAMPLE_METHODS  # the old name of METHODS
    from keras_shiftinv.models import METHODS
    from keras_shiftinv import methods
    from keras_shiftinv.models import resnet
    from keras_shiftinv.models import resnet18
    from keras_shiftinv.models import resnet34
    from keras_shiftinv.models import resnet50
    from keras_shiftinv.models import resnet101
    from keras_shiftinv.models import resnet152
    from keras_shiftinv.models import unet

__all__ = [
    "AdaptivePolyphasePool2D",
    "BlurPool2D",
    "ConversionReport",
    "DOWNSAMPLE_METHODS",
    "METHODS",
    "PolyphaseDownsample",
    "PolyphaseUpsample2D",
    "SpatialPadding2D",
    "__version__",
    "convert",
    "distill",
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


def __getattr__(name):
    if name in __all__ and _MISSING_BACKEND is not None:
        raise ModuleNotFoundError(f"keras_shiftinv.{name}: {_MISSING_BACKEND}")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_shiftinv.{name}")
    raise AttributeError(f"module 'keras_shiftinv' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
