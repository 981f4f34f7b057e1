"""ResNet-18 whose every downsampling site uses one chosen method."""

import keras

from keras_shiftinv.layers import AdaptivePolyphasePool2D
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import SpatialPadding2D
from keras_shiftinv.layers._utils import PADDING_MODES
from keras_shiftinv.layers._utils import check_choice

DOWNSAMPLE_METHODS = ("stride", "blur", "group", "conv3d", "aps", "group-aps", "conv3d-aps")
# Variants of the paper's module, as data: method -> (mixing, align).
POLYPHASE_VARIANTS = {
    "group": ("group", None),
    "conv3d": ("conv3d", None),
    "group-aps": ("group", "max_norm"),
    "conv3d-aps": ("conv3d", "max_norm"),
}
STAGE_FILTERS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = 2
BN_KWARGS = {"momentum": 0.9, "epsilon": 1e-5}


def apply_conv(x, filters, kernel_size, stride, padding, name):
    """Explicit `padding`-mode pad, then a bias-free "valid" convolution."""
    pad = kernel_size // 2
    if pad:
        x = SpatialPadding2D(pad, mode=padding, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=stride,
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )(x)


def apply_bn_relu(x, name, relu=True):
    x = keras.layers.BatchNormalization(name=f"{name}_bn", **BN_KWARGS)(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def apply_polyphase(x, filters, kernel_size, method, padding, name):
    mixing, align = POLYPHASE_VARIANTS[method]
    return PolyphaseDownsample(
        filters,
        mixing=mixing,
        kernel_size=kernel_size,
        padding=padding,
        align=align,
        name=name,
    )(x)


def apply_downsample_conv(x, filters, kernel_size, method, padding, name):
    """A site where a strided conv + BN + ReLU halves the map.

    Returns `(x, phase_index)`; `phase_index` is None except for `"aps"`.
    """
    if method in POLYPHASE_VARIANTS:
        x = apply_polyphase(x, filters, 3, method, padding, name)
        return apply_bn_relu(x, name), None
    stride = 2 if method == "stride" else 1
    x = apply_conv(x, filters, kernel_size, stride, padding, name)
    x = apply_bn_relu(x, name)
    if method == "blur":
        return BlurPool2D(padding=_blur_padding(padding), name=f"{name}_blur")(x), None
    if method == "aps":
        return AdaptivePolyphasePool2D(
            padding=padding, return_index=True, name=f"{name}_aps"
        )(x)
    return x, None


def apply_downsample_pool(x, method, padding, name):
    """The stem's 3x3 max-pool site."""
    if method in POLYPHASE_VARIANTS:
        x = apply_polyphase(x, x.shape[-1], 1, method, padding, name)
        return apply_bn_relu(x, name)
    x = SpatialPadding2D(1, mode=padding, name=f"{name}_pad")(x)
    stride = 2 if method == "stride" else 1
    x = keras.layers.MaxPooling2D(3, strides=stride, name=name)(x)
    if method == "blur":
        return BlurPool2D(padding=_blur_padding(padding), name=f"{name}_blur")(x)
    if method == "aps":
        return AdaptivePolyphasePool2D(padding=padding, name=f"{name}_aps")(x)
    return x


def apply_shortcut(x, filters, method, padding, phase_index, name):
    """The projection shortcut of a downsampling block."""
    if method in POLYPHASE_VARIANTS:
        x = apply_polyphase(x, filters, 1, method, padding, name)
        return apply_bn_relu(x, name, relu=False)
    stride = 2 if method == "stride" else 1
    if method == "blur":
        x = BlurPool2D(padding=_blur_padding(padding), name=f"{name}_blur")(x)
    if method == "aps":
        x = AdaptivePolyphasePool2D(padding=padding, name=f"{name}_aps")(
            x, phase_index=phase_index
        )
    x = apply_conv(x, filters, 1, stride, padding, name)
    return apply_bn_relu(x, name, relu=False)


def apply_basic_block(x, filters, downsample, method, padding, name):
    shortcut = x
    if downsample:
        y, phase_index = apply_downsample_conv(x, filters, 3, method, padding, f"{name}_conv1")
        shortcut = apply_shortcut(x, filters, method, padding, phase_index, f"{name}_shortcut")
    else:
        y = apply_conv(x, filters, 3, 1, padding, f"{name}_conv1")
        y = apply_bn_relu(y, f"{name}_conv1")
    y = apply_conv(y, filters, 3, 1, padding, f"{name}_conv2")
    y = apply_bn_relu(y, f"{name}_conv2", relu=False)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _blur_padding(padding):
    # Zhang's BlurPool pads by reflection; keep circular where asked for.
    return "circular" if padding == "circular" else "reflect"


def resnet18(
    downsample="stride",
    num_classes=1000,
    input_shape=(224, 224, 3),
    width=1.0,
    padding="zeros",
    classifier_activation=None,
    name=None,
):
    """ResNet-18 with one downsampling method at every site.

    The sites are the stem conv (7x7/2), the stem max-pool (3x3/2), the first
    conv of stages 2-4 and their projection shortcuts. Per `downsample`:

    - `"stride"`: the plain ResNet-18 (torchvision layout).
    - `"blur"`: Zhang's anti-aliased ResNet ("AACNN"): strided conv -> conv
      stride 1, BN, ReLU, `BlurPool2D`; max-pool -> max-pool stride 1,
      `BlurPool2D`; shortcut -> `BlurPool2D`, 1x1 conv.
    - `"aps"`: as `"blur"` with `AdaptivePolyphasePool2D` instead of the blur;
      each shortcut reuses its main branch's phase.
    - `"group"`, `"conv3d"`, `"group-aps"`, `"conv3d-aps"`: `PolyphaseDownsample`
      replaces the strided convs (kernel 3 on the half-resolution grid) and,
      with kernel 1 (a learned 2x2 pooling, then BN + ReLU), the max-pool and
      the projection shortcuts; `-aps` variants use `align="max_norm"`.

    With `padding="circular"`, every convolution, pool and module pads
    circularly; then `"aps"`, `"group-aps"` and `"conv3d-aps"` give the same
    logits for any circular shift of an input whose sides are multiples of 32.
    The other variants are not exactly shift-invariant.

    Args:
        downsample: one of `DOWNSAMPLE_METHODS`.
        num_classes: int, size of the dense head.
        input_shape: `(H, W, C)`; H and W may be None.
        width: float, multiplier on the 64-128-256-512 channels.
        padding: `"zeros"`, `"reflect"` or `"circular"` for every layer.
        classifier_activation: activation of the head (None: logits).
        name: model name; defaults to `resnet18_<downsample>`.

    Returns:
        A functional `keras.Model` mapping images to logits (or activations).

    Example:
    >>> model = resnet18("group", num_classes=10, input_shape=(32, 32, 3), width=0.25)
    >>> model(np.zeros((2, 32, 32, 3))).shape
    (2, 10)
    """
    check_choice("downsample", downsample, DOWNSAMPLE_METHODS)
    check_choice("padding", padding, PADDING_MODES)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"Argument `num_classes` must be a positive integer. Received: num_classes={num_classes!r}"
        )
    if not isinstance(width, (int, float)) or isinstance(width, bool) or width <= 0:
        raise ValueError(f"Argument `width` must be a positive number. Received: width={width!r}")
    if len(input_shape) != 3:
        raise ValueError(
            f"Argument `input_shape` must be (height, width, channels). Received: input_shape={input_shape!r}"
        )
    filters = [max(1, int(round(f * width))) for f in STAGE_FILTERS]

    inputs = keras.Input(shape=input_shape, name="image")
    x, _ = apply_downsample_conv(inputs, filters[0], 7, downsample, padding, "stem_conv")
    x = apply_downsample_pool(x, downsample, padding, "stem_pool")
    for stage, stage_filters in enumerate(filters):
        for block in range(BLOCKS_PER_STAGE):
            x = apply_basic_block(
                x,
                stage_filters,
                downsample=(stage > 0 and block == 0),
                method=downsample,
                padding=padding,
                name=f"stage{stage + 1}_block{block + 1}",
            )
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(
        num_classes, activation=classifier_activation, name="predictions"
    )(x)
    return keras.Model(inputs, outputs, name=name or f"resnet18_{downsample.replace('-', '_')}")
