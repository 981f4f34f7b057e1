"""Converting existing functional Keras models: `convert` and its report."""

from keras_shiftinv.conversion.convert import ConversionError
from keras_shiftinv.conversion.convert import convert
from keras_shiftinv.conversion.invariance import invariance_breaks
from keras_shiftinv.conversion.report import ConversionReport
from keras_shiftinv.conversion.report import SiteRecord

__all__ = ["ConversionError", "ConversionReport", "SiteRecord", "convert", "invariance_breaks"]
