"""The downsampling layers of keras-shiftinv.

Besides the layers, what the packages above them share with them: the
argument vocabulary (`PADDING_MODES`, `MIXING_WIDTHS`, `check_choice`,
`check_channels_last`, `normalize_pads`), the padding helpers (`pad_spatial`,
`pad_to_even`) and the rank-generic base classes (`PolyphaseDownsampleND`, of
which `PolyphaseDownsample` is the 2-D case, `AdaptivePolyphasePoolND`,
`SpatialPaddingND`) that `conversion` recognises.
"""

from keras_shiftinv.layers._nd import AdaptivePolyphasePoolND
from keras_shiftinv.layers._nd import PolyphaseDownsampleND
from keras_shiftinv.layers._nd import SpatialPaddingND
from keras_shiftinv.layers._nd import normalize_pads_nd
from keras_shiftinv.layers._utils import PADDING_MODES
from keras_shiftinv.layers._utils import check_channels_last
from keras_shiftinv.layers._utils import check_choice
from keras_shiftinv.layers._utils import pad_spatial
from keras_shiftinv.layers._utils import pad_to_even

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
    "AdaptivePolyphasePoolND",
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
    "PolyphaseDownsampleND",
    "PolyphaseDownsampleMixed2D",
    "PolyphaseUpsample1D",
    "PolyphaseUpsample2D",
    "PolyphaseUpsample3D",
    "SpatialPadding1D",
    "SpatialPadding2D",
    "SpatialPadding3D",
    "SpatialPaddingND",
    "binomial_filter",
    "check_channels_last",
    "check_choice",
    "normalize_pads",
    "normalize_pads_nd",
    "pad_spatial",
    "pad_to_even",
    "polyphase_split",
]
