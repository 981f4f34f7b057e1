"""Export for TF Serving (SavedModel), LiteRT and ONNX (docs/design.md, "Export and serving").

Every format goes through TensorFlow; without it, importing this package is a
one-line `ModuleNotFoundError` that says what to install.
"""

from keras_shiftinv._backend import require_tensorflow

require_tensorflow("keras_shiftinv.export (SavedModel, LiteRT and ONNX export)")

from keras_shiftinv.export.litert import export_litert
from keras_shiftinv.export.onnx import export_onnx
from keras_shiftinv.export.preprocessing import PREPROCESSINGS
from keras_shiftinv.export.saved_model import export_saved_model
from keras_shiftinv.export.spec import ServingSpec

FORMATS = {"saved_model": export_saved_model, "litert": export_litert, "onnx": export_onnx}

__all__ = ["FORMATS", "PREPROCESSINGS", "ServingSpec", "export_litert", "export_onnx", "export_saved_model"]
