"""The downsampling layers of keras-shiftinv.

Besides the layers, the argument vocabulary that `methods.py` shares with
them: `PADDING_MODES`, `MIXING_WIDTHS`, `check_choice`, `normalize_pads`.
"""

from keras_shiftinv.layers._utils import PADDING_MODES
from keras_shiftinv.layers._nd import normalize_pads_nd
from keras_shiftinv.layers._utils import check_choice

from keras_shiftinv.layers.adaptive_polyphase_pool_1d import AdaptivePolyphasePool1D
from keras_shiftinv.layers.adaptive_polyphase_pool_2d import AdaptivePolyphasePool2D
from keras_shiftinv.layers.adaptive_polyphase_pool_3d import AdaptivePolyphasePool3D
from keras_shiftinv.layers.blur_pool_1d import BlurPool1D
from keras_shiftinv.layers.blur_pool_2d import BlurPool2D
from keras_shiftinv.layers.blur_pool_2d import binomial_filter
from keras_shiftinv.layers.blur_pool_3d import BlurPool3D
from keras_shiftinv.layers.mixed_strides_2d import AdaptivePolyphasePoolMixed2D
from keras_shiftinv.layers.mixed_strides_2d import BlurPoolMixed2D
from keras_shiftinv.layers.mixed_strides_2d import PolyphaseDownsampleMixed2D
from keras_shiftinv.layers.pad_to_multiple_2d import CropLike2D
from keras_shiftinv.layers.pad_to_multiple_2d import PadToMultiple2D
from keras_shiftinv.layers.polyphase_algebra import MIXING_WIDTHS
from keras_shiftinv.layers.polyphase_downsample import PolyphaseDownsample
from keras_shiftinv.layers.polyphase_downsample import polyphase_split
from keras_shiftinv.layers.polyphase_downsample_1d import PolyphaseDownsample1D
from keras_shiftinv.layers.polyphase_downsample_3d import PolyphaseDownsample3D
from keras_shiftinv.layers.polyphase_upsample_1d import PolyphaseUpsample1D
from keras_shiftinv.layers.polyphase_upsample_2d import PolyphaseUpsample2D
from keras_shiftinv.layers.polyphase_upsample_3d import PolyphaseUpsample3D
from keras_shiftinv.layers.spatial_padding_2d import SpatialPadding2D
from keras_shiftinv.layers.spatial_padding_2d import normalize_pads
from keras_shiftinv.layers.spatial_padding_nd import SpatialPadding1D
from keras_shiftinv.layers.spatial_padding_nd import SpatialPadding3D

__all__ = [
    "MIXING_WIDTHS",
    "PADDING_MODES",
    "AdaptivePolyphasePool1D",
    "AdaptivePolyphasePool2D",
    "AdaptivePolyphasePool3D",
    "AdaptivePolyphasePoolMixed2D",
    "BlurPool1D",
    "BlurPool2D",
    "BlurPool3D",
    "BlurPoolMixed2D",
    "CropLike2D",
    "PadToMultiple2D",
    "PolyphaseDownsample",
    "PolyphaseDownsample1D",
    "PolyphaseDownsample3D",
    "PolyphaseDownsampleMixed2D",
    "PolyphaseUpsample1D",
    "PolyphaseUpsample2D",
    "PolyphaseUpsample3D",
    "SpatialPadding1D",
    "SpatialPadding2D",
    "SpatialPadding3D",
    "binomial_filter",
    "check_choice",
    "normalize_pads",
    "normalize_pads_nd",
    "polyphase_split",
]
