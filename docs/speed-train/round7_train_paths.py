"""Round 7: is the training cost rule's path choice the fastest for `group`? Three choices, interleaved.

Builds `stride` and `group` ResNet-18s (seed 0, as benchmarks/bench_resnet.py) and traces `group`'s
train step three times: with the package's cost rule (`polyphase_algebra.fusing_pays`, label
`group`: at 64x64 width 1 it fuses 2 of the 8 modules and factors 6), with every module fused in
training (`group@fused`) and with every module factored (`group@factored`); inference is left to
the rule. Then bench_resnet's interleaved loop (train_on_batch, CPU and wall time), throughput
ratios to `stride`, provenance.

    python docs/speed-train/round7_train_paths.py --output docs/speed-train/round7_train_paths64.md
"""
import argparse
import os
import sys
from unittest import mock

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from _bench import load_text, measure, summarize, write_report  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--output", required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    import keras

    import keras_shiftinv as ks
    from keras_shiftinv import provenance
    from keras_shiftinv.layers import polyphase_algebra as algebra

    rule = algebra.fusing_pays

    def in_training(path):  # the rule, except that training takes `path` at every module
        def choose(mixing, pixels, kernel_size, channels, filters, mixed, training=False, folded=False):
            if training:
                return path == "fused"
            return rule(mixing, pixels, kernel_size, channels, filters, mixed, training, folded)
        return choose

    stamp = provenance.start()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch_size, args.image_size, args.image_size, 3)).astype("float32")
    y = rng.integers(0, 1000, size=(args.batch_size,))
    fns = {}
    for label, method, path in [("stride", "stride", None), ("group", "group", None),
                                ("group@fused", "group", "fused"), ("group@factored", "group", "factored")]:
        keras.utils.set_random_seed(0)
        model = ks.resnet18(method, num_classes=1000, width=args.width, input_shape=(args.image_size, args.image_size, 3))
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        if path is None:
            model.train_on_batch(x, y)
        else:
            with mock.patch.object(algebra, "fusing_pays", in_training(path)):
                model.train_on_batch(x, y)  # the train step is traced now, on the forced path
        fns[label] = (lambda m: lambda batch: m.train_on_batch(batch, y))(model)
    samples = {}
    measure(fns, x, args.rounds, args.steps, warmup=1, samples=samples)
    record = provenance.finish(stamp)
    lines = ["| variant | img/s (CPU) | CPU speed / stride | img/s (wall) | wall speed / stride | load (1-min) |",
             "|---|---:|---:|---:|---:|---:|"]
    summary = {}
    for label in fns:
        s = summarize(samples[label], samples["stride"])
        low, high = s["load_min_max"]
        lines.append(f"| {label} | {1000 * args.batch_size / s['cpu_ms']:.1f} | {s['cpu_speed']:.2f}x | "
                     f"{1000 * args.batch_size / s['wall_ms']:.1f} | {s['wall_speed']:.2f}x | {low:.1f}-{high:.1f} |")
        summary[label] = s
    head = (f"ResNet-18 training, {args.image_size}x{args.image_size}, width {args.width}, batch {args.batch_size}, "
            f"1000 classes, CPU, float32; `group`'s training path: the cost rule, all fused, all factored; "
            f"{args.rounds} interleaved rounds of {args.steps} train steps; medians of per-round ratios; {load_text(record)}")
    write_report(args, head, "\n".join(lines), summary, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
