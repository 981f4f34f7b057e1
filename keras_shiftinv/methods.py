"""The downsampling methods and the rule each applies at each kind of site.

A *site* is an op that halves a feature map: a strided convolution
(`Conv2D`, `DepthwiseConv2D` or `SeparableConv2D`), a stride-2 max- or
average-pool (pool size 1 included), or the 1x1 strided convolution of a
residual projection shortcut. A `SeparableConv2D` is its depthwise part as
the site (the rule of a `DepthwiseConv2D`, named as the layer) followed by
its pointwise part, a 1x1 `Conv2D` `<name>_pointwise` with the layer's bias
and activation, at the output resolution. Every method is one row of
`RULES`; the three functions of a `Method` turn a description of the original op (a Keras layer, or its
`keras.layers.serialize` dict) into the replacement. The model builders
(`keras_shiftinv.models`) and `keras_shiftinv.convert` both call them, so
they apply the same rule, and adding a method is one edit of `RULES`.

| method       | strided conv (kernel k)              | stride-2 pool               | 1x1 shortcut            |
|--------------|--------------------------------------|-----------------------------|-------------------------|
| `stride`     | the op itself                        | the op itself               | the op itself           |
| `blur`       | conv at stride 1, [after], blur      | pool at stride 1, blur      | blur, conv at stride 1  |
| `aps`        | conv at stride 1, [after], APS       | pool at stride 1, APS       | APS (main phase), conv  |
| `group`      | module, mixing "group", kernel 3     | module, kernel 1, [after]   | module, kernel 1        |
| `conv3d`     | module, mixing "conv3d", kernel 3    | module, kernel 1, [after]   | module, kernel 1        |
| `group-aps`  | as `group`, `align="max_norm"`       | as `group`, aligned         | as `group`, main phase  |
| `conv3d-aps` | as `conv3d`, `align="max_norm"`      | as `conv3d`, aligned        | as `conv3d`, main phase |
| `blur-aps`   | as `aps`, low-pass before APS        | as `aps`, low-pass first    | low-pass, as `aps`      |
| `group-aps-lp`  | low-pass, then as `group-aps`     | low-pass, as `group-aps`    | low-pass, as `group-aps`|
| `conv3d-aps-lp` | low-pass, then as `conv3d-aps`    | low-pass, as `conv3d-aps`   | low-pass, as `conv3d-aps`|

"blur" is `BlurPool2D` (`filt_size`, reflect padding, circular where asked
for), "APS" is `AdaptivePolyphasePool2D`, "module" is `PolyphaseDownsample`
(its `use_bias` and initializers taken from the conv). "low-pass" is
BlurPool's filter at stride 1 (`BlurPool2D(filt_size, stride=1)`, a
shift-equivariant blur, circular where asked for) right before the phase
choice: between the stride-1 op and APS, or before the module (the APS
paper's "APS with LPF"; docs/subpixel.md). A pool of size 1 at
stride 1 is left out. `[after]` is the caller's `after_conv` /
`after_module` (the builders pass BN + ReLU): at a conv site it runs between
the stride-1 conv and the pool (Zhang's ordering) or after the module; at a
pool site it runs only after a module, the one learned layer a pool site
gains. A conv's own activation stays on the conv (after a module: an
`Activation` layer `<name>_act`). The "main phase" is the `phase_index` a
site is called with: the aligned methods (`aps`, `group-aps`, `conv3d-aps`)
subsample on it instead of choosing, as a block's shortcut must on its main
path's grid, or exact circular invariance is lost. The module's kernel sizes
and the BN + ReLU are choices the paper leaves open (the README's "Choices
the paper leaves open").

Padding. `padding` is the mode (`"zeros"`, `"reflect"`, `"circular"`) of
every pad a replacement adds. The original op's own pads are either given
(`pads=((top, bottom), (left, right))`: the op is `"valid"` and the caller
pads before it, as an explicit `ZeroPadding2D` does; the replacement pads
itself, so the caller drops that pad) or taken from its `"same"` padding,
computed from the static input size (as even where unknown). A stride-1
replacement keeps the strided op's top/left pad, so with a blur of size 1
(plain subsampling) it reproduces the strided op exactly. A module always
gives `ceil(H/2)` rows, as a `"same"` op does; a `"valid"` op that gives
fewer (an odd side, no pads) has no exact module replacement.

API. `get(method)` returns the method's `Method`; its `strided_conv(op,
...)`, `strided_pool(op, ...)` and `shortcut(op, ...)` check the op and
return a `Site`, which builds the replacement when called on the site's
input: `y, phase_index = site(x)` or `site(x, phase_index=index)`. The
layer that takes over the op's weights (the stride-1 or strided copy, or
the module) is named as the op (or `name=`); `site.layers` lists all the
layers the site created.

Ranks. The rules also take `Conv1D` / `Conv3D` and `MaxPooling` /
`AveragePooling` 1D/3D ops, and 2-D ops with per-axis strides such as
(1, 2): every stride 1 or 2, at least one 2. `RankLayers` picks the rank's
layers (`BlurPool1D`, `AdaptivePolyphasePool3D`, `PolyphaseDownsampleMixed2D`,
`SpatialPadding1D`, ...); a stride-(2, 2) 2-D site keeps the 2-D layers.
Those modules have group mixing only, so `"conv3d"` methods refuse them.

Example:
>>> from keras_shiftinv import methods
>>> rule = methods.get("aps")
>>> conv = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="down")
>>> site = rule.strided_conv(conv, padding="circular")
>>> x = keras.Input((32, 32, 3))
>>> y, phase_index = site(x)
>>> [layer.__class__.__name__ for layer in site.layers]
['SpatialPadding2D', 'Conv2D', 'AdaptivePolyphasePool2D']
>>> tuple(y.shape), tuple(phase_index.shape)
((None, 16, 16, 8), (None,))
>>> proj = keras.layers.Conv2D(8, 1, strides=2, name="proj")
>>> shortcut, _ = rule.shortcut(proj, padding="circular")(x, phase_index=phase_index)
>>> tuple(shortcut.shape)
(None, 16, 16, 8)
>>> signal_site = rule.strided_conv(keras.layers.Conv1D(8, 5, strides=2, padding="same"), padding="circular")
>>> y, _ = signal_site(keras.Input((40, 1)))
>>> [layer.__class__.__name__ for layer in signal_site.layers], tuple(y.shape)
(['SpatialPadding1D', 'Conv1D', 'AdaptivePolyphasePool1D'], (None, 20, 8))
"""

import dataclasses
import functools

import keras

from keras_shiftinv.layers import AdaptivePolyphasePool1D
from keras_shiftinv.layers import AdaptivePolyphasePool2D
from keras_shiftinv.layers import AdaptivePolyphasePool3D
from keras_shiftinv.layers import AdaptivePolyphasePoolMixed2D
from keras_shiftinv.layers import BlurPool1D
from keras_shiftinv.layers import BlurPool2D
from keras_shiftinv.layers import BlurPool3D
from keras_shiftinv.layers import BlurPoolMixed2D
from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import MIXING_WIDTHS
from keras_shiftinv.layers import PADDING_MODES
from keras_shiftinv.layers import PolyphaseDownsample1D
from keras_shiftinv.layers import PolyphaseDownsample3D
from keras_shiftinv.layers import PolyphaseDownsampleMixed2D
from keras_shiftinv.layers import SpatialPadding1D
from keras_shiftinv.layers import SpatialPadding2D
from keras_shiftinv.layers import SpatialPadding3D
from keras_shiftinv.layers import check_choice
from keras_shiftinv.layers import normalize_pads
from keras_shiftinv.layers import normalize_pads_nd

CONV_CLASSES = (
    keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
    keras.layers.Conv1D, keras.layers.Conv3D,
)
POOL_CLASSES = (
    keras.layers.MaxPooling2D, keras.layers.AveragePooling2D,
    keras.layers.MaxPooling1D, keras.layers.AveragePooling1D,
    keras.layers.MaxPooling3D, keras.layers.AveragePooling3D,
)
CROPPING = {1: keras.layers.Cropping1D, 2: keras.layers.Cropping2D, 3: keras.layers.Cropping3D}


@dataclasses.dataclass(frozen=True)
class RankLayers:
    """The layers a rule builds for a site of `rank` spatial axes and these `strides`."""

    rank: int
    strides: tuple

    @property
    def square(self):
        """Stride 2 on both axes of an image: the 2-D layers (`PolyphaseDownsample`, ...)."""
        return self.rank == 2 and self.strides == (2, 2)

    def module(self, filters, **kwargs):
        if self.square:
            return PolyphaseDownsample(filters, **kwargs)
        if self.rank == 1:
            return PolyphaseDownsample1D(filters, **kwargs)
        cls = PolyphaseDownsample3D if self.rank == 3 else PolyphaseDownsampleMixed2D
        return cls(filters, strides=self.strides, **kwargs)

    def aps(self, **kwargs):
        if self.square:
            return AdaptivePolyphasePool2D(**kwargs)
        if self.rank == 1:
            return AdaptivePolyphasePool1D(**kwargs)
        cls = AdaptivePolyphasePool3D if self.rank == 3 else AdaptivePolyphasePoolMixed2D
        return cls(strides=self.strides, **kwargs)

    def blur(self, filt_size, **kwargs):
        if self.square:
            return BlurPool2D(filt_size, **kwargs)
        if self.rank == 1:
            return BlurPool1D(filt_size, **kwargs)
        cls = BlurPool3D if self.rank == 3 else BlurPoolMixed2D
        return cls(filt_size, strides=self.strides, **kwargs)

    def pad(self, pads, **kwargs):
        cls = {1: SpatialPadding1D, 2: SpatialPadding2D, 3: SpatialPadding3D}[self.rank]
        return cls(pads if self.rank != 1 else pads[0], **kwargs)


def rank_layers(config):
    """`RankLayers` of a site's layer config (its `strides`, one per spatial axis)."""
    strides = tuple(config["strides"])
    return RankLayers(len(strides), strides)


class Site:
    """The replacement of one downsampling site; builds its layers when called.

    Call it once, on the site's input: `y, phase_index = site(x)`, or
    `site(x, phase_index=index)` to subsample on a phase chosen elsewhere
    (used by the aligned methods, ignored by the others). The returned
    `phase_index` is the int32 `(B,)` phase the site subsampled on (None for
    the methods that do not choose one). After the call, `layers` lists the
    layers the site created, in order; the one that carries the original
    op's weights (the conv, or the module) has the original op's name.
    """

    def __init__(self, build, description):
        self._build = build
        self.description = description  # (class, config) of the original op
        self.layers = []

    def __call__(self, x, phase_index=None):
        if self.layers:
            raise ValueError(
                "A Site is built once, for one place in a graph; ask the rule "
                f"for a new one. Received: layers={[layer.name for layer in self.layers]}"
            )
        return self._build(self, x, phase_index)

    def add(self, layer):
        self.layers.append(layer)
        return layer


@dataclasses.dataclass(frozen=True)
class Method:
    """One downsampling method: what replaces each kind of site.

    Args:
        name: the method's name, as `method=` takes it.
        pool: `"blur"` or `"aps"`: the op runs at stride 1, then this pool;
            None for the module methods and `"stride"`.
        mixing: `"group"` or `"conv3d"`: a `PolyphaseDownsample` with this
            mixing replaces the op; None otherwise.
        align: `"max_norm"` for the aligned modules; None otherwise.
        module_kernel_size: the module's kernel on the half-resolution grid
            at strided-conv sites (pool and shortcut sites use 1).
        mixing_width: the module's `mixing_width`, `"lcm"` (the paper) or
            `"min"` (`get(name, mixing_width="min")`); only `"group"` mixing
            reads it.
        lowpass: blur at stride 1 (BlurPool's filter, `filt_size`) right
            before the phase choice: before APS, or before the module.
    """

    name: str
    pool: str = None
    mixing: str = None
    align: str = None
    module_kernel_size: int = 3
    mixing_width: str = "lcm"
    lowpass: bool = False

    @property
    def chooses_phase(self):
        """Whether the method picks a phase per image (and shares it)."""
        return self.pool == "aps" or self.align is not None

    def strided_conv(self, conv, *, padding="zeros", name=None, pads=None, after_conv=None, filt_size=4):
        """The rule for a strided `Conv2D` / `DepthwiseConv2D` / `SeparableConv2D`.

        Args:
            conv: the original layer (or its `keras.layers.serialize` dict),
                strides 2, dilation 1, channels last; never called here.
            padding: mode of every pad the replacement adds.
            name: name of the layer that takes the conv's weights; defaults
                to the conv's name; other layers get `name` + a suffix.
            pads: `((top, bottom), (left, right))` the original pads before a
                `"valid"` conv; None: from the conv's own padding.
            after_conv: optional callable applied to the conv's (or module's)
                output, before any pool (the builders pass BN + ReLU).
            filt_size: the blur's size (`"blur"` only).

        Returns:
            A `Site`.
        """
        return self._site(self._conv_site, conv, CONV_CLASSES, padding, name, pads, after_conv, filt_size)

    def shortcut(self, conv, *, padding="zeros", name=None, pads=None, after_conv=None, filt_size=4):
        """The rule for a residual block's 1x1 strided projection shortcut.

        The pool (if any) comes before the 1x1 conv, and the aligned methods
        reuse the `phase_index` the site is called with. Arguments as in
        `strided_conv`.
        """
        site = self._site(self._shortcut_site, conv, CONV_CLASSES, padding, name, pads, after_conv, filt_size)
        kernel_size = site.description[1]["kernel_size"]
        if set(kernel_size) != {1}:
            raise ValueError(
                f"A shortcut site is a 1x1 convolution; layer '{site.description[1]['name']}' "
                f"is not. Received: kernel_size={kernel_size}"
            )
        return site

    def strided_pool(self, pool, *, padding="zeros", name=None, pads=None, after_module=None, filt_size=4):
        """The rule for a stride-2 `MaxPooling2D` / `AveragePooling2D`.

        Args:
            pool: the original layer (or its `keras.layers.serialize` dict).
            padding, name, pads, filt_size: as in `strided_conv`.
            after_module: optional callable applied after the module that
                replaces the pool (module methods only; the builders pass
                BN + ReLU).

        Returns:
            A `Site`.
        """
        return self._site(self._pool_site, pool, POOL_CLASSES, padding, name, pads, after_module, filt_size)

    def _site(self, build, op, classes, padding, name, pads, after, filt_size):
        """Checks the arguments now; `build` runs when the site is called."""
        cls, config = _describe(op, classes)
        check_choice("padding", padding, PADDING_MODES)
        if self.mixing == "conv3d" and not rank_layers(config).square:
            raise ValueError(
                f"Method {self.name!r} mixes the 4 phases of a stride-(2, 2) image site; layer "
                f"'{config['name']}' has strides {config['strides']} (its module has group mixing "
                f"only: use 'group' or 'group-aps'). Received: method={self.name!r}"
            )
        if pads is not None:
            rank = len(config["strides"])
            pads = normalize_pads(pads) if rank == 2 else normalize_pads_nd(pads, rank)
            if config["padding"] != "valid":
                raise ValueError(
                    f"Explicit `pads` need a 'valid' layer; '{config['name']}' pads itself. "
                    f"Received: padding={config['padding']!r}"
                )
        options = {"padding": padding, "name": name or config["name"], "pads": pads, "filt_size": filt_size}
        return Site(functools.partial(build, cls=cls, config=config, after=after, **options), (cls, config))

    def _shortcut_site(self, site, x, phase, **options):
        return self._conv_site(site, x, phase, pool_first=True, **options)

    def _conv_site(self, site, x, phase, *, cls, config, padding, name, pads, after, filt_size, pool_first=False):
        if cls is keras.layers.SeparableConv2D:
            # The depthwise part is the site; the pointwise part follows it.
            depthwise, pointwise = _separable_parts(config, name)
            y, phase = self._conv_site(
                site, x, phase, cls=keras.layers.DepthwiseConv2D, config=depthwise, padding=padding,
                name=name, pads=pads, after=None, filt_size=filt_size, pool_first=pool_first,
            )
            y = site.add(keras.layers.Conv2D.from_config(pointwise))(y)
            return (after(y) if after else y), phase
        after = after or (lambda y: y)
        if self.mixing is not None:
            filters = config.get("filters") or x.shape[-1] * config["depth_multiplier"]
            kernel = self.module_kernel_size if not pool_first else 1
            y, phase = self._module(site, x, phase, filters, kernel, padding, name, config, filt_size)
            activation = config.get("activation", "linear")
            if activation not in (None, "linear"):
                y = site.add(keras.layers.Activation(activation, name=f"{name}_act"))(y)
            return after(y), phase
        if pool_first:
            x = _add_pad(site, x, pads, padding, name)
            pads = None
            x, phase = self._pool(site, x, phase, padding, name, filt_size)
        x = _pad_and_apply(site, x, cls, config, padding, name, pads, self.pool is None)
        x = after(x)
        if not pool_first:
            x, phase = self._pool(site, x, phase, padding, name, filt_size)
        return x, phase

    def _pool_site(self, site, x, phase, *, cls, config, padding, name, pads, after, filt_size):
        if self.mixing is not None:
            y, phase = self._module(site, x, phase, x.shape[-1], 1, padding, name, {}, filt_size)
            return (after(y) if after else y), phase
        if self.pool is None or set(config["pool_size"]) != {1}:
            # A pool of size 1 at stride 1 is the identity: leave it out.
            x = _pad_and_apply(site, x, cls, config, padding, name, pads, self.pool is None)
        return self._pool(site, x, phase, padding, name, filt_size)

    def _module(self, site, x, phase, filters, kernel_size, padding, name, config, filt_size):
        x = self._lowpass(site, x, padding, name, filt_size)
        module = site.add(rank_layers(site.description[1]).module(
            filters,
            mixing=self.mixing,
            kernel_size=kernel_size,
            padding=padding,
            align=self.align,
            return_index=self.align is not None and phase is None,
            use_bias=config.get("use_bias", False),
            kernel_initializer=config.get("kernel_initializer", "he_normal"),
            bias_initializer=config.get("bias_initializer", "zeros"),
            mixing_width=self.mixing_width,
            name=name,
        ))
        if self.align is None:
            return module(x), None
        return module(x) if phase is None else (module(x, phase_index=phase), phase)

    def _pool(self, site, x, phase, padding, name, filt_size):
        layers = rank_layers(site.description[1])
        if self.pool == "blur":
            blur = layers.blur(filt_size, padding=blur_padding(padding), name=f"{name}_blur")
            return site.add(blur)(x), None
        if self.pool == "aps":
            x = self._lowpass(site, x, padding, name, filt_size)
            aps = site.add(layers.aps(
                padding=padding, return_index=phase is None, name=f"{name}_aps"
            ))
            return aps(x) if phase is None else (aps(x, phase_index=phase), phase)
        return x, None

    def _lowpass(self, site, x, padding, name, filt_size):
        if not self.lowpass:
            return x
        config = site.description[1]
        if not rank_layers(config).square:
            raise ValueError(
                f"Method {self.name!r} low-passes before the phase choice at stride-(2, 2) image sites "
                f"only; layer '{config['name']}' has strides {tuple(config['strides'])}. "
                f"Received: method={self.name!r}"
            )
        blur = BlurPool2D(filt_size, stride=1, padding=blur_padding(padding), name=f"{name}_lowpass")
        return site.add(blur)(x)


RULES = (
    Method("stride"),
    Method("blur", pool="blur"),
    Method("group", mixing="group"),
    Method("conv3d", mixing="conv3d"),
    Method("aps", pool="aps"),
    Method("group-aps", mixing="group", align="max_norm"),
    Method("conv3d-aps", mixing="conv3d", align="max_norm"),
    Method("blur-aps", pool="aps", lowpass=True),
    Method("group-aps-lp", mixing="group", align="max_norm", lowpass=True),
    Method("conv3d-aps-lp", mixing="conv3d", align="max_norm", lowpass=True),
)
METHODS = tuple(rule.name for rule in RULES)
# The paper's seven (its Table 1): what table1, segment and finetune run unless told otherwise; the
# low-pass rows (docs/subpixel.md) are opt-in there (`methods=`, `--methods`).
PAPER_METHODS = tuple(rule.name for rule in RULES if not rule.lowpass)


def get(method, mixing_width=None):
    """Returns the `Method` named `method` (a `Method` passes through).

    Args:
        method: one of `METHODS`, or a `Method`.
        mixing_width: None (keep the rule's, `"lcm"` for the named ones),
            `"lcm"` or `"min"`: the group module's width (`PolyphaseDownsample`).

    Example:
    >>> get("group-aps")
    Method(name='group-aps', pool=None, mixing='group', align='max_norm', module_kernel_size=3, mixing_width='lcm', lowpass=False)
    >>> get("group", mixing_width="min").mixing_width
    'min'
    """
    if isinstance(method, Method):
        rule = method
    else:
        check_choice("method", method, METHODS)
        rule = RULES[METHODS.index(method)]
    if mixing_width is None or mixing_width == rule.mixing_width:
        return rule
    check_choice("mixing_width", mixing_width, MIXING_WIDTHS)
    return dataclasses.replace(rule, mixing_width=mixing_width)


def blur_padding(padding):
    """The blur's pad mode: Zhang's reflection, but circular where asked for."""
    return "circular" if padding == "circular" else "reflect"


def same_pads(kernel_size, stride, size):
    """The `(before, after)` pad of a `"same"` op along one axis (as TF's SAME).

    `size=None` (unknown) is taken as even.

    Example:
    >>> same_pads(3, 2, 224), same_pads(3, 2, 7), same_pads(3, 1, None)
    ((0, 1), (1, 1), (1, 1))
    """
    size = 2 * stride if size is None else size
    total = max((-(-size // stride) - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


def _describe(op, classes):
    """(class, config) of a layer or of its `keras.layers.serialize` dict."""
    if isinstance(op, dict) and "class_name" in op:
        op = keras.layers.deserialize(op)
    if not isinstance(op, classes):
        raise TypeError(
            f"Expected a layer of type {[cls.__name__ for cls in classes]} or its "
            f"serialized dict. Received: layer={op!r}"
        )
    config = op.get_config()
    strides = tuple(config["strides"] or config["pool_size"])  # a pool's strides=None is its pool size
    config["strides"] = strides
    rank = len(strides)
    # Every axis 1 or 2, at least one 2; 2-D ops usually (2, 2), but (1, 2) / (2, 1) are sites too.
    valid = {"strides": set(strides) <= {1, 2} and 2 in strides, "dilation_rate": True}
    valid["dilation_rate"] = set(config.get("dilation_rate", (1,) * rank)) == {1}
    for key in ("strides", "dilation_rate"):
        if key in config and not valid[key]:
            raise ValueError(
                f"Layer '{config['name']}' is not a stride-2 downsampling site this "
                f"package can replace. Received: {key}={tuple(config[key])}"
            )
    if config.get("data_format") not in (None, "channels_last"):
        raise ValueError(
            f"Layer '{config['name']}' must be channels_last. "
            f"Received: data_format={config['data_format']!r}"
        )
    return type(op), config


def _separable_parts(config, name):
    """A `SeparableConv2D` config as `(depthwise, pointwise)` layer configs.

    The depthwise part (named `name`, no bias, no activation) is the strided
    op; the pointwise part (`<name>_pointwise`, a 1x1 `Conv2D` with the
    layer's bias and activation) follows at the output resolution, as
    subsampling commutes with a 1x1 convolution.
    """
    shared = {key: config[key] for key in ("trainable", "dtype", "data_format") if key in config}
    depthwise = {
        **shared,
        "name": name,
        "kernel_size": config["kernel_size"],
        "strides": config["strides"],
        "padding": config["padding"],
        "depth_multiplier": config["depth_multiplier"],
        "dilation_rate": config["dilation_rate"],
        "use_bias": False,
        "depthwise_initializer": config["depthwise_initializer"],
        "depthwise_regularizer": config["depthwise_regularizer"],
        "depthwise_constraint": config["depthwise_constraint"],
    }
    pointwise = {
        **shared,
        "name": f"{name}_pointwise",
        "filters": config["filters"],
        "kernel_size": 1,
        "activation": config["activation"],
        "use_bias": config["use_bias"],
        "kernel_initializer": config["pointwise_initializer"],
        "bias_initializer": config["bias_initializer"],
        "kernel_regularizer": config["pointwise_regularizer"],
        "bias_regularizer": config["bias_regularizer"],
        "activity_regularizer": config["activity_regularizer"],
        "kernel_constraint": config["pointwise_constraint"],
        "bias_constraint": config["bias_constraint"],
    }
    return depthwise, pointwise


def _pad_and_apply(site, x, cls, config, padding, name, pads, strided):
    """The original op, at stride 2 (`strided`) or 1, padded as the original.

    A stride-1 copy keeps the strided op's top/left pads and pads `k - 1`
    in all, so subsampling its output at phase 0 gives the strided op.
    """
    kernel = tuple(config.get("kernel_size") or config["pool_size"])
    layers = rank_layers(config)
    config = {**config, "name": name, "strides": layers.strides if strided else (1,) * layers.rank}
    same = pads is None and config["padding"] == "same"
    if same and not (strided and padding == "zeros"):
        per_axis = [same_pads(k, s, n) for k, s, n in zip(kernel, layers.strides, x.shape[1:-1])]
        pads = per_axis if strided else [(b, k - 1 - b) for (b, _), k in zip(per_axis, kernel)]
        config["padding"] = "valid"
        if padding == "zeros" and cls in POOL_CLASSES:
            # Keras's "same" pools ignore padded cells; keep that, and crop
            # the rows and columns the strided pool's grid starts after.
            config["padding"] = "same"
            crop = [(k - 1) // 2 - b for (b, _), k in zip(pads, kernel)]
            pads = None
            y = site.add(cls.from_config(config))(x)
            if any(crop):
                cropping = tuple((c, 0) for c in crop) if layers.rank > 1 else (crop[0], 0)
                y = site.add(CROPPING[layers.rank](cropping, name=f"{name}_crop"))(y)
            return y
    x = _add_pad(site, x, pads, padding, name, layers)
    return site.add(cls.from_config(config))(x)


def _add_pad(site, x, pads, padding, name, layers=None):
    if pads is None or not any(p for pair in pads for p in pair):
        return x
    layers = layers or rank_layers(site.description[1])
    return site.add(layers.pad(tuple(map(tuple, pads)), mode=padding, name=f"{name}_pad"))(x)
