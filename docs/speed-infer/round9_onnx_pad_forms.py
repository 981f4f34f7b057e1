"""Round 9: forms of circular padding written directly in ONNX, run by ONNX Runtime, as ratios to zero padding.

`benchmarks/bench_padding.py` times the forms TensorFlow can write and tf2onnx converts. This asks the
question once more below the converter: is there an ONNX form of a one-pixel circular pad that ONNX
Runtime runs as cheaply as the zero pad it folds into `Conv`? The model is `--depth` times (pad,
3x3 convolution C -> C, ReLU) on an NCHW `(batch, C, size, size)` map, built with `onnx.helper`:

- `zeros`: the pad is the `Conv`'s own `pads` (what `stride`'s convolutions get), the baseline;
- `gather-nhwc`: what the package's export holds: `Transpose` to NHWC, one `Gather` of the flattened
  pixels (rows of C values) from a constant index table, back to NCHW (tf2onnx's graph of
  `_utils.pad_spatial`);
- `gather-nchw`: the same gather of the flattened pixels without the transposes (single values);
- `gather-axes`: one `Gather` per spatial axis;
- `slice-concat`: two `Slice`s and a `Concat` per axis;
- `pad-wrap`: ONNX `Pad` with `mode="wrap"` (opset 19; the package exports at opset 17).

Every form gives the same outputs (checked before timing). Then the interleaved loop of
`benchmarks/_bench.py`, CPU-time ratios to `zeros`, provenance.

    python docs/speed-infer/round9_onnx_pad_forms.py --size 32 --channels 16 --batch 32 \
        --output docs/speed-infer/round9_onnx_pad_forms32.md
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from _bench import load_text, measure, table, write_report  # noqa: E402

FORMS = ("zeros", "gather-nhwc", "gather-nchw", "gather-axes", "slice-concat", "pad-wrap")


def pad_nodes(form, source, target, c, n, constants):
    """ONNX nodes that pad `source` (N, c, n, n) circularly by one pixel into `target`; adds their constants."""
    from onnx import helper

    index = np.arange(-1, n + 1) % n  # the padded axis's source rows
    pixels = (index[:, None] * n + index[None, :]).reshape(-1)  # into the n*n pixels, row-major
    constants.update({
        "pixels": pixels, "index": index, "nhwc_flat": [-1, n * n, c], "nhwc_padded": [-1, n + 2, n + 2, c],
        "nchw_flat": [0, c, n * n], "nchw_padded": [0, c, n + 2, n + 2], "pads": [0, 0, 1, 1, 0, 0, 1, 1],
        "last": [-1], "first": [0], "one": [1], "end": [n], "axis2": [2], "axis3": [3],
    })
    t = f"{target}_"
    if form == "gather-nhwc":
        return [helper.make_node("Transpose", [source], [t + "nhwc"], perm=[0, 2, 3, 1]),  # (N, n, n, c)
                helper.make_node("Reshape", [t + "nhwc", "nhwc_flat"], [t + "flat"]),  # (N, n*n, c)
                helper.make_node("Gather", [t + "flat", "pixels"], [t + "gathered"], axis=1),  # (N, (n+2)^2, c)
                helper.make_node("Reshape", [t + "gathered", "nhwc_padded"], [t + "padded"]),  # (N, n+2, n+2, c)
                helper.make_node("Transpose", [t + "padded"], [target], perm=[0, 3, 1, 2])]  # (N, c, n+2, n+2)
    if form == "gather-nchw":
        return [helper.make_node("Reshape", [source, "nchw_flat"], [t + "flat"]),  # (N, c, n*n)
                helper.make_node("Gather", [t + "flat", "pixels"], [t + "gathered"], axis=2),  # (N, c, (n+2)^2)
                helper.make_node("Reshape", [t + "gathered", "nchw_padded"], [target])]  # (N, c, n+2, n+2)
    if form == "gather-axes":
        return [helper.make_node("Gather", [source, "index"], [t + "rows"], axis=2),  # (N, c, n+2, n)
                helper.make_node("Gather", [t + "rows", "index"], [target], axis=3)]  # (N, c, n+2, n+2)
    if form == "pad-wrap":
        return [helper.make_node("Pad", [source, "pads"], [target], mode="wrap")]
    nodes, current = [], source
    for axis, out in (("axis2", t + "rows"), ("axis3", target)):  # rows, then columns
        nodes += [helper.make_node("Slice", [current, "last", "end", axis], [out + "_before"]),  # the last row/column
                  helper.make_node("Slice", [current, "first", "one", axis], [out + "_after"]),  # the first
                  helper.make_node("Concat", [out + "_before", current, out + "_after"], [out], axis=int(axis[-1]))]
        current = out
    return nodes


def session_of(nodes, constants, c, n, name):
    """`fn(x)` running `nodes` (input `x` of shape (N, c, n, n), output `y`) at opset 19 in ONNX Runtime."""
    import onnxruntime
    from onnx import TensorProto
    from onnx import helper
    from onnx import numpy_helper

    initializers = [numpy_helper.from_array(np.asarray(v, "float32" if np.asarray(v).dtype.kind == "f" else "int64"), k)
                    for k, v in constants.items()]  # the weights float32, shapes and indices int64
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, c, n, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"x": x})[0]


def build(form, args):
    """`fn(x)` running the model with this padding form in an ONNX Runtime session."""
    from onnx import helper

    rng = np.random.default_rng(0)
    c, n = args.channels, args.size
    constants, nodes, current = {}, [], "x"
    for i in range(args.depth):
        constants[f"w{i}"] = rng.normal(scale=(2.0 / (9 * c)) ** 0.5, size=(c, c, 3, 3)).astype("float32")
        if form == "zeros":
            nodes.append(helper.make_node("Conv", [current, f"w{i}"], [f"conv{i}"], pads=[1, 1, 1, 1]))
        else:
            nodes += pad_nodes(form, current, f"pad{i}", c, n, constants)
            nodes.append(helper.make_node("Conv", [f"pad{i}", f"w{i}"], [f"conv{i}"]))
        current = "y" if i == args.depth - 1 else f"relu{i}"
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [current]))
    return session_of(nodes, constants, c, n, form)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4, help="pad + conv + ReLU blocks")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--output", required=True, help="the table (markdown); its provenance goes to <stem>.json")
    parser.add_argument("--note", default="", help="said beside the provenance, e.g. what else loaded the machine")
    args = parser.parse_args()
    from keras_shiftinv import provenance

    stamp = provenance.start()
    fns = {("onnx", form): build(form, args) for form in FORMS}
    x = np.random.default_rng(1).normal(size=(args.batch, args.channels, args.size, args.size)).astype("float32")
    reference = fns["onnx", "gather-nhwc"](x)
    for form in FORMS[2:]:  # every circular form computes the same values
        np.testing.assert_allclose(fns["onnx", form](x), reference, rtol=1e-5, atol=1e-5)
    samples = measure(fns, x, args.rounds, args.calls)
    text, summary = table(samples, list(FORMS), ["onnx"], base="zeros")
    record = provenance.finish(stamp)
    head = (f"{args.depth} x (pad 1, 3x3 conv, ReLU), NCHW ({args.batch}, {args.channels}, {args.size}, "
            f"{args.size}), ONNX Runtime, opset 19; {args.rounds} interleaved rounds of {args.calls} calls; "
            f"medians; {load_text(record)}")
    write_report(args, head, text, summary, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
