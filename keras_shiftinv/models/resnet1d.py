"""A small residual network for signals `(B, T, C)`, one downsampling method at every site.

The 1-D counterpart of `resnet` (docs/design.md, "Other ranks"): the rules
of `keras_shiftinv.methods` at each site, so a method means the same thing
in 1-D as in 2-D.
"""

import keras

from keras_shiftinv import methods
from keras_shiftinv.layers import SpatialPadding1D
from keras_shiftinv.layers import PADDING_MODES
from keras_shiftinv.layers import check_channels_last
from keras_shiftinv.layers import check_choice
from keras_shiftinv.models.resnet import BN_KWARGS

# The methods whose module exists in 1-D ("conv3d" mixes 4 phases of an image).
# No conv3d module in 1-D; the low-pass methods low-pass at stride-(2, 2) image sites only.
METHODS_1D = tuple(name for name in methods.METHODS if "conv3d" not in name and not methods.get(name).lowpass)


def _conv(filters, kernel_size, stride, name):
    return keras.layers.Conv1D(
        filters, kernel_size, strides=stride, use_bias=False, kernel_initializer="he_normal", name=name
    )


def _bn_relu(x, name, relu=True):
    x = keras.layers.BatchNormalization(name=f"{name}_bn", **BN_KWARGS)(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _conv_bn(x, filters, kernel_size, padding, name, relu=True):
    """A stride-1 conv (explicit `padding`-mode pad) + BN (+ ReLU)."""
    if kernel_size // 2:
        x = SpatialPadding1D(kernel_size // 2, mode=padding, name=f"{name}_pad")(x)
    return _bn_relu(_conv(filters, kernel_size, 1, name)(x), name, relu)


def _block(x, filters, downsample, rule, padding, name):
    """A basic block (3, 3); a downsampling block's shortcut reuses its first conv's phase."""
    if downsample:
        site = rule.strided_conv(
            _conv(filters, 3, 2, f"{name}_conv1"), padding=padding, pads=(1, 1),
            after_conv=lambda y: _bn_relu(y, f"{name}_conv1"),
        )
        y, phase_index = site(x)
    else:
        y = _conv_bn(x, filters, 3, padding, f"{name}_conv1")
    y = _conv_bn(y, filters, 3, padding, f"{name}_conv2", relu=False)
    shortcut = x
    if downsample:
        site = rule.shortcut(
            _conv(filters, 1, 2, f"{name}_shortcut"), padding=padding,
            after_conv=lambda s: _bn_relu(s, f"{name}_shortcut", relu=False),
        )
        shortcut = site(x, phase_index=phase_index)[0]
    elif x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, padding, f"{name}_shortcut", relu=False)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def resnet1d(
    method="stride",
    num_classes=10,
    input_shape=(40, 1),
    filters=(32, 64, 128),
    stem_kernel=5,
    padding="zeros",
    mixing_width="lcm",
    name=None,
):
    """A 1-D ResNet: stem conv, stem max-pool site, one basic block per stage.

    Layout: a `stem_kernel` conv (stride 1) + BN + ReLU, a 3/2 max-pool (a
    pool site), then one basic block per entry of `filters`, the first at
    stride 1 and every later one downsampling by 2 at its first 3-tap conv
    and its 1x1 projection shortcut (sites), then global average pooling and
    a dense head. Total stride `2 ** len(filters)`: 8 by default, so an input
    of 40 samples ends at 5. Every site follows `methods.get(method)`:
    `"blur"` uses `BlurPool1D`, `"aps"` `AdaptivePolyphasePool1D`, `"group"` /
    `"group-aps"` `PolyphaseDownsample1D` (the `"conv3d"` methods have no 1-D
    module and are refused). With `padding="circular"` the `"aps"` and
    `"group-aps"` networks give the same logits for every circular shift of
    a signal whose length is a multiple of the total stride.

    Args:
        method: one of `METHODS_1D` (or a `methods.Method` with group mixing).
        num_classes: int, size of the dense head.
        input_shape: `(T, C)`; `T` may be None.
        filters: channels per stage, e.g. `(32, 64, 128)`.
        stem_kernel: odd int, the stem conv's taps.
        padding: `"zeros"`, `"reflect"` or `"circular"` for every pad.
        mixing_width: `"lcm"` or `"min"` (the group module's width).
        name: model name; defaults to `resnet1d_<method>`.

    Returns:
        A functional `keras.Model`, signals to logits (float32 head).

    Example:
    >>> model = resnet1d("group-aps", padding="circular")
    >>> model.output_shape
    (None, 10)
    >>> x = np.random.default_rng(0).normal(size=(2, 40, 1)).astype("float32")
    >>> bool(np.allclose(model(x), model(np.roll(x, 3, axis=1)), atol=1e-5))
    True
    """
    check_channels_last("resnet1d")
    rule = methods.get(method, mixing_width)
    if rule.mixing == "conv3d":
        raise ValueError(
            f"Invalid value for argument `method` in 1-D. Expected one of {list(METHODS_1D)} "
            f"(the 'conv3d' mixing has no 1-D module). Received: method={rule.name!r}"
        )
    check_choice("padding", padding, PADDING_MODES)
    if len(input_shape) != 2:
        raise ValueError(f"Argument `input_shape` must be (steps, channels). Received: input_shape={input_shape!r}")
    if not filters or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in filters):
        raise ValueError(f"Argument `filters` must be positive ints, one per stage. Received: filters={filters!r}")
    inputs = keras.Input(shape=input_shape, name="signal")
    x = _conv_bn(inputs, filters[0], stem_kernel, padding, "stem_conv")
    site = rule.strided_pool(
        keras.layers.MaxPooling1D(3, strides=2, name="stem_pool"), padding=padding, pads=(1, 1),
        after_module=lambda y: _bn_relu(y, "stem_pool"),
    )
    x = site(x)[0]
    for stage, stage_filters in enumerate(filters):
        x = _block(x, stage_filters, stage > 0, rule, padding, f"stage{stage + 1}")
    x = keras.layers.GlobalAveragePooling1D(name="avg_pool")(x)
    x = keras.layers.Dense(num_classes, dtype="float32", name="predictions")(x)
    return keras.Model(inputs, x, name=name or f"resnet1d_{rule.name.replace('-', '_')}")
