"""Round 6 A/B: the phase choice's two reduction orders in whole ResNet-18s, interleaved, per runtime.

Builds `stride`, `aps` and `group-aps` (seed 0, as benchmarks/bench_infer.py) and serves the aligned
ones twice: traced or exported with `_utils.POSITIONS_FIRST_BELOW` at the package's value (label
`aps`, `group-aps`: positions first below `POSITIONS_FIRST_BELOW` channels) and at 0 (label `...@channels-first`: every
site reduces each pixel over its channels first, the round-5 order). Then bench_infer's interleaved
loop, ratios to `stride`, provenance.

    python docs/speed-infer/round6_choice_ab.py --image-size 64 --width 0.25 --batch 32 \
        --runtimes keras,saved_model,litert,onnx --output docs/speed-infer/round6_choice_ab64.md
"""
import os
import sys
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from bench_infer import ab_arguments, ab_run  # noqa: E402


def main():
    args = ab_arguments(__doc__)
    from keras_shiftinv.layers import _utils

    def patch():  # read when a runner traces or exports
        return mock.patch.object(_utils, "POSITIONS_FIRST_BELOW", 0)

    variants = [("stride", "stride", "zeros", None), ("aps", "aps", "circular", None),
                ("aps@channels-first", "aps", "circular", patch), ("group-aps", "group-aps", "circular", None),
                ("group-aps@channels-first", "group-aps", "circular", patch)]
    pairs = [("aps", "aps@channels-first"), ("group-aps", "group-aps@channels-first")]  # the same phases here
    what = (f"phase choice positions-first below {_utils.POSITIONS_FIRST_BELOW} channels vs channels-first "
            "everywhere")
    return ab_run(args, variants, pairs, what, exact=False)


if __name__ == "__main__":
    sys.exit(main())
