"""Round 6: `choose_phase` alone in its two reduction orders, per map shape, interleaved (CPU ms, TF).

`channels-first`: each pixel reduced over its channels, then each phase's positions (the round-5 order);
`positions-first`: each phase's positions, then the channels. Picked by setting
`_utils.POSITIONS_FIRST_BELOW` to 0 or above every channel count while each `tf.function` traces.

    python docs/speed-infer/round6_choice_orders.py > docs/speed-infer/round6_choice_orders.md
"""
import os
import time

import numpy as np
import tensorflow as tf

from keras_shiftinv import provenance
from keras_shiftinv.layers import _utils

SHAPES = [(32, 64, 64, 3), (32, 32, 32, 16), (32, 16, 16, 32), (32, 8, 8, 64), (32, 4, 4, 128), (8, 224, 224, 3),
          (8, 112, 112, 16), (8, 112, 112, 32), (8, 112, 112, 64), (8, 56, 56, 64), (8, 28, 28, 128), (8, 56, 56, 256)]
default = _utils.POSITIONS_FIRST_BELOW
stamp = provenance.start()
rows = []
for shape in SHAPES:
    x = tf.constant(np.random.default_rng(0).normal(size=shape).astype("float32"))
    spec = [tf.TensorSpec([None, *shape[1:]])]
    fns = {}
    for order, below in (("channels-first", 0), ("positions-first", 10**9)):
        _utils.POSITIONS_FIRST_BELOW = below
        fns[order] = tf.function(lambda v: _utils.choose_phase(v), input_signature=spec)
        fns[order].get_concrete_function()  # traced with this order
    _utils.POSITIONS_FIRST_BELOW = default
    assert (fns["channels-first"](x).numpy() == fns["positions-first"](x).numpy()).all()
    times = {order: [] for order in fns}
    for r in range(20):
        for order in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            t = time.process_time()
            for _ in range(5):
                fns[order](x)
            times[order].append((time.process_time() - t) / 5 * 1e3)
    ms = {order: float(np.median(v)) for order, v in times.items()}
    rows.append(f"| {'x'.join(map(str, shape))} | {ms['channels-first']:.2f} | {ms['positions-first']:.2f} "
                f"| {ms['positions-first'] / ms['channels-first']:.2f} | "
                f"{'positions-first' if shape[-1] < default else 'channels-first'} |")
record = provenance.finish(stamp)
print(f"choose_phase alone, CPU ms per call (median of 20 interleaved rounds of 5 calls), float32, TF; "
      f"load average {record['load_average_before']} before, {record['load_average_after']} after; "
      f"commit {record['git']['commit'][:7]}{' (dirty)' if record['git']['dirty'] else ''}; "
      f"TF {record['versions']['tensorflow']}, {os.cpu_count()} cores\n")
print("| map (B x H x W x C) | channels-first ms | positions-first ms | positions / channels | the package picks |")
print("|---|---:|---:|---:|---|")
print("\n".join(rows))
