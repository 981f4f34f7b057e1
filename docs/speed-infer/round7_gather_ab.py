"""Round 7 A/B: the alignment's gather with constant index tables vs round 6's computed indices, per runtime.

Builds `stride` (zero padding), `aps` and `group-aps` (circular padding; seed 0, as
benchmarks/bench_infer.py) and serves the aligned ones twice: traced or exported with the package's
`_utils.gather_phase` (label `aps`, `group-aps`: a constant `(P, n/step)` table per axis, one row
lookup per item, `tf.gather` without Keras's negative-index pass) and with round 6's
`gather_phase`, copied below (label `...@round6`: every index computed at run time from
`arange`/`mod`, then `ops.take`). Since round 7's `split_phases` a `group-aps` module with circular
padding no longer calls `gather_phase` (its roll is part of the split's one gather), so there the
two labels run the same graph; `aps` reads its chosen phase with it at every site. Then
bench_infer's interleaved loop, ratios to `stride`, provenance. Both give the same logits (checked
before timing).

    python docs/speed-infer/round7_gather_ab.py --image-size 64 --width 0.25 --batch 32 \
        --runtimes keras,saved_model,litert,onnx --output docs/speed-infer/round7_gather_ab64.md
"""
import contextlib
import os
import sys
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from bench_infer import ab_arguments, ab_run  # noqa: E402


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
    args = ab_arguments(__doc__)
    from keras_shiftinv.layers import _nd, _utils

    def patch():  # read when a runner traces or exports; _nd holds its own name for it
        stack = contextlib.ExitStack()
        for module in (_utils, _nd):
            stack.enter_context(mock.patch.object(module, "gather_phase", round6_gather_phase))
        return stack

    variants = [("stride", "stride", "zeros", None), ("aps", "aps", "circular", None),
                ("aps@round6", "aps", "circular", patch), ("group-aps", "group-aps", "circular", None),
                ("group-aps@round6", "group-aps", "circular", patch)]
    pairs = [("aps", "aps@round6"), ("group-aps", "group-aps@round6")]
    return ab_run(args, variants, pairs, "the alignment's gather with constant index tables vs round 6's computed indices")


if __name__ == "__main__":
    sys.exit(main())
