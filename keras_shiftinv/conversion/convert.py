"""`convert`: rewrite every downsampling site of a functional Keras model."""

import dataclasses

import keras
import numpy as np
from keras import tree

from keras_shiftinv import methods
from keras_shiftinv._renames import renamed_argument
from keras_shiftinv.conversion import calibrate as calibration
from keras_shiftinv.conversion import fit
from keras_shiftinv.conversion import graph
from keras_shiftinv.conversion import invariance
from keras_shiftinv.conversion.report import ConversionReport
from keras_shiftinv.conversion.report import SiteRecord
from keras_shiftinv.errors import UsageError
from keras_shiftinv.layers import PolyphaseDownsample
from keras_shiftinv.layers import SpatialPadding1D
from keras_shiftinv.layers import SpatialPadding2D
from keras_shiftinv.layers import SpatialPadding3D
from keras_shiftinv.layers import PolyphaseDownsampleND

PADDINGS = (None, "circular")
SAME_PADDED = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.Conv1D,
    keras.layers.Conv3D,
    keras.layers.MaxPooling1D,
    keras.layers.AveragePooling1D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling3D,
)
SPATIAL_PADDINGS = {1: SpatialPadding1D, 2: SpatialPadding2D, 3: SpatialPadding3D}


def convert(
    model, method=None, *, padding=None, filt_size=4, strict=True, mixing_width="lcm",
    calibration_data=None, downsample=None,
):
    """Replaces every downsampling site of a functional model by one method.

    A site is a layer that halves the map: a strided `Conv2D` (any kernel;
    `"same"`, or `"valid"` after an explicit zero padding, which other
    layers may read too), `DepthwiseConv2D` or `SeparableConv2D` (its
    depthwise part is the site, its pointwise part follows), or a stride-2
    `MaxPooling2D` / `AveragePooling2D` (pool size 1 included), at any depth
    of nested functional or Sequential models; likewise strided `Conv1D` /
    `Conv3D`, `MaxPooling1D/3D` / `AveragePooling1D/3D` and 2-D ops with
    per-axis strides such as (1, 2) (docs/design.md, "Other ranks": their
    modules have group mixing only). Each is rewritten by the rule
    of `keras_shiftinv.methods` for `method` (the same rules the model
    builders use). Every layer not replaced keeps its name and weights.
    `"blur"` and `"aps"` keep the strided conv's kernel at stride 1;
    `"group"` / `"conv3d"` modules start from a least-squares fit of
    `PolyphaseDownsample.fused_kernel` to the strided op written as one
    convolution over the phase-major `4*C` channels on the half grid
    (kernel: the smallest that holds every tap), and the report gives each
    site's relative fit error. With `"-aps"` methods, sites whose outputs
    meet at a merge node (a residual `Add`, a `Concatenate`) share one
    phase, chosen on the longer (main) branch, wherever they read one grid.

    It works in three passes: it finds every site of every nested graph
    (and refuses, when `strict`, before building anything), builds the new
    graph (an error there is one line naming the layer), and only then fits
    the modules' weights.

    `convert(model, "blur", filt_size=1)` computes the original function
    (a blur of size 1 is plain subsampling). `padding="circular"` also
    turns every pad of the model circular (`ZeroPadding2D`, `"same"` convs
    and pools, `ops.pad` nodes) and pads `"valid"` sites so that they give
    `ceil(H/2)`. With it, an `"aps"`, `"group-aps"` or `"conv3d-aps"`
    model is exactly invariant to circular shifts of inputs whose sides are
    multiples of the total stride where `report.circular_invariant` is
    True; where it is False (a stride-1 `"valid"` conv that shrinks the map,
    a crop, a flatten, ...), `report.invariance_breaks` names the layers
    (docs/conversion.md).

    Args:
        model: a functional or built Sequential `keras.Model`.
        method: one of `keras_shiftinv.methods.METHODS`.
        padding: None (keep the model's paddings) or `"circular"`.
        filt_size: the blur's size (`"blur"` only); 1 is plain subsampling.
        strict: if True (default), a site that cannot be converted (stride
            4, a subclassed layer that downsamples inside, an output size the
            module cannot give) raises; if False it is kept as it is and
            listed as refused in the report.
        mixing_width: `"lcm"` (default, the paper) or `"min"`, the group
            module's width (`PolyphaseDownsample`); `"lcm"` is refused where
            it exceeds 4 x max(C_in, C_out).
        calibration_data: None, or a few hundred unlabelled inputs (a numpy
            array of images, a `tf.data.Dataset` of images or of
            `(images, labels)`, or an iterable of batches). Then, in the order
            the converted model runs them, every module is refitted by
            least squares to reproduce the original strided op on the
            activations that reach it (its merge, then its mixing kernel and
            merge alternately), and every `BatchNormalization`'s
            moving statistics are set to those of its calibration inputs
            (`keras_shiftinv.conversion.calibrate`, docs/conversion.md,
            "Calibration and distillation"). The report's
            `calibration_error` gives each site's error on those
            activations, `calibration_error_before` the white-noise fit's.
        downsample: the old name of `method` (deprecated).

    Returns:
        `(new_model, report)`: a functional `keras.Model` and a
        `ConversionReport` (print it for a table of the sites).

    Raises:
        ConversionError: (a `ValueError`) a site that cannot convert (when
            `strict`), or a layer the new graph cannot take; one line, and
            its `report` lists the sites (`fits_run == 0`).

    Example:
    >>> inputs = keras.Input((32, 32, 3))
    >>> x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="down")(inputs)
    >>> model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    >>> new_model, report = convert(model, "blur", filt_size=1)
    >>> [layer.__class__.__name__ for layer in new_model.layers[1:]]
    ['SpatialPadding2D', 'Conv2D', 'BlurPool2D', 'GlobalAveragePooling2D']
    >>> x = np.random.default_rng(0).normal(size=(2, 32, 32, 3))
    >>> bool(np.allclose(new_model(x), model(x), atol=1e-6))
    True
    >>> report.counts()
    {'found': 1, 'replaced': 1, 'kept': 0, 'refused': 0}
    >>> aligned, report = convert(model, "aps", padding="circular")
    >>> report.circular_invariant
    True
    """
    method = renamed_argument("downsample", downsample, "method", method, None, "convert")
    if method is None:
        raise TypeError("convert() needs a downsampling `method`, one of "
                        f"{list(methods.METHODS)}. Received: method=None")
    rule = methods.get(method, mixing_width)
    if padding not in PADDINGS:
        raise ValueError(
            "Argument `padding` must be None (keep the model's paddings) or "
            f"'circular'. Received: padding={padding!r}"
        )
    if graph.graph_of(model) is None:
        raise TypeError(
            "convert() needs a functional or built Sequential keras.Model: a "
            "subclassed model has no graph to rewrite. "
            f"Received: model={type(model).__name__}"
        )
    batches = None if calibration_data is None else calibration.calibration_batches(calibration_data)
    converter = _Converter(rule, padding == "circular", filt_size)
    converter.plan(model, prefix="")  # every site of every nested graph; nothing built yet
    if not converter.sites:
        raise ValueError(
            "convert() found no downsampling site (a strided Conv1D/2D/3D, DepthwiseConv2D or "
            "SeparableConv2D, or a stride-2 MaxPooling / AveragePooling 1D/2D/3D). "
            f"Received: model={model.name!r}"
        )
    refused = [site for site in converter.sites if site.refusal]
    if strict and refused:
        reasons = "; ".join(f"'{site.path}': {site.reason}" for site in converter.records(refused))
        raise ConversionError(
            f"convert() cannot convert {len(refused)} site(s): {reasons}. "
            "Pass strict=False to keep them as they are. "
            f"Received: model={model.name!r}, method={rule.name!r}",
            converter.report(model, padding),
        )
    try:
        new_model = converter.build(model, prefix="")  # the new graph; no weights fitted yet
    except _BuildError as error:
        raise ConversionError(
            f"convert() could not rebuild '{error.path}' ({type(error.layer).__name__}) in the "
            f"converted graph: {_one_line(error.cause)}. Received: model={model.name!r}, "
            f"method={rule.name!r}",
            converter.report(model, padding),
        ) from error.cause
    breaks = None
    if converter.circular and rule.chooses_phase:
        breaks = invariance.invariance_breaks(new_model)
    converter.fit()
    if batches is not None:
        converter.calibrate(new_model, batches)
    report = converter.report(model, padding)
    if breaks is not None:
        report.circular_invariant = not breaks
        report.invariance_breaks = breaks
    return new_model, report


class ConversionError(UsageError):
    """A model `convert` refuses; `report` lists its sites (nothing was fitted)."""

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


class _BuildError(Exception):
    """An error while building the new graph, at one layer (see `convert`)."""

    def __init__(self, path, layer, cause):
        super().__init__(path)
        self.path, self.layer, self.cause = path, layer, cause


class _Converter:
    """Rewrites one graph (and, recursively, the graphs nested in it).

    In three passes: `plan` finds every site of every graph (and why one
    cannot convert), `build` writes the new graph (weights of the layers it
    copies included), `fit` gives the replacements their weights (the
    least-squares fits of the modules), so every refusal comes before a fit.
    """

    def __init__(self, rule, circular, filt_size):
        self.rule = rule
        self.circular = circular
        self.filt_size = filt_size
        self.plans = {}  # id(graph) -> (nodes, readers, {id(node): Site})
        self.sites = []  # every Site, in graph order (nested graphs where they are called)
        self.paddings = 0
        self.notes = []
        self.fits_run = 0
        self.clones = {}  # id(original op) -> its copy (shared layers stay shared)
        self.rewritten = []  # sites whose replacement waits for its weights

    # --- pass 1: the plan ----------------------------------------------------

    def plan(self, model, prefix):
        network = graph.graph_of(model)
        if id(network) in self.plans:
            return
        nodes = graph.ordered_nodes(network)
        readers = graph.consumers(nodes)
        sites = self._find_sites(nodes, prefix)
        graph.pair_sites(nodes, sites)
        if self.rule.chooses_phase:
            graph.unite_sites(nodes, sites, self._rewrites)
        self.plans[id(network)] = (nodes, readers, sites)
        for node in nodes:
            if id(node) in sites:
                self.sites.append(sites[id(node)])
            elif graph.graph_of(node.operation) is not None:
                self.plan(node.operation, f"{prefix}{node.operation.name}/")

    def _rewrites(self, site):
        return not site.refusal and self.rule.name != "stride"

    # --- pass 2: the new graph -----------------------------------------------

    def build(self, model, prefix):
        network = graph.graph_of(model)
        nodes, readers, sites = self.plans[id(network)]
        values = {}
        inputs = tree.map_structure(
            lambda t: self._input_like(t, values), network._inputs_struct
        )
        absorbed = self._absorbed_pads(sites, readers)
        phases = {}
        pending = [node for node in nodes if id(node) not in absorbed]
        while pending:
            waiting = []
            for node in pending:
                site = sites.get(id(node))
                try:
                    if site is not None and self._rewrites(site):
                        if not self._rewrite_site(site, values, phases):
                            waiting.append(node)
                    elif all(id(t) in values for t in node.input_tensors):
                        self._copy_node(node, values, prefix)
                    else:
                        waiting.append(node)
                except _BuildError:
                    raise
                except Exception as error:  # a Keras error in the new graph: named by `convert`
                    raise _BuildError(f"{prefix}{node.operation.name}", node.operation, error) from error
            if len(waiting) == len(pending):
                raise ValueError(  # should not happen: a cycle or a missing tensor
                    "convert() could not order the graph. "
                    f"Received: nodes={[n.operation.name for n in waiting]}"
                )
            pending = waiting
        outputs = tree.map_structure(lambda t: values[id(t)], network._outputs_struct)
        return keras.Model(inputs, outputs, name=model.name)

    def _absorbed_pads(self, sites, readers):
        """Explicit pad nodes that every reader (a rewritten site) pads for itself."""
        absorbed = set()
        for site in sites.values():
            if site.pad_node is None or not self._rewrites(site):
                continue
            pad_readers = readers.get(id(site.pad_node.outputs[0]), [])
            if all(
                id(reader) in sites
                and sites[id(reader)].pad_node is site.pad_node
                and self._rewrites(sites[id(reader)])
                for reader in pad_readers
            ):
                absorbed.add(id(site.pad_node))
        return absorbed

    def _input_like(self, tensor, values):
        name = tensor._keras_history.operation.name
        new = keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=name)
        values[id(tensor)] = new
        return new

    def _find_sites(self, nodes, prefix):
        sites = {}
        for node in nodes:
            op = node.operation
            if not isinstance(op, keras.layers.Layer) or graph.graph_of(op) is not None:
                continue
            path = prefix + op.name
            if max(graph.strides_of(op)) > 1 and graph.kernel_of(op)[0] is not None:
                site = graph.describe_site(node, path)
                strides = graph.strides_of(op)
                if not site.refusal and self.rule.mixing == "conv3d" and strides != (2, 2):
                    site.refusal = (
                        f"strides {strides}: the 'conv3d' mixing needs a stride-(2, 2) image site "
                        "(use 'group' or 'group-aps')"
                    )
                if not site.refusal:
                    self._settle_pads(site, node)
                sites[id(node)] = site
            elif graph.hidden_sites(op):
                site = graph.Site(node, op, path, type(op).__name__, (0, 0), 0)
                site.refusal = (
                    "a subclassed layer that downsamples inside "
                    f"({', '.join(graph.hidden_sites(op))}); convert cannot see into it"
                )
                sites[id(node)] = site
            elif self.circular and _pads_inside(op):
                self.notes.append(
                    f"'{path}' ({type(op).__name__}) pads inside; its padding is left as it is"
                )
        return sites

    def _settle_pads(self, site, node):
        """Keeps an explicit pad only where the rewrite must see through it."""
        module = self.rule.mixing is not None
        if site.pad_node is not None and not (module or self.circular):
            # blur / aps keep the model's own pad and run the layer "valid".
            site.pad_node, site.pads = None, ((0, 0), (0, 0))
            site.input_tensor = node.input_tensors[0]
        if module and self.rule.name != "stride" and not self.circular:
            # With circular padding every site gives ceil(H/2), as blur / aps do.
            strides = graph.strides_of(site.layer)
            out = node.outputs[0].shape[1:-1]
            half = tuple(None if n is None else -(-n // s) for n, s in zip(site.input_tensor.shape[1:-1], strides))
            if None not in out and None not in half and tuple(out) != half:
                site.refusal = (
                    f"its output is {tuple(out)}; the module gives ceil(H/2) x ceil(W/2) = {half}"
                )

    def _copy_node(self, node, values, prefix):
        """Calls a copy of the node's op (with weights) on the new tensors."""
        op = node.operation
        args, kwargs = node.arguments.fill_in(values)
        if graph.graph_of(op) is not None:
            key = id(op)
            if key not in self.clones:
                self.clones[key] = self.build(op, prefix=f"{prefix}{op.name}/")
            outputs = self.clones[key](*args, **kwargs)
        elif self.circular and graph.explicit_pads(node) is not None:
            pads = graph.explicit_pads(node)
            self.paddings += 1
            outputs = SpatialPadding2D(pads, mode="circular", name=op.name)(args[0])
        elif isinstance(op, keras.layers.Layer):
            outputs = self._copy_layer(op, args, kwargs)
        else:
            outputs = op(*args, **kwargs)  # a stateless op-node
        for old, new in zip(node.outputs, tree.flatten(outputs)):
            values[id(old)] = new

    def _copy_layer(self, layer, args, kwargs):
        key = id(layer)
        config = layer.get_config()
        same = (
            self.circular
            and isinstance(layer, SAME_PADDED)
            and config.get("padding") == "same"
        )
        if same:
            config["padding"] = "valid"
        if key not in self.clones:
            self.clones[key] = type(layer).from_config(config)
        copy = self.clones[key]
        if same:
            kernel = graph.kernel_of(layer)
            rate = tuple(getattr(layer, "dilation_rate", None) or (1,) * len(kernel))
            reach = [(k - 1) * d for k, d in zip(kernel, rate)]
            pads = tuple(((r // 2, r - r // 2)) for r in reach)
            if any(any(pair) for pair in pads):
                self.paddings += 1
                pad_layer = SPATIAL_PADDINGS[len(kernel)](pads, mode="circular")
                args = (pad_layer(args[0]),) + tuple(args[1:])
        outputs = copy(*args, **kwargs)
        if not getattr(copy, "_shiftinv_weights_copied", False):
            copy.set_weights(layer.get_weights())
            copy._shiftinv_weights_copied = True
        return outputs

    # --- pass 3: the weights, and the report ---------------------------------

    def fit(self):
        for site in self.rewritten:
            site.fit_error, site.note = self._transfer(site)

    def calibrate(self, new_model, batches):
        modules = {}
        for site in self.rewritten:
            main = {layer.name: layer for layer in site.replacement}.get(site.layer.name)
            if isinstance(main, PolyphaseDownsample):  # 2-D stride-(2, 2) modules only
                modules[id(main)] = (site, main)
        errors = calibration.calibrate(new_model, {key: site for key, (site, _) in modules.items()}, batches)
        for key, (before, after) in errors.items():
            site = modules[key][0]
            site.calibration_error_before, site.calibration_error = before, after
        norms = sum(
            isinstance(layer, keras.layers.BatchNormalization)
            for layer in new_model._flatten_layers(include_self=False, recursive=True)
        )
        self.notes.append(
            f"calibrated: {len(errors)} module(s) refitted, {norms} batch-norm layer(s) re-estimated "
            f"on {sum(len(b) for b in batches)} calibration image(s)"
        )

    def report(self, model, padding):
        return ConversionReport(
            model.name, self.rule.name, padding, self.records(self.sites), self.paddings,
            list(self.notes), fits_run=self.fits_run,
        )

    # --- the sites ---------------------------------------------------------

    def _rewrite_site(self, site, values, phases):
        """Builds the rule's replacement; False while an input is missing."""
        if id(site.input_tensor) not in values:
            return False
        phase = None
        if site.chooser is not None:
            if id(site.chooser) not in phases:
                return False
            phase = phases[id(site.chooser)]
        layer, kind = site.layer, site.kind
        befores = [before for before, _ in site.pads]
        pads = None
        if site.pad_node is not None:
            pads = tuple((b, k - 1 - b) for b, k in zip(befores, site.kernel)) if self.circular else site.pads
        elif self.circular and layer.padding == "valid":
            # A "valid" site at stride 1 would lose k - 1 rows: pad them circularly.
            pads = tuple((0, k - 1) for k in site.kernel)
        mode = "circular" if self.circular else site.pad_mode
        options = {"padding": mode, "name": layer.name, "filt_size": self.filt_size}
        rule = self.rule
        if kind in ("conv", "depthwise", "separable"):
            shortcut = site.chooser is not None and set(site.kernel) == {1}
            if rule.mixing is not None and not shortcut:
                size = fit.module_kernel_size(site.kernel, befores, graph.strides_of(layer))
                rule = dataclasses.replace(rule, module_kernel_size=size)
            if shortcut:
                replacement = rule.shortcut(layer, padding=mode, name=layer.name, filt_size=self.filt_size)
            else:
                replacement = rule.strided_conv(layer, pads=pads, **options)
        else:
            replacement = rule.strided_pool(layer, pads=pads, **options)
        y, index = replacement(values[id(site.input_tensor)], phase_index=phase)
        phases[id(site)] = index
        values[id(site.node.outputs[0])] = y
        site.replacement = replacement.layers
        self.rewritten.append(site)
        return True

    def _transfer(self, site):
        """Weights of the replacement: copied, or fitted (the module)."""
        layers = {layer.name: layer for layer in site.replacement}
        main = layers.get(site.layer.name)
        weights = site.layer.get_weights()
        if site.kind == "separable":  # [depthwise kernel, pointwise kernel, (bias)]
            layers[f"{site.layer.name}_pointwise"].set_weights(weights[1:])
            weights = weights[:1]
        if isinstance(main, PolyphaseDownsample):
            self.fits_run += 1
            return fit_module(main, site)
        if isinstance(main, PolyphaseDownsampleND):
            self.fits_run += 1
            return fit_module_nd(main, site)
        if main is not None and main.weights:
            main.set_weights(weights)
        return None, ""

    def records(self, sites):
        records = []
        for site in sites:
            replaced = site.replacement
            status = "refused" if site.refusal else "kept" if replaced is None else "replaced"
            if status == "kept" and self._rewrites(site):
                status = "planned"  # the conversion stopped before this site
            phase = ""
            if replaced is not None and self.rule.chooses_phase:
                phase = f"reuses {site.chooser.path}" if site.chooser else "chooses"
            records.append(SiteRecord(
                path=site.path,
                layer=type(site.layer).__name__,
                kernel=tuple(site.kernel),
                stride=site.stride,
                status=status,
                replacement=", ".join(type(l).__name__ for l in replaced or []),
                fit_error=site.fit_error,
                calibration_error=getattr(site, "calibration_error", None),
                calibration_error_before=getattr(site, "calibration_error_before", None),
                phase=phase,
                reason=site.refusal or site.note,
            ))
        return records


def _one_line(error):
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _pads_inside(layer):
    return any(
        getattr(inner, "padding", None) == "same" and max(graph.kernel_of(inner)) > 1
        for inner in layer._flatten_layers(include_self=False, recursive=True)
        if isinstance(inner, SAME_PADDED)
    )


def site_target(site, channels):
    """The site's op as `(kernel (kh, kw, C, D), per_channel, bias, note)`.

    `per_channel` kernels map channel `c` to outputs `c*D .. c*D+D-1` only
    (depthwise convs and pools). A max-pool is not linear: a pool of size 1
    is subsampling (exact); larger ones start as the window's average.
    """
    layer = site.layer
    if site.kind == "conv":
        bias = layer.bias.numpy() if layer.use_bias else None
        return layer.kernel.numpy(), False, bias, ""
    if site.kind == "depthwise":
        bias = layer.bias.numpy() if layer.use_bias else None
        return layer.kernel.numpy(), True, bias, ""
    if site.kind == "separable":  # the depthwise part; the pointwise conv follows
        return layer.depthwise_kernel.numpy(), True, None, ""
    kh, kw = site.kernel
    if site.kind == "max_pool" and kh * kw > 1:
        # A 2x2 average on the strided pool's grid (the four phases at a=0).
        (top, _), (left, _) = site.pads
        kernel = np.zeros((kh, kw, channels, 1))
        kernel[top : top + 2, left : left + 2] = 0.25
        return kernel, True, None, "max-pool is not linear: the module starts as a 2x2 average"
    return np.full((kh, kw, channels, 1), 1.0 / (kh * kw)), True, None, ""


def fit_module(module, site):
    """Fits a built `PolyphaseDownsample` to the site's op; returns (error, note)."""
    channels = module.input_channels
    kernel, per_channel, bias, note = site_target(site, channels)
    (top, _), (left, _) = site.pads
    target, _ = fit.half_grid_target(np.asarray(kernel, "float64"), top, left)
    size = module.kernel_size
    kept = fit.crop_target(target, size)
    lost = np.linalg.norm(target) ** 2 - np.linalg.norm(kept) ** 2
    if per_channel:
        mixing, merge, error = fit.fit_depthwise(kept, module.mixing, module.mixing_kernel.numpy())
    elif module.mixing == "group":
        mixing, merge, error = fit.fit_group(kept, module.mixing_kernel.numpy())
    else:
        mixing, merge, error = fit.fit_conv3d(kept)
    total = np.linalg.norm(target)
    if total > 0:
        error = float(np.sqrt((error * np.linalg.norm(kept)) ** 2 + max(lost, 0.0)) / total)
    if note:
        error = None  # a fit to a stand-in, not to the op
    module.mixing_kernel.assign(mixing.astype(module.mixing_kernel.dtype))
    module.merge_kernel.assign(merge.astype(module.merge_kernel.dtype))
    if module.use_bias:
        module.mixing_bias.assign(np.zeros(module.mixing_bias.shape, module.mixing_bias.dtype))
        module.merge_bias.assign(np.zeros(module.merge_bias.shape) if bias is None else bias)
    return error, note


def site_target_nd(site, channels):
    """`site_target` for any rank: `(kernel (*k, C, D), per_channel, bias, note)`."""
    layer, kernel = site.layer, tuple(site.kernel)
    if site.kind in ("conv", "depthwise"):
        bias = layer.bias.numpy() if layer.use_bias else None
        return layer.kernel.numpy(), site.kind == "depthwise", bias, ""
    if site.kind == "separable":  # the depthwise part; the pointwise conv follows
        return layer.depthwise_kernel.numpy(), True, None, ""
    strides = graph.strides_of(layer)
    if site.kind == "max_pool" and np.prod(kernel) > 1:
        # The average of the phases at a=0 on the strided pool's grid.
        window = tuple(slice(b, b + s) for (b, _), s in zip(site.pads, strides))
        target = np.zeros(kernel + (channels, 1))
        target[window] = 1.0 / np.prod(strides)
        return target, True, None, "max-pool is not linear: the module starts as an average of its phases"
    return np.full(kernel + (channels, 1), 1.0 / np.prod(kernel)), True, None, ""


def fit_module_nd(module, site):
    """Fits a built rank-generic module (1-D, 3-D, per-axis strides) to the site's op; (error, note)."""
    kernel, per_channel, bias, note = site_target_nd(site, module.input_channels)
    befores = [before for before, _ in site.pads]
    target = fit.half_grid_target_nd(np.asarray(kernel, "float64"), befores, module.strides)
    mixing, merge, error = fit.fit_group_nd(target, module.mixing_kernel.numpy(), module.kernel_size, per_channel)
    module.mixing_kernel.assign(mixing.astype(module.mixing_kernel.dtype))
    module.merge_kernel.assign(merge.astype(module.merge_kernel.dtype))
    if module.use_bias:
        module.mixing_bias.assign(np.zeros(module.mixing_bias.shape, module.mixing_bias.dtype))
        module.merge_bias.assign(np.zeros(module.merge_bias.shape) if bias is None else bias)
    return (None if note else error), note
