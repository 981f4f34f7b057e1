"""U-Net whose every downsampling uses one chosen method, with the matching upsampling."""

import keras

from keras_shiftinv import methods
from keras_shiftinv._renames import renamed_argument
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import CropLike2D
from keras_shiftinv.layers import PadToMultiple2D
from keras_shiftinv.layers import PolyphaseUpsample2D
from keras_shiftinv.layers import SpatialPadding2D
from keras_shiftinv.layers import PADDING_MODES
from keras_shiftinv.layers import check_channels_last
from keras_shiftinv.layers import check_choice
from keras_shiftinv.models.resnet import apply_conv_bn
from keras_shiftinv.models.resnet import apply_downsample_conv

BASE_FILTERS = 64


def _check_int(name, value, minimum, meaning):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Argument `{name}` must be an integer >= {minimum} ({meaning}). Received: {name}={value!r}")
    return value


def _check_arguments(method, num_classes, input_shape, depth, width, padding, mixing_width):
    check_channels_last("unet")
    rule = methods.get(method, mixing_width)
    check_choice("padding", padding, PADDING_MODES)
    _check_int("num_classes", num_classes, 2, "background and at least one class")
    _check_int("depth", depth, 1, "the number of downsamplings")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or width <= 0:
        raise ValueError(f"Argument `width` must be a positive number. Received: width={width!r}")
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    size_ok = lambda n: n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 1)  # noqa: E731
    channels_ok = shape is not None and len(shape) == 3 and shape[2] is not None and size_ok(shape[2])
    if not channels_ok or not all(size_ok(n) for n in shape[:2]):
        raise ValueError(
            "Argument `input_shape` must be (height, width, channels) with positive sizes "
            f"(height and width may be None) and known channels. Received: input_shape={input_shape!r}"
        )
    return rule, shape


def apply_up(x, filters, rule, padding, phase_index, name):
    """One decoder upsampling from `x` to twice its size and `filters` channels."""
    if rule.pool == "aps":
        x = PolyphaseUpsample2D(mode="place", name=f"{name}_place")(x, phase_index=phase_index)
        return apply_conv_bn(x, filters, 3, padding, name)
    if rule.chooses_phase:
        up = PolyphaseUpsample2D(filters, mode="learned", padding=padding, name=name)
        return up(x, phase_index=phase_index)
    x = keras.layers.Conv2DTranspose(filters, 2, strides=2, kernel_initializer="he_normal", name=name)(x)
    if rule.pool == "blur":
        blur_mode = "circular" if padding == "circular" else "reflect"
        x = BlurPool2D(filt_size=3, stride=1, padding=blur_mode, name=f"{name}_blur")(x)
    return x


def unet(
    method="stride",
    num_classes=2,
    input_shape=(256, 256, 3),
    depth=4,
    width=1.0,
    padding="zeros",
    name=None,
    mixing_width="lcm",
    downsample=None,
):
    """A U-Net for per-pixel classification with one downsampling method.

    Encoder level 0 has two 3x3 conv + BN + ReLU blocks; each deeper level
    starts with the method's downsampling conv site (the ResNet's rules: a
    strided conv for `"stride"`; conv, BN, ReLU and `BlurPool2D` for `"blur"`;
    conv, BN, ReLU and `AdaptivePolyphasePool2D` for `"aps"`;
    `PolyphaseDownsample`, BN, ReLU for the paper's modules) and one more conv
    block. Channels are `64 * width * 2**level`. Each decoder level upsamples,
    concatenates the encoder's map of that level and applies two conv blocks;
    a 1x1 conv gives the logits. The upsampling matches the method:

    - `"stride"`, `"group"`, `"conv3d"`: a 2x2 stride-2 transposed conv.
    - `"blur"`: the transposed conv, then a 3x3 binomial blur (Zhang).
    - `"aps"`: `PolyphaseUpsample2D(mode="place")` at the phase the matching
      pool kept (APS-U), then a 3x3 conv + BN + ReLU (the learned filter
      that fills the zeros).
    - `"group-aps"`, `"conv3d-aps"`: `PolyphaseUpsample2D(mode="learned")`
      with the phase the matching `PolyphaseDownsample` rolled to the front.

    With `padding="circular"` the aligned methods make the network exactly
    equivariant to circular shifts of inputs whose sides are multiples of
    `2**depth`: `f(roll(x, s)) == roll(f(x), s)` up to float rounding. The
    others are not. Inputs of other sizes are padded at the bottom and right
    (with `padding`) to the next multiple and the logits are cropped back:
    with `input_shape=(None, None, C)` this happens inside the graph, for
    each input's size (`PadToMultiple2D`, `CropLike2D`). The logits are
    float32 under any mixed precision policy.

    Args:
        method: one of `keras_shiftinv.methods.METHODS` (or a `Method`).
        num_classes: int >= 2, classes per pixel (background included).
        input_shape: `(H, W, C)`; H and W may be None (any size), C is known.
        depth: int >= 1, the number of downsamplings.
        width: float, multiplier on the 64-128-... channels.
        padding: `"zeros"`, `"reflect"` or `"circular"` for every layer.
        name: model name; defaults to `unet_<method>`.
        mixing_width: `"lcm"` (the paper) or `"min"`, the group module's width.
        downsample: the old name of `method` (deprecated).

    Returns:
        A functional `keras.Model` mapping `(B, H, W, C)` images to
        `(B, H, W, num_classes)` logits.

    Example:
    >>> model = unet("group-aps", num_classes=3, input_shape=(20, 12, 1), depth=2, width=0.125)
    >>> tuple(model(np.zeros((2, 20, 12, 1))).shape)
    (2, 20, 12, 3)
    >>> any_size = unet("aps", input_shape=(None, None, 1), depth=2, width=0.125)
    >>> tuple(any_size(np.zeros((1, 9, 14, 1))).shape)
    (1, 9, 14, 2)
    """
    method = renamed_argument("downsample", downsample, "method", method, "stride", "unet")
    rule, shape = _check_arguments(method, num_classes, input_shape, depth, width, padding, mixing_width)
    filters = [max(1, int(round(BASE_FILTERS * width * 2**level))) for level in range(depth + 1)]
    multiple = 2**depth
    dynamic = shape[0] is None or shape[1] is None
    pads = None if dynamic else ((0, -shape[0] % multiple), (0, -shape[1] % multiple))

    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    if dynamic:
        x = PadToMultiple2D(multiple, mode=padding, name="pad_to_multiple")(x)
    elif pads != ((0, 0), (0, 0)):
        x = SpatialPadding2D(pads, mode=padding, name="pad_to_multiple")(x)
    skips, phases = [], []
    for level, level_filters in enumerate(filters):
        prefix = f"enc{level}"
        if level:
            skips.append(x)
            x, phase_index = apply_downsample_conv(x, rule, level_filters, 3, padding, f"{prefix}_down")
            phases.append(phase_index)
        else:
            x = apply_conv_bn(x, level_filters, 3, padding, f"{prefix}_conv1")
        x = apply_conv_bn(x, level_filters, 3, padding, f"{prefix}_conv2")
    for level in reversed(range(depth)):
        prefix = f"dec{level}"
        x = apply_up(x, filters[level], rule, padding, phases[level], f"{prefix}_up")
        x = keras.layers.Concatenate(name=f"{prefix}_concat")([skips[level], x])
        for i in (1, 2):
            x = apply_conv_bn(x, filters[level], 3, padding, f"{prefix}_conv{i}")
    # float32 logits under mixed precision (Keras's mixed-precision guide).
    x = keras.layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(x)
    if dynamic:
        x = CropLike2D(dtype="float32", name="crop_to_input")([x, inputs])
    elif pads != ((0, 0), (0, 0)):
        x = keras.layers.Cropping2D(pads, dtype="float32", name="crop_to_input")(x)
    return keras.Model(inputs, x, name=name or f"unet_{rule.name.replace('-', '_')}")
