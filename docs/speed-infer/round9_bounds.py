"""Round 9: what bounds `aps` and `group-aps` at inference, per runtime: the models with parts taken out.

Builds `stride` (zero padding), `aps` and `group-aps` (circular padding; seed 0) and serves the two
aligned methods again with parts taken out, each a *different function*, timed only to bound what
any implementation of that part could save:

- `...@no-choice`: `_utils.choose_phase` patched to return phase 0 for every image (no reductions,
  no comparisons; the gathers of the chosen phase stay): the method if choosing were free;
- `aps@norms-only`: the choice ranks the norms only (no `|value|` peaks for exact ties): the cost of
  a choice that skipped its tie-break;
- `aps@zeros`: `aps` with zero padding (no circular padding before its convolutions);
- `stride@circular`, `group@circular`: the unaligned methods with the circular padding the aligned
  ones need for exact invariance: what that padding alone costs.

No outputs are compared (the variants compute other functions). Then bench_infer's interleaved
loop, ratios to `stride`, provenance.

    python docs/speed-infer/round9_bounds.py --image-size 224 --width 1 --batch 8 --calls 1 \
        --rounds 8 --output docs/speed-infer/round9_bounds224.md
    python docs/speed-infer/round9_bounds.py --image-size 64 --width 0.25 --batch 32 --calls 3 \
        --rounds 10 --output docs/speed-infer/round9_bounds64.md
"""
import os
import sys
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from bench_infer import ab_arguments, ab_run  # noqa: E402


def phase_zero(x, strides=(2, 2), criterion="l2"):
    """Phase 0 for every item of `x`: no reduction, no comparison."""
    from keras import ops

    return ops.zeros((ops.shape(x)[0],), dtype="int32")


def norms_only(x, strides=(2, 2), criterion="l2"):
    """The first phase of largest float32 norm, without the peaks that break exact ties."""
    from keras import ops

    from keras_shiftinv.layers import _utils

    squares = ops.square(_utils._accumulation_dtype(ops.convert_to_tensor(x)))
    shape = ops.shape(x)
    split = [-1]
    for axis, s in enumerate(strides, start=1):
        split += [shape[axis] // s, s]  # (B, n1/s1, s1, ..., nk/sk, sk)
    norms = ops.sum(ops.reshape(ops.sum(squares, axis=-1), split), axis=tuple(range(1, 2 * len(strides), 2)))
    return _utils.first_max_index(ops.reshape(norms, (-1, 4)))


def patched(fn):
    def patch():
        return mock.patch("keras_shiftinv.layers._utils.choose_phase", fn)
    return patch


def main():
    args = ab_arguments(__doc__)
    variants = [
        ("stride", "stride", "zeros", None),
        ("aps", "aps", "circular", None),
        ("aps@no-choice", "aps", "circular", patched(phase_zero)),
        ("aps@norms-only", "aps", "circular", patched(norms_only)),
        ("aps@zeros", "aps", "zeros", None),
        ("stride@circular", "stride", "circular", None),
        ("group-aps", "group-aps", "circular", None),
        ("group-aps@no-choice", "group-aps", "circular", patched(phase_zero)),
        ("group@circular", "group", "circular", None),
    ]
    return ab_run(args, variants, [], "aligned methods with parts taken out (other functions: bounds, not methods)")


if __name__ == "__main__":
    sys.exit(main())
