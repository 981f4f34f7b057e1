"""The ResNet family (torchvision layout) with one downsampling method at every site.

The method's rule at each site comes from `keras_shiftinv.methods`; this
module only lays out the network.
"""

import keras

from keras_shiftinv import methods
from keras_shiftinv._renames import renamed_argument
from keras_shiftinv.layers import SpatialPadding2D
from keras_shiftinv.layers import PADDING_MODES
from keras_shiftinv.layers import check_channels_last
from keras_shiftinv.layers import check_choice

METHODS = methods.METHODS
DOWNSAMPLE_METHODS = METHODS  # the old name
STAGE_FILTERS = (64, 128, 256, 512)
# depth -> (bottleneck blocks?, blocks per stage), as torchvision.
DEPTHS = {
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
    152: (True, (3, 8, 36, 3)),
}
BOTTLENECK_EXPANSION = 4
POOLINGS = (None, "avg", "max")
BN_KWARGS = {"momentum": 0.9, "epsilon": 1e-5}


def conv_layer(filters, kernel_size, stride, name):
    """The bias-free, "valid", He-initialised convolution every site starts from."""
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=stride,
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )


def apply_conv_bn(x, filters, kernel_size, padding, name, relu=True):
    """A stride-1 conv (explicit `padding`-mode pad) + BN (+ ReLU)."""
    pad = kernel_size // 2
    if pad:
        x = SpatialPadding2D(pad, mode=padding, name=f"{name}_pad")(x)
    x = conv_layer(filters, kernel_size, 1, name)(x)
    return apply_bn_relu(x, name, relu)


def apply_bn_relu(x, name, relu=True):
    x = keras.layers.BatchNormalization(name=f"{name}_bn", **BN_KWARGS)(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def apply_downsample_conv(x, rule, filters, kernel_size, padding, name):
    """A site where a strided conv + BN + ReLU halves the map: `(y, phase_index)`."""
    site = rule.strided_conv(
        conv_layer(filters, kernel_size, 2, name),
        padding=padding,
        name=name,
        pads=kernel_size // 2,
        after_conv=lambda y: apply_bn_relu(y, name),
    )
    return site(x)


def apply_downsample_pool(x, rule, padding, name):
    """The stem's 3x3 max-pool site (zero pad 1; inputs are post-ReLU)."""
    site = rule.strided_pool(
        keras.layers.MaxPooling2D(3, strides=2, name=name),
        padding=padding,
        name=name,
        pads=1,
        after_module=lambda y: apply_bn_relu(y, name),
    )
    return site(x)[0]


def apply_shortcut(x, rule, filters, padding, phase_index, name):
    """A downsampling block's projection shortcut, on its main path's phase."""
    site = rule.shortcut(
        conv_layer(filters, 1, 2, name),
        padding=padding,
        name=name,
        after_conv=lambda y: apply_bn_relu(y, name, relu=False),
    )
    return site(x, phase_index=phase_index)[0]


def apply_block(x, filters, downsample, rule, padding, bottleneck, name):
    """A basic (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1) residual block.

    The downsampling site is the 3x3 conv (torchvision's layout, "ResNet
    v1.5"); a downsampling block's shortcut reuses that site's phase.
    """
    out_filters = filters * (BOTTLENECK_EXPANSION if bottleneck else 1)
    y = x
    if bottleneck:
        y = apply_conv_bn(y, filters, 1, padding, f"{name}_conv1")
    site_name = f"{name}_conv2" if bottleneck else f"{name}_conv1"
    if downsample:
        y, phase_index = apply_downsample_conv(y, rule, filters, 3, padding, site_name)
    else:
        y = apply_conv_bn(y, filters, 3, padding, site_name)
    last_name, last_kernel = (f"{name}_conv3", 1) if bottleneck else (f"{name}_conv2", 3)
    y = apply_conv_bn(y, out_filters, last_kernel, padding, last_name, relu=False)
    shortcut = x
    if downsample:
        shortcut = apply_shortcut(x, rule, out_filters, padding, phase_index, f"{name}_shortcut")
    elif x.shape[-1] != out_filters:
        shortcut = apply_conv_bn(x, out_filters, 1, padding, f"{name}_shortcut", relu=False)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def resnet(
    depth,
    method="stride",
    num_classes=1000,
    input_shape=(224, 224, 3),
    width=1.0,
    padding="zeros",
    classifier_activation=None,
    name=None,
    include_top=True,
    pooling=None,
    mixing_width="lcm",
    downsample=None,
):
    """A ResNet of torchvision's layout with one downsampling method at every site.

    The sites are the stem conv (7x7/2), the stem max-pool (3x3/2), the
    stride-2 3x3 conv of the first block of stages 2-4 and those blocks'
    projection shortcuts. `keras_shiftinv.methods` holds each method's rule:

    - `"stride"`: the plain ResNet.
    - `"blur"`: Zhang's anti-aliased ResNet ("AACNN"): strided conv -> conv
      stride 1, BN, ReLU, `BlurPool2D`; max-pool -> max-pool stride 1,
      `BlurPool2D`; shortcut -> `BlurPool2D`, 1x1 conv.
    - `"aps"`: as `"blur"` with `AdaptivePolyphasePool2D` instead of the blur;
      each shortcut reuses its main branch's phase.
    - `"group"`, `"conv3d"`, `"group-aps"`, `"conv3d-aps"`: `PolyphaseDownsample`
      replaces the strided convs (kernel 3 on the half-resolution grid) and,
      with kernel 1 (a learned 2x2 pooling, then BN + ReLU), the max-pool and
      the projection shortcuts; `-aps` variants use `align="max_norm"`, and
      each shortcut reuses its main branch's phase.

    With `padding="circular"`, every convolution, pool and module pads
    circularly; then `"aps"`, `"group-aps"` and `"conv3d-aps"` give the same
    logits for any circular shift of an input whose sides are multiples of 32.
    The other variants are not exactly shift-invariant.

    Args:
        depth: 18, 34 (basic blocks), 50, 101 or 152 (bottleneck blocks).
        method: one of `METHODS` (or a `methods.Method`).
        num_classes: int, size of the dense head.
        input_shape: `(H, W, C)`; H and W may be None.
        width: float, multiplier on the 64-128-256-512 channels.
        padding: `"zeros"`, `"reflect"` or `"circular"` for every layer.
        classifier_activation: activation of the head (None: logits).
        name: model name; defaults to `resnet<depth>_<method>`.
        include_top: bool; False drops the pooling and the dense head, as in
            `keras.applications`.
        pooling: with `include_top=False`: None (4D feature map), `"avg"` or
            `"max"` (global pooling to `(B, C)`).
        mixing_width: `"lcm"` (the paper) or `"min"`, the group module's
            width (`PolyphaseDownsample`); widths whose lcm exceeds 4 x the
            channels (e.g. `width=0.3`) need `"min"`.
        downsample: the old name of `method` (deprecated).

    The head (`include_top=True`) computes in float32 under any mixed
    precision policy, so the logits are float32.

    Returns:
        A functional `keras.Model` mapping images to logits (or activations,
        or features).

    Example:
    >>> model = resnet(50, "group-aps", input_shape=(64, 64, 3), width=0.125,
    ...                include_top=False, pooling="avg")
    >>> model.output_shape
    (None, 256)
    """
    if depth not in DEPTHS:
        raise ValueError(
            f"Invalid value for argument `depth`. Expected one of {list(DEPTHS)}. Received: depth={depth!r}"
        )
    check_channels_last("resnet")
    method = renamed_argument("downsample", downsample, "method", method, "stride", "resnet")
    rule = methods.get(method, mixing_width)
    check_choice("padding", padding, PADDING_MODES)
    check_choice("pooling", pooling, POOLINGS)
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
    bottleneck, blocks = DEPTHS[depth]
    filters = [max(1, int(round(f * width))) for f in STAGE_FILTERS]

    inputs = keras.Input(shape=input_shape, name="image")
    x, _ = apply_downsample_conv(inputs, rule, filters[0], 7, padding, "stem_conv")
    x = apply_downsample_pool(x, rule, padding, "stem_pool")
    for stage, (stage_filters, num_blocks) in enumerate(zip(filters, blocks)):
        for block in range(num_blocks):
            x = apply_block(
                x,
                stage_filters,
                downsample=(stage > 0 and block == 0),
                rule=rule,
                padding=padding,
                bottleneck=bottleneck,
                name=f"stage{stage + 1}_block{block + 1}",
            )
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        # float32 head under mixed precision (Keras's mixed-precision guide).
        x = keras.layers.Dense(
            num_classes, activation=classifier_activation, dtype="float32", name="predictions"
        )(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name=name or f"resnet{depth}_{rule.name.replace('-', '_')}")


def resnet18(method="stride", **kwargs):
    """ResNet-18: basic blocks, 2-2-2-2 (torchvision: 11,689,512 parameters).

    Args:
        method: one of `METHODS`.
        **kwargs: the other arguments of `resnet` (`num_classes`,
            `input_shape`, `width`, `padding`, `include_top`, ...).

    Example:
    >>> model = resnet18("group", num_classes=10, input_shape=(32, 32, 3), width=0.25)
    >>> tuple(model(np.zeros((2, 32, 32, 3))).shape)
    (2, 10)
    """
    return resnet(18, method, **kwargs)


def resnet34(method="stride", **kwargs):
    """ResNet-34: basic blocks, 3-4-6-3 (torchvision: 21,797,672 parameters).

    Args:
        method: one of `METHODS`.
        **kwargs: the other arguments of `resnet`.

    Example:
    >>> resnet34("blur", num_classes=10, input_shape=(32, 32, 3), width=0.125).output_shape
    (None, 10)
    """
    return resnet(34, method, **kwargs)


def resnet50(method="stride", **kwargs):
    """ResNet-50: bottleneck blocks, 3-4-6-3 (torchvision: 25,557,032 parameters).

    Args:
        method: one of `METHODS`.
        **kwargs: the other arguments of `resnet`.

    Example:
    >>> resnet50("aps", num_classes=10, input_shape=(32, 32, 3), width=0.125).output_shape
    (None, 10)
    """
    return resnet(50, method, **kwargs)


def resnet101(method="stride", **kwargs):
    """ResNet-101: bottleneck blocks, 3-4-23-3 (torchvision: 44,549,160 parameters).

    It has 380 layers; building one takes seconds.

    Args:
        method: one of `METHODS`.
        **kwargs: the other arguments of `resnet`.

    Example:
    >>> DEPTHS[101]  # (bottleneck blocks, blocks per stage)
    (True, (3, 4, 23, 3))
    """
    return resnet(101, method, **kwargs)


def resnet152(method="stride", **kwargs):
    """ResNet-152: bottleneck blocks, 3-8-36-3 (torchvision: 60,192,808 parameters).

    It has 567 layers; building one takes seconds.

    Args:
        method: one of `METHODS`.
        **kwargs: the other arguments of `resnet`.

    Example:
    >>> DEPTHS[152]  # (bottleneck blocks, blocks per stage)
    (True, (3, 8, 36, 3))
    """
    return resnet(152, method, **kwargs)
