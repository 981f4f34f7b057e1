"""Round 7 A/B: a polyphase module's roll, split and padding as one gather vs three steps, per runtime.

Builds `stride`, `group` (circular padding here, as the aligned methods) and `group-aps` (seed 0, as
benchmarks/bench_infer.py) and serves the two polyphase ones twice: traced or exported with the
package's `_utils.split_phases` (labels `group`, `group-aps`: the alignment's roll, the phase split
and the circular padding of the phase maps as one gather from constant index tables) and with
`three_steps` below (label `...@three-steps`: the roll as one gather, `space_to_depth`, then the
padding as one gather per axis: what round 6's fused path ran). Then bench_infer's interleaved loop,
ratios to `stride`, provenance. Both give the same logits (checked before timing).

    python docs/speed-infer/round7_split_ab.py --image-size 64 --width 0.25 --batch 32 \
        --runtimes keras,saved_model,litert,onnx --output docs/speed-infer/round7_split_ab64.md
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


def three_steps(x, strides, pad=0, mode="zeros", phase_index=None):
    """`_utils.split_phases` as three steps (its path for dynamic shapes): roll, split, pad."""
    from keras import ops

    from keras_shiftinv.layers import _utils

    if phase_index is not None:
        x = _utils.gather_phase(x, phase_index, strides, subsample=False)  # the roll: one gather
    stack = ops.space_to_depth(x, 2)  # (B, h, w, 4*C), channel p*C + c
    return _utils.pad_axes(stack, [(pad, pad)] * len(strides), mode)  # one gather per axis


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
    from keras_shiftinv.layers import _nd

    stamp = provenance.start()
    current = _nd.split_phases
    labels, fns = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, method, split in [("stride", "stride", current), ("group", "group", current),
                                     ("group@three-steps", "group", three_steps),
                                     ("group-aps", "group-aps", current),
                                     ("group-aps@three-steps", "group-aps", three_steps)]:
            keras.utils.set_random_seed(0)
            padding = "zeros" if method == "stride" else "circular"
            model = ks.resnet18(method, num_classes=1000, width=args.width, padding=padding,
                                input_shape=(args.image_size, args.image_size, 3))
            _nd.split_phases = split  # read when each runner traces or exports
            try:
                for runtime in runtimes:
                    fns[runtime, label] = runner(runtime, model, os.path.join(tmp, label, runtime))
            finally:
                _nd.split_phases = current
            labels.append(label)
        x = np.random.default_rng(0).normal(size=(args.batch, args.image_size, args.image_size, 3)).astype("float32")
        for runtime in runtimes:  # the same pixels gathered: the same logits
            for method in ("group", "group-aps"):
                np.testing.assert_array_equal(fns[runtime, method](x), fns[runtime, method + "@three-steps"](x))
        samples = measure(fns, x, args.rounds, args.calls)
    text, summary = table(samples, labels, runtimes)
    record = provenance.finish(stamp)
    head = (f"ResNet-18, {args.image_size}x{args.image_size}, width {args.width}, batch {args.batch}, 1000 classes, "
            f"CPU, float32; roll, split and padding as one gather vs three steps; "
            f"{args.rounds} interleaved rounds of {args.calls} calls; medians; {load_text(record)}")
    write_report(args, head, text, summary, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
