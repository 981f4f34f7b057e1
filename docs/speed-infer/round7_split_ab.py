"""Round 7 A/B: a polyphase module's roll, split and padding as one gather vs three steps, per runtime.

Builds `stride` (zero padding), `group` (circular padding here, as the aligned methods) and
`group-aps` (seed 0) and serves the two polyphase ones twice: traced or exported with the package's
`_utils.split_phases` (labels `group`, `group-aps`: the alignment's roll, the phase split and the
circular padding of the phase maps as one gather from a constant index table) and with
`three_steps` below (label `...@three-steps`: the roll as one gather, `space_to_depth`, then the
padding as one gather per axis: what round 6's fused path ran). Then bench_infer's interleaved
loop, ratios to `stride`, provenance. Both give the same logits (checked before timing).

    python docs/speed-infer/round7_split_ab.py --image-size 64 --width 0.25 --batch 32 \
        --runtimes keras,saved_model,litert,onnx --output docs/speed-infer/round7_split_ab64.md
"""
import os
import sys
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from bench_infer import ab_arguments, ab_run  # noqa: E402


def three_steps(x, strides, pad=0, mode="zeros", phase_index=None):
    """`_utils.split_phases` as three steps (its path for dynamic shapes): roll, split, pad."""
    from keras import ops

    from keras_shiftinv.layers import _utils

    if phase_index is not None:
        x = _utils.gather_phase(x, phase_index, strides, subsample=False)  # the roll: one gather
    stack = ops.space_to_depth(x, 2)  # (B, h, w, 4*C), channel p*C + c
    return _utils.pad_axes(stack, [(pad, pad)] * len(strides), mode)  # one gather per axis


def main():
    args = ab_arguments(__doc__)
    from keras_shiftinv.layers import _nd

    def patch():
        return mock.patch.object(_nd, "split_phases", three_steps)  # read when a runner traces or exports

    variants = [("stride", "stride", "zeros", None), ("group", "group", "circular", None),
                ("group@three-steps", "group", "circular", patch), ("group-aps", "group-aps", "circular", None),
                ("group-aps@three-steps", "group-aps", "circular", patch)]
    pairs = [("group", "group@three-steps"), ("group-aps", "group-aps@three-steps")]
    return ab_run(args, variants, pairs, "roll, split and padding as one gather vs three steps")


if __name__ == "__main__":
    sys.exit(main())
