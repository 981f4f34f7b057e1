"""Where ONNX Runtime spends its time in a ResNet-18 variant: kernel time per op type.

Exports `resnet18(method)` with `export_onnx` (padding circular for the methods
that choose a phase, zeros for the others, as `bench_infer.py`), runs
`--calls` calls on one random batch with ONNX Runtime's profiler on
(`SessionOptions.enable_profiling`), and sums the profiler's kernel times per
op type. A share, not a speed figure: it says which ops a variant adds (e.g.
the `ReorderInput`/`ReorderOutput` of the blocked `NCHWc` layout around ops that
leave it), so read it beside `bench_infer.py`'s interleaved ratios.

    python benchmarks/profile_onnx.py --method aps --output /tmp/onnx_aps64.md
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
from _bench import load_text  # noqa: E402
from _bench import write_report  # noqa: E402


def op_times(method, args, tmp):
    """`{op type: (microseconds per call, nodes per call)}` from ONNX Runtime's profile."""
    import keras
    import onnxruntime

    import keras_shiftinv as ks
    from keras_shiftinv.export import export_onnx

    keras.utils.set_random_seed(0)
    padding = "circular" if ks.methods.get(method).chooses_phase else "zeros"
    model = ks.resnet18(method, num_classes=args.num_classes, width=args.width, padding=padding,
                        input_shape=(args.image_size, args.image_size, 3))
    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tmp, method)
    session = onnxruntime.InferenceSession(export_onnx(model, os.path.join(tmp, method)), options,
                                           providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(args.batch, args.image_size, args.image_size, 3)).astype("float32")
    for _ in range(args.calls):
        session.run(["probabilities"], {"image": x})
    with open(session.end_profiling(), encoding="utf-8") as f:
        events = json.load(f)
    total, nodes = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            total[event["args"]["op_name"]] += event["dur"]
            nodes[event["args"]["op_name"]] += 1
    return {op: (total[op] / args.calls, nodes[op] / args.calls) for op in total}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", required=True)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--top", type=int, default=12, help="op types listed (the rest are summed)")
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
        times = op_times(args.method, args, tmp)
    record = provenance.finish(stamp)
    whole = sum(us for us, _ in times.values())
    ranked = sorted(times.items(), key=lambda item: -item[1][0])
    lines = ["| op type | us per call | share | nodes per call |", "|---|---:|---:|---:|"]
    for op, (us, count) in ranked[:args.top]:
        lines.append(f"| {op} | {us:.0f} | {100 * us / whole:.1f}% | {count:.0f} |")
    rest = sum(us for _, (us, _) in ranked[args.top:])
    lines.append(f"| (others) | {rest:.0f} | {100 * rest / whole:.1f}% | |")
    head = (f"ONNX Runtime kernel time per op type, ResNet-18 `{args.method}`, {args.image_size}x{args.image_size}, "
            f"width {args.width}, batch {args.batch}, {args.calls} calls; total {whole / 1000:.2f} ms per call; "
            f"{load_text(record)}")
    write_report(args, head, "\n".join(lines), {op: {"us": us, "nodes": n} for op, (us, n) in times.items()}, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
