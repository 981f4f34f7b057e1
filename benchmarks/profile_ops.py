"""Where a runtime spends its time in a ResNet-18 variant: kernel time per op type.

Builds `resnet18(method)` (padding circular for the methods that choose a
phase, zeros for the others, as `bench_infer.py`; `--padding circular`:
circular for every method), runs `--calls` calls on
one random batch with the runtime's own per-kernel timing on, and sums the
kernel times per op type, with `--by layer` per layer instead (the part of
the node name that names the Keras layer: `stem_conv_aps`, ...).

- `--runtime onnx`: the package's ONNX export in ONNX Runtime, its profiler
  (`SessionOptions.enable_profiling`): e.g. the `ReorderInput` /
  `ReorderOutput` of the blocked `NCHWc` layout around ops that leave it.
- `--runtime tensorflow`: the model's inference graph (a `tf.function`,
  variables frozen to constants) run in a TensorFlow session with a full
  trace (`RunOptions.FULL_TRACE` step stats), after the same graph rewrites
  as a `tf.function` call (oneDNN fusions such as `_MklNativePadWithConv2D`).

A share, not a speed figure: the kernels of one call may overlap on the
cores, so the sum is not the call's time. Read it beside `bench_infer.py`'s
interleaved ratios. The model's multiplies per image (`_bench.multiplies`)
are given in the head, to set the convolutions' time beside their count.

    python benchmarks/profile_ops.py --method aps --output /tmp/onnx_aps64.md
    python benchmarks/profile_ops.py --runtime tensorflow --method aps --image-size 224 --width 1 \
        --batch 8 --calls 5 --output /tmp/tf_aps224.md
"""

import argparse
import collections
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench import fail  # noqa: E402 (this folder)
from _bench import inference_resnet18  # noqa: E402
from _bench import load_text  # noqa: E402
from _bench import multiplies  # noqa: E402
from _bench import write_report  # noqa: E402


RUNTIMES = ("onnx", "tensorflow")


def layer_of(node):
    """The Keras layer a graph node belongs to, from its name (a node outside every layer: the name).

    Example:
    >>> layer_of("resnet18_aps_1/stem_conv_aps_1/Square"), layer_of("ReorderOutput_token_12")
    ('stem_conv_aps', 'ReorderOutput_token')
    """
    parts = node.split("/")
    name = parts[1] if len(parts) > 1 else parts[0]
    head, _, tail = name.rpartition("_")
    return head if head and tail.isdigit() else name


def onnx_kernels(model, x, calls, tmp):
    """`(node name, op type, microseconds)` of every kernel of `calls` calls, from ONNX Runtime's profiler."""
    import onnxruntime

    from keras_shiftinv.export import export_onnx

    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tmp, "profile")
    session = onnxruntime.InferenceSession(export_onnx(model, os.path.join(tmp, "model")), options,
                                           providers=["CPUExecutionProvider"])
    for _ in range(calls):
        session.run(["probabilities"], {"image": x})
    with open(session.end_profiling(), encoding="utf-8") as f:
        events = json.load(f)
    return [(event["name"][:-len("_kernel_time")], event["args"]["op_name"], event["dur"]) for event in events
            if event.get("cat") == "Node" and event["name"].endswith("_kernel_time")]


def tensorflow_kernels(model, x, calls):
    """`(node name, op type, microseconds)` of every kernel of `calls` traced calls of the frozen inference graph."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
    frozen = convert_variables_to_constants_v2(
        tf.function(lambda image: model(image, training=False), input_signature=[spec]).get_concrete_function())
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(frozen.graph.as_graph_def(), name="")
    feed, fetch = {frozen.inputs[0].name: x}, frozen.outputs[0].name
    kernels = []
    with tf.compat.v1.Session(graph=graph) as session:
        for _ in range(2):  # warm-up: the graph rewrites and oneDNN's primitive caches
            session.run(fetch, feed)
        for _ in range(calls):
            trace = tf.compat.v1.RunMetadata()
            session.run(fetch, feed, options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE),
                        run_metadata=trace)
            for device in trace.step_stats.dev_stats:
                for node in device.node_stats:
                    op = node.timeline_label.split(" = ")[-1].split("(")[0].strip() or node.node_name
                    kernels.append((node.node_name, op, node.all_end_rel_micros))
    return kernels


def op_times(method, args, tmp):
    """`({key: (microseconds per call, nodes per call)}, multiplies per image)`; key: op type or layer."""
    model = inference_resnet18(method, args)
    count = multiplies(model, args.batch)[0]  # before the runtime's tracing
    x = np.random.default_rng(0).normal(size=(args.batch, args.image_size, args.image_size, 3)).astype("float32")
    if args.runtime == "onnx":
        kernels = onnx_kernels(model, x, args.calls, tmp)
    else:
        kernels = tensorflow_kernels(model, x, args.calls)
    total, nodes = collections.Counter(), collections.Counter()
    for node, op, us in kernels:
        key = layer_of(node) if args.by == "layer" else op
        total[key] += us
        nodes[key] += 1
    times = {key: (total[key] / args.calls, nodes[key] / args.calls) for key in total}
    return times, count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", required=True)
    parser.add_argument("--runtime", choices=RUNTIMES, default="onnx")
    parser.add_argument("--padding", choices=("method", "circular"), default="method",
                        help="method: circular for the methods that choose a phase, zeros for the others; "
                             "circular: also for the others")
    parser.add_argument("--by", choices=("op", "layer"), default="op", help="sum kernel times per op type or per layer")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--top", type=int, default=12, help="op types or layers listed (the rest are summed)")
    parser.add_argument("--output", required=True, help="the table (markdown); its provenance goes to <stem>.json")
    parser.add_argument("--note", default="", help="said beside the provenance, e.g. what else loaded the machine")
    args = parser.parse_args()
    from keras_shiftinv.methods import METHODS

    if args.method not in METHODS:
        fail(f"--method must be one of {list(METHODS)}. Received: method={args.method!r}")
    if args.calls < 1:
        fail(f"--calls must be at least 1. Received: calls={args.calls}")
    from keras_shiftinv import provenance

    stamp = provenance.start()
    with tempfile.TemporaryDirectory() as tmp:
        times, multiplied = op_times(args.method, args, tmp)
    record = provenance.finish(stamp)
    whole = sum(us for us, _ in times.values())
    ranked = sorted(times.items(), key=lambda item: -item[1][0])
    key = "op type" if args.by == "op" else "layer"
    lines = [f"| {key} | us per call | share | nodes per call |", "|---|---:|---:|---:|"]
    for op, (us, count) in ranked[:args.top]:
        lines.append(f"| {op} | {us:.0f} | {100 * us / whole:.1f}% | {count:.0f} |")
    rest = sum(us for _, (us, _) in ranked[args.top:])
    lines.append(f"| (others) | {rest:.0f} | {100 * rest / whole:.1f}% | |")
    runtime = "ONNX Runtime" if args.runtime == "onnx" else "TensorFlow"
    padding = " (circular padding)" if args.padding == "circular" else ""
    head = (f"{runtime} kernel time per {key}, ResNet-18 `{args.method}`{padding}, "
            f"{args.image_size}x{args.image_size}, width {args.width}, batch {args.batch}, {args.calls} calls; "
            f"kernels sum to {whole / 1000:.2f} ms per call; {multiplied / 1e6:.1f} M multiplies per image; "
            f"{load_text(record)}")
    kernels = {name: {"us": us, "nodes": n} for name, (us, n) in times.items()}
    summary = {"multiplies_per_image": multiplied, "kernels": kernels}
    write_report(args, head, "\n".join(lines), summary, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
