"""Round 8 A/B: the polyphase module as strided convolutions of the map vs over the phase stack, per runtime.

Builds `stride`, `group`, `conv3d` (zero padding) and `group-aps` (circular padding; seed 0) and serves
the polyphase ones twice: traced or exported with the package's code (labels `group`, `conv3d`,
`group-aps`: every phase padded in place, `_utils.phase_pad`, then stride-2 convolutions with the
kernels moved by `polyphase_algebra.strided_kernel`) and with `phase_stack` below (label
`...@stack`: round 7's form: the phase-major stack, `space_to_depth` and a zero pad, or for a static
map padded circular one gather from the same table in the stack's order; then `k x k` convolutions,
the grouped one as a depthwise convolution over the four phases and a sum, the 3-D one as one
convolution over a doubled batch). The path choice is the package's rule in both. Both give the same
logits to float rounding (checked before timing). Then bench_infer's interleaved loop, ratios to
`stride`, provenance.

    python docs/speed-infer/round8_strided_ab.py --image-size 64 --width 0.25 --batch 32 \
        --runtimes keras,saved_model,litert,onnx --output docs/speed-infer/round8_strided_ab64.md
"""
import contextlib
import os
import sys
from unittest import mock

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from bench_infer import ab_arguments, ab_run  # noqa: E402


def stack_padded(self, inputs, phase_index=None):
    """Round 7's input preparation: `((B, h + 2p, w + 2p, 4*C), phase_index)`, channel `p*C + c`."""
    from keras import ops

    from keras_shiftinv.layers import _utils

    x = _utils.pad_to_even_axes(inputs, self._strides, self.padding)
    if self.align == "max_norm" or phase_index is not None:
        phase_index = _utils.resolve_phase(x, self._strides, phase_index)
    p = self.kernel_size // 2
    _, height, width, c = x.shape
    if self.padding == "zeros" or p == 0:
        if phase_index is not None:
            x = _utils.gather_phase(x, phase_index, self._strides, subsample=False)  # the roll
        return _utils.pad_axes(ops.space_to_depth(x, 2), [(p, p)] * 2, self.padding), phase_index
    table = _utils._phase_pad_table((height, width), (2, 2), p, self.padding, phase_index is not None)
    rows, h, w = len(table), height // 2 + 2 * p, width // 2 + 2 * p
    table = table.reshape(rows, h, 2, w, 2).transpose(0, 1, 3, 2, 4).reshape(rows, -1)  # the stack's order
    if phase_index is None:
        x = _utils.take_in_range(ops.reshape(x, (-1, height * width, c)), table[0], axis=1)
    else:
        index = _utils.take_in_range(table, ops.cast(phase_index, "int32"))
        index = index + ops.arange(ops.shape(x)[0], dtype="int32")[:, None] * (height * width)
        x = _utils.take_in_range(ops.reshape(x, (-1, c)), ops.reshape(index, (-1,)))
    return ops.reshape(x, (-1, h, w, 4 * c)), phase_index  # channel p*C + c


def stack_mix_and_merge(self, x, training=None):
    """Round 7's paths on the padded stack: `k x k` convolutions, the rule's choice."""
    from keras import ops

    from keras_shiftinv.layers import polyphase_algebra as algebra

    k, p, c = self.kernel_size, self.kernel_size // 2, self._channels
    b, h, w, _ = ops.shape(x)
    h, w = h - 2 * p, w - 2 * p
    if not training and not isinstance(b, int):
        b = algebra.INFERENCE_BATCH
    folded = None if training else self._folded
    if self._fusing_pays(b * h * w, training=bool(training), folded=folded is not None):
        if folded is None:
            kernel, bias = self.fused_kernel(x.dtype)
        else:  # folded in the strided layout (2k, 2k, C, F): back to (k, k, 4*C, F)
            kernel, bias = folded
            kernel = kernel.reshape(k, 2, k, 2, c, -1).transpose(0, 2, 1, 3, 4, 5).reshape(k, k, 4 * c, -1)
        y = ops.conv(x, ops.cast(kernel, x.dtype), padding="valid")
        return y if bias is None else y + ops.cast(bias, y.dtype)
    mixing_bias, merge_bias = self._biases()
    if self.mixing == "group":
        mixed = self.mixing_kernel.shape[-1]
        kernel = ops.reshape(ops.cast(self.mixing_kernel, x.dtype), (k, k, 4 * c, mixed // c))
        y = ops.depthwise_conv(x, kernel, padding="valid")  # (B, h, w, 4*C*M)
        y = ops.sum(ops.reshape(y, (-1, h, w, 4, mixed)), axis=3)  # (B, h, w, C*M)
    else:
        f = self.filters
        kernel = ops.transpose(ops.cast(self.mixing_kernel, x.dtype), (1, 2, 0, 3, 4))  # (k, k, 3, C, O)
        windows = ops.concatenate([x[..., : 3 * c], x[..., c:]], axis=0)  # (2B, h, w, 3*C)
        y = ops.conv(windows, ops.reshape(kernel, (k, k, 3 * c, f)), padding="valid")  # (2B, h, w, O)
        y = ops.transpose(ops.reshape(y, (2, -1, h, w, f)), (1, 2, 3, 4, 0))  # (B, h, w, O, d)
        y = ops.reshape(y, (-1, h, w, 2 * f))
    if mixing_bias is not None:
        raise ValueError("the ResNets' modules have no biases; this A/B does not carry them")
    return ops.matmul(y, ops.cast(self.merge_kernel, y.dtype))


def main():
    args = ab_arguments(__doc__)
    from keras_shiftinv.layers import polyphase_downsample as pd

    @contextlib.contextmanager
    def patch():  # read when a runner traces or exports
        with mock.patch.object(pd.PolyphaseDownsample, "padded_phases", stack_padded), \
                mock.patch.object(pd.PolyphaseDownsample, "mix_and_merge", stack_mix_and_merge):
            yield

    variants = [("stride", "stride", "zeros", None)]
    for method, padding in (("group", "zeros"), ("conv3d", "zeros"), ("group-aps", "circular")):
        variants += [(method, method, padding, None), (f"{method}@stack", method, padding, patch)]
    pairs = [(m, f"{m}@stack") for m in ("group", "conv3d", "group-aps")]
    real = np.testing.assert_allclose

    def close(actual, desired, rtol, atol):  # float rounding, relative to the logits' scale
        real(actual, desired, rtol=rtol, atol=atol * max(1.0, float(np.max(np.abs(desired)))))

    with mock.patch.object(np.testing, "assert_allclose", close):
        return ab_run(args, variants, pairs, "strided convolutions of the map vs the phase stack (round 7)",
                      exact=False)


if __name__ == "__main__":
    sys.exit(main())
