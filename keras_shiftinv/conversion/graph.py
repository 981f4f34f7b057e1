"""Reading a functional Keras graph: nodes, consumers, downsampling sites, pairs."""

import dataclasses

import keras

from keras_shiftinv.layers import SpatialPadding2D
from keras_shiftinv.methods import same_pads

SITE_TYPES = {
    keras.layers.Conv2D: "conv",
    keras.layers.DepthwiseConv2D: "depthwise",
    keras.layers.SeparableConv2D: "separable",
    keras.layers.MaxPooling2D: "max_pool",
    keras.layers.AveragePooling2D: "avg_pool",
    keras.layers.Conv1D: "conv",
    keras.layers.Conv3D: "conv",
    keras.layers.MaxPooling1D: "max_pool",
    keras.layers.MaxPooling3D: "max_pool",
    keras.layers.AveragePooling1D: "avg_pool",
    keras.layers.AveragePooling3D: "avg_pool",
}


@dataclasses.dataclass
class Site:
    """One layer that downsamples, with the geometry a rewrite needs.

    `pads` are the `((top, bottom), (left, right))` rows and columns the
    strided layer sees before its input (from `"same"` or from an explicit
    padding node `pad_node`, which other layers may read too: NASNet pads
    once for three pools); `input_tensor` is the tensor before that padding.
    """

    node: object
    layer: object
    path: str
    kind: str
    kernel: tuple
    stride: int
    input_tensor: object = None
    pad_node: object = None
    pad_mode: str = "zeros"  # the mode of `pad_node` (a SpatialPadding2D's own)
    pads: tuple = ((0, 0), (0, 0))
    refusal: str = None
    chooser: object = None  # the Site whose phase this one reuses (aps)
    followers: list = dataclasses.field(default_factory=list)
    replacement: list = None  # the layers that replaced it
    fit_error: float = None
    note: str = ""


def is_functional(model):
    return isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth")


def graph_of(model):
    """The functional graph of a Functional or built Sequential model (else None)."""
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    return model if is_functional(model) else None


def ordered_nodes(graph):
    """The graph's operation nodes, inputs first (as `_run_through_graph`)."""
    depths = sorted(graph._nodes_by_depth, reverse=True)
    return [
        node
        for depth in depths
        for node in graph._nodes_by_depth[depth]
        if node.operation is not None and not node.is_input
    ]


def producer(tensor):
    """The node that made a KerasTensor (None for a graph input)."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    node = history.operation._inbound_nodes[history.node_index]
    return None if node.is_input else node


def consumers(nodes):
    """id(tensor) -> nodes that read it."""
    readers = {}
    for node in nodes:
        for tensor in node.input_tensors:
            readers.setdefault(id(tensor), []).append(node)
    return readers


def strides_of(layer):
    strides = getattr(layer, "strides", None) or (1, 1)
    return tuple(strides) if isinstance(strides, (tuple, list)) else (strides, strides)


def kernel_of(layer):
    size = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    return tuple(size) if isinstance(size, (tuple, list)) else (size, size)


def explicit_pads(node):
    """`((top, bottom), (left, right))` of an explicit padding node, else None.

    That is a `ZeroPadding2D` or `SpatialPadding2D` layer, or an `ops.pad`
    op-node that pads only the two spatial axes of a channels-last map (any
    constant: keras-hub pads with -inf before its max-pool).
    """
    op = node.operation
    if isinstance(op, SpatialPadding2D):
        return op.padding
    if isinstance(op, keras.layers.ZeroPadding2D):
        if op.data_format != "channels_last":
            return None
        (top, bottom), (left, right) = op.padding
        return ((top, bottom), (left, right))
    if type(op).__name__ == "Pad" and getattr(op, "mode", None) == "constant":
        widths = [tuple(w) for w in op.pad_width]
        if len(widths) == 4 and widths[0] == (0, 0) and widths[3] == (0, 0):
            return (widths[1], widths[2])
    return None


def describe_site(node, path):
    """A `Site` for a strided layer node; `refusal` says why it cannot convert."""
    layer = node.operation
    kind = next((k for cls, k in SITE_TYPES.items() if type(layer) is cls), None)
    strides = strides_of(layer)
    kernel = kernel_of(layer)
    # One number where every axis has it (the 2-D (2, 2) sites: 2), else per axis, e.g. (1, 2).
    stride = strides[0] if len(set(strides)) == 1 else strides
    site = Site(node, layer, path, kind or type(layer).__name__, kernel, stride)
    site.input_tensor = node.input_tensors[0]
    if kind is None and type(layer).__module__.startswith("keras."):
        site.refusal = f"strided {type(layer).__name__} is not a supported site"
    elif kind is None:
        site.refusal = (
            f"a subclassed layer ({type(layer).__name__}) that downsamples inside "
            f"(strides {strides}); convert cannot see into it"
        )
    elif not (set(strides) <= {1, 2} and 2 in strides):
        site.refusal = f"strides {strides}: the methods replace stride-2 sites only"
    elif max(getattr(layer, "dilation_rate", (1,)) or (1,)) > 1:
        site.refusal = f"dilation_rate {layer.dilation_rate}"
    elif getattr(layer, "data_format", "channels_last") != "channels_last":
        site.refusal = "data_format='channels_first'"
    elif kind == "conv" and getattr(layer, "groups", 1) != 1:
        site.refusal = f"grouped convolution (groups={layer.groups})"
    if site.refusal:
        return site
    before = producer(site.input_tensor)
    pads = None if before is None else explicit_pads(before)
    if layer.padding == "valid" and pads:
        site.pad_node = before
        site.pad_mode = getattr(before.operation, "mode", "zeros")
        site.pad_mode = site.pad_mode if site.pad_mode in ("reflect", "circular") else "zeros"
        site.input_tensor = before.input_tensors[0]
        site.pads = pads
    elif layer.padding == "same":
        sizes = site.input_tensor.shape[1:-1]
        site.pads = tuple(same_pads(k, s, n) for k, s, n in zip(kernel, strides, sizes))
    elif len(kernel) != 2:
        site.pads = ((0, 0),) * len(kernel)
    return site


def hidden_sites(layer):
    """Names of strided layers inside a subclassed layer (none for plain layers)."""
    found = []
    for inner in layer._flatten_layers(include_self=False, recursive=True):
        if max(strides_of(inner)) > 1 and kernel_of(inner)[0] is not None:
            found.append(inner.name)
    return found


def walk_to_site(tensor, site_of):
    """Follows single-input layers back from `tensor` to a site; (site, steps)."""
    steps = 0
    while True:
        node = producer(tensor)
        if node is None:
            return None, steps
        steps += 1
        if id(node) in site_of:
            return site_of[id(node)], steps
        inputs = node.input_tensors
        if len(inputs) != 1 or graph_of(node.operation) is not None:
            return None, steps
        tensor = inputs[0]


def pair_sites(nodes, site_of):
    """Links sites whose outputs meet at one merge node (a residual `Add`).

    The site with the longest path to the merge (the main branch) chooses
    the phase; the others (shortcuts) reuse it. Sites already linked stay.
    """
    for node in nodes:
        if len(node.input_tensors) < 2:
            continue
        found = [walk_to_site(t, site_of) for t in node.input_tensors]
        sites = {}
        for site, steps in found:
            if site is not None and not site.refusal and site.chooser is None:
                sites[id(site)] = max(steps, sites.get(id(site), (0, None))[0]), site
        if len(sites) < 2 or len({s.stride for _, s in sites.values()}) != 1:
            continue
        ranked = sorted(sites.values(), key=lambda pair: -pair[0])
        chooser = ranked[0][1]
        if chooser.followers or any(s.followers for _, s in ranked[1:]):
            continue
        for _, follower in ranked[1:]:
            follower.chooser = chooser
            chooser.followers.append(follower)



def unite_sites(nodes, site_of, active):
    """Makes sites that meet on one grid share one chooser (beyond `pair_sites`).

    Follows each tensor's grid: the graph's input grid, or the group of
    sites (one chooser and its followers) that made it; a nested model's
    output is a grid of its own. Two groups are united (the later follows
    the earlier group's chooser) where their maps meet at a merge node, or
    where `pair_sites` paired sites that read different groups' grids, if
    their own input grids can be united the same way, recursively, with one
    stride. NASNet's reduction cells need it: maps from different branches
    are added, and each branch's sites would otherwise choose their own
    phase, putting the added maps on different grids after a shift.
    `active(site)`: whether the site is rewritten.
    """
    order = {id(site): i for i, site in enumerate(site_of.values())}
    sites = {id(site): site for site in site_of.values()}
    parent = {}  # group key -> the group it joined
    reads = {}  # group key -> the grid its sites read

    def find(token):
        if token[0] != "site":
            return token
        key = token[1]
        while key in parent:
            key = parent[key]
        return ("site", key)

    def unite(a, b):
        a, b = find(a), find(b)
        if a == b:
            return True
        if a[0] != "site" or b[0] != "site" or sites[a[1]].stride != sites[b[1]].stride:
            return False
        if a[1] not in reads or b[1] not in reads or not unite(reads[a[1]], reads[b[1]]):
            return False
        master, other = sorted((sites[a[1]], sites[b[1]]), key=lambda site: order[id(site)])
        for follower in [other, *other.followers]:
            follower.chooser = master
            master.followers.append(follower)
        other.followers = []
        parent[id(other)] = id(master)
        return True

    # Feature maps of the sites' rank (images: 4-D); other tensors do not carry a grid.
    map_ranks = {len(site.input_tensor.shape) for site in site_of.values() if site.input_tensor is not None} or {4}
    grid = {}  # id(tensor) -> ("input",), ("site", group key) or ("nested", id(node))
    for node in nodes:
        inputs = [grid.get(id(t), ("input",)) for t in node.input_tensors]
        site = site_of.get(id(node))
        if site is not None and active(site):
            key = find(("site", id(site.chooser or site)))[1]
            read = grid.get(id(site.input_tensor), ("input",))
            if key in reads:
                unite(reads[key], read)
            else:
                reads[key] = read
            out = ("site", key)
        elif graph_of(node.operation) is not None:
            out = ("nested", id(node))
        else:
            maps = [token for tensor, token in zip(node.input_tensors, inputs) if len(tensor.shape) in map_ranks]
            for token in maps[1:]:
                unite(maps[0], token)
            out = inputs[0] if inputs else ("input",)
        for tensor in node.outputs:
            grid[id(tensor)] = out
