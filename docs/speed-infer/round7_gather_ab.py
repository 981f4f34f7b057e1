"""Round 7 A/B: the alignment's gather with constant index tables vs round 6's computed indices, per runtime.

Builds `stride`, `aps` and `group-aps` (seed 0, as benchmarks/bench_infer.py) and serves the aligned
ones twice: traced or exported with the package's `_utils.gather_phase` (label `aps`, `group-aps`:
a constant `(P, n/step)` table per axis, one row lookup per item, `tf.gather` without Keras's
negative-index pass) and with round 6's `gather_phase`, copied below (label `...@round6`: every index
computed at run time from `arange`/`mod`, then `ops.take`). Then bench_infer's interleaved loop,
ratios to `stride`, provenance. Both give the same logits (checked before timing).

    python docs/speed-infer/round7_gather_ab.py --image-size 64 --width 0.25 --batch 32 \
        --runtimes keras,saved_model,litert,onnx --output docs/speed-infer/round7_gather_ab64.md
"""
import argparse
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from _bench import load_text, measure, parse_list, table, write_report  # noqa: E402
from bench_infer import RUNTIMES, runner  # noqa: E402


def round6_gather_phase(x, phase_index, strides, subsample=True, sign=1):
    """`_utils.gather_phase` as of round 6 (commit 338eb50): indices computed at run time."""
    from keras import ops

    shape = ops.shape(x)
    rank = len(strides)
    remaining = ops.cast(phase_index, "int32")
    offsets = []
    for s in reversed(strides):
        offsets.insert(0, sign * (remaining % s))  # (B,)
        remaining = remaining // s
    flat = ops.reshape(ops.arange(shape[0], dtype="int32"), (-1, *[1] * rank))  # (B, 1, ..., 1)
    sizes = []
    for axis, (s, offset) in enumerate(zip(strides, offsets)):
        n = shape[axis + 1]
        step = s if subsample else 1
        index = ops.mod(ops.arange(n // step, dtype="int32")[None, :] * step + offset[:, None], n)  # (B, n/step)
        index = ops.reshape(index, (-1, *[1] * axis, n // step, *[1] * (rank - axis - 1)))
        flat = flat * n + index
        sizes.append(n // step)
    pixels = ops.reshape(x, (-1, x.shape[-1]))  # (B*prod(spatial), C)
    out = ops.take(pixels, ops.reshape(flat, (-1,)), axis=0)
    return ops.reshape(out, (shape[0], *sizes, x.shape[-1]))  # (B, *sizes, C)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--runtimes", default="keras,saved_model,litert,onnx")
    parser.add_argument("--output", required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    runtimes = parse_list(args.runtimes, RUNTIMES, "runtimes")
    import keras

    import keras_shiftinv as ks
    from keras_shiftinv import provenance
    from keras_shiftinv.layers import _nd, _utils

    stamp = provenance.start()
    current = _utils.gather_phase
    labels, fns = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, method, gather in [("stride", "stride", current), ("aps", "aps", current),
                                      ("aps@round6", "aps", round6_gather_phase),
                                      ("group-aps", "group-aps", current),
                                      ("group-aps@round6", "group-aps", round6_gather_phase)]:
            keras.utils.set_random_seed(0)
            padding = "circular" if ks.methods.get(method).chooses_phase else "zeros"
            model = ks.resnet18(method, num_classes=1000, width=args.width, padding=padding,
                                input_shape=(args.image_size, args.image_size, 3))
            _utils.gather_phase = _nd.gather_phase = gather  # read when each runner traces or exports
            try:
                for runtime in runtimes:
                    fns[runtime, label] = runner(runtime, model, os.path.join(tmp, label, runtime))
            finally:
                _utils.gather_phase = _nd.gather_phase = current
            labels.append(label)
        x = np.random.default_rng(0).normal(size=(args.batch, args.image_size, args.image_size, 3)).astype("float32")
        for runtime in runtimes:  # the same pixels gathered: the same logits
            for method in ("aps", "group-aps"):
                np.testing.assert_array_equal(fns[runtime, method](x), fns[runtime, method + "@round6"](x))
        samples = measure(fns, x, args.rounds, args.calls)
    text, summary = table(samples, labels, runtimes)
    record = provenance.finish(stamp)
    head = (f"ResNet-18, {args.image_size}x{args.image_size}, width {args.width}, batch {args.batch}, 1000 classes, "
            f"CPU, float32; the alignment's gather with constant index tables vs round 6's computed indices; "
            f"{args.rounds} interleaved rounds of {args.calls} calls; medians; {load_text(record)}")
    write_report(args, head, text, summary, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
