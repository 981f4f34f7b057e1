"""Converting existing functional Keras models: `convert` and its report."""

from keras_shiftinv.conversion.convert import convert
from keras_shiftinv.conversion.report import ConversionReport
from keras_shiftinv.conversion.report import SiteRecord

__all__ = ["ConversionReport", "SiteRecord", "convert"]
