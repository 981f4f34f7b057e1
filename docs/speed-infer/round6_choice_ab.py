"""Round 6 A/B: the phase choice's two reduction orders in whole ResNet-18s, interleaved, per runtime.

Builds `stride`, `aps` and `group-aps` (seed 0, as benchmarks/bench_infer.py) and serves the aligned
ones twice: traced or exported with `_utils.POSITIONS_FIRST_BELOW` at the package's value (label
`aps`, `group-aps`: positions first below `POSITIONS_FIRST_BELOW` channels) and at 0 (label `...@channels-first`: every
site reduces each pixel over its channels first, the round-5 order). Then bench_infer's interleaved
loop, ratios to `stride`, provenance.

    python docs/speed-infer/round6_choice_ab.py --image-size 64 --width 0.25 --batch 32 \
        --runtimes keras,saved_model,litert,onnx --output docs/speed-infer/round6_choice_ab64.md
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
    from keras_shiftinv.layers import _utils

    stamp = provenance.start()
    default = _utils.POSITIONS_FIRST_BELOW
    labels, fns = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, method, below in [("stride", "stride", default), ("aps", "aps", default),
                                     ("aps@channels-first", "aps", 0), ("group-aps", "group-aps", default),
                                     ("group-aps@channels-first", "group-aps", 0)]:
            keras.utils.set_random_seed(0)
            padding = "circular" if ks.methods.get(method).chooses_phase else "zeros"
            model = ks.resnet18(method, num_classes=1000, width=args.width, padding=padding,
                                input_shape=(args.image_size, args.image_size, 3))
            _utils.POSITIONS_FIRST_BELOW = below  # read when each runner traces or exports the model
            try:
                for runtime in runtimes:
                    fns[runtime, label] = runner(runtime, model, os.path.join(tmp, label, runtime))
            finally:
                _utils.POSITIONS_FIRST_BELOW = default
            labels.append(label)
        x = np.random.default_rng(0).normal(size=(args.batch, args.image_size, args.image_size, 3)).astype("float32")
        for runtime in runtimes:  # the two orders pick the same phases here: the same logits
            for method in ("aps", "group-aps"):
                np.testing.assert_allclose(fns[runtime, method](x), fns[runtime, method + "@channels-first"](x),
                                           rtol=1e-4, atol=1e-5)
        samples = measure(fns, x, args.rounds, args.calls)
    text, summary = table(samples, labels, runtimes)
    record = provenance.finish(stamp)
    head = (f"ResNet-18, {args.image_size}x{args.image_size}, width {args.width}, batch {args.batch}, 1000 classes, "
            f"CPU, float32; phase choice positions-first below {default} channels vs channels-first everywhere; "
            f"{args.rounds} interleaved rounds of {args.calls} calls; medians; {load_text(record)}")
    write_report(args, head, text, summary, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
