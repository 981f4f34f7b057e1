"""CPU latency and throughput of exported `stride`, `group` and `group-aps` models, per batch.

Each variant is exported as a SavedModel (`serve_float`, run by TensorFlow), a
LiteRT flatbuffer (`ai_edge_litert`) and an ONNX model (`onnxruntime`), then
timed at batch 1 and batch 32 on preprocessed float input with bench_infer's
loop: variants interleaved round by round (order rotated), CPU and wall time
per call, medians of per-round ratios to `stride` in the same runtime. The
table goes to `--output`, its provenance (versions, commit, load) to
`<stem>.json`.

    python benchmarks/bench_serving.py --output /tmp/serving.md               # 64x64, width 0.5
    python benchmarks/bench_serving.py --image-size 224 --width 1 --output /tmp/serving224.md
"""

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_infer  # noqa: E402 (this folder)

METHODS = ("stride", "group", "group-aps")
RUNTIMES = ("saved_model", "litert", "onnx")
BATCHES = (1, 32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=3, help="calls per variant per round")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    parser.add_argument("--output", required=True, help="the table (markdown); its provenance goes to <stem>.json")
    parser.add_argument("--note", default="", help="said beside the provenance, e.g. what else loaded the machine")
    parser.set_defaults(padding="method")  # bench_infer.build_runners: each method with the padding it is used with
    args = parser.parse_args()
    runtimes = bench_infer.parse_list(args.runtimes, RUNTIMES, "runtimes")
    if args.rounds < 10:
        bench_infer.fail(f"--rounds must be at least 10. Received: rounds={args.rounds}")

    from keras_shiftinv import provenance

    stamp = provenance.start()
    rng = np.random.default_rng(0)
    sections, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        fns, labels = bench_infer.build_runners(list(METHODS), runtimes, [None], args, tmp)
        for batch in BATCHES:
            x = rng.normal(size=(batch, args.image_size, args.image_size, 3)).astype("float32")
            samples = bench_infer.measure(fns, x, args.rounds, args.calls)
            text, summary = bench_infer.table(samples, labels, runtimes)
            throughput = ", ".join(f"{key} {batch / (value['wall_ms'] / 1000):.0f} img/s" for key, value in summary.items())
            sections.append(f"Batch {batch} (throughput from median wall time: {throughput})\n\n{text}")
            results[f"batch{batch}"] = summary
    record = provenance.finish(stamp)
    head = (f"ResNet-18, {args.image_size}x{args.image_size}, width {args.width}, {args.num_classes} classes, "
            f"CPU, float32, exported models; {args.rounds} interleaved rounds of {args.calls} calls per batch; "
            f"medians; {bench_infer.load_text(record)}")
    bench_infer.write_report(args, head, "\n\n".join(sections), results, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
