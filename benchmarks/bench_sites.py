"""Inference time of each `PolyphaseDownsample` site of ResNet-18 on its fused and factored path.

Builds `resnet18(method)` at the given size, takes every `PolyphaseDownsample`
with the shape of its input in the model, and serves each site alone as a
`tf.function` of `layer(x, training=False)` (batch None, as served) traced inside
`inference_path("fused")` and inside `inference_path("factored")`, beside the
strided `Conv2D` it replaces (same kernel size and filters). Then, round by
round (order rotated per round), every (site, path) is called `--calls`
times on a random input; per call CPU time (`time.process_time`) is taken.
The table gives per site the median CPU ms of each path, the median over
rounds of fused / factored, and what the cost rule (`fusing_pays`) picks at
inference. At an aligned site (`group-aps`, `conv3d-aps`) the two parts of the
alignment are timed alone as well, on the same input: the phase choice
(`choose_phase`) and the gather that rolls the map (`gather_phase`). A
provenance record goes to `<stem>.json` beside the table.

    python benchmarks/bench_sites.py --image-size 224 --width 1 --batch 8 --output /tmp/sites224.md
    python benchmarks/bench_sites.py --methods group-aps --output /tmp/sites_aligned64.md
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench import fail  # noqa: E402 (this folder)
from _bench import load_text  # noqa: E402
from _bench import measure  # noqa: E402
from _bench import write_report  # noqa: E402

PATHS = ("fused", "factored")


def sites(method, args):
    """`[(name, layer, input_shape)]` of the model's `PolyphaseDownsample` layers."""
    from keras_shiftinv.layers import PolyphaseDownsample
    from keras_shiftinv.models import resnet18

    model = resnet18(method, input_shape=(args.image_size, args.image_size, 3), width=args.width)
    out = []
    for layer in model.layers:
        if isinstance(layer, PolyphaseDownsample):
            shape = layer.input.shape if not isinstance(layer.input, list) else layer.input[0].shape
            out.append((layer.name, layer, (args.batch, *shape[1:])))
    return out


def first(outputs):
    """The map of a layer's outputs (an aligned layer with `return_index` also returns its phases)."""
    return outputs[0] if isinstance(outputs, (tuple, list)) else outputs


def runners(method, args):
    """`{(site, path): fn}`, `{site: rule picks fused}`: each site alone, traced per path, on its own input."""
    import keras
    import tensorflow as tf

    from keras_shiftinv.layers.polyphase_algebra import inference_path

    fns, picks = {}, {}
    rng = np.random.default_rng(0)
    for name, layer, shape in sites(method, args):
        label = f"{method}:{name} {shape[1]}x{shape[2]}x{shape[3]}->{layer.filters} k{layer.kernel_size}"
        x = tf.constant(rng.normal(size=shape).astype("float32"))
        spec = tf.TensorSpec([None, *shape[1:]], tf.float32)  # batch None, as served
        for path in PATHS:
            with inference_path(path):
                fn = tf.function(lambda x, layer=layer: first(layer(x, training=False)), input_signature=[spec])
                fn.get_concrete_function()  # traced now, inside `inference_path`
            fns[(label, path)] = lambda _, fn=fn, x=x: fn(x).numpy()
        conv = keras.layers.Conv2D(layer.filters, layer.kernel_size, strides=2, padding="same")
        conv.build(shape)
        served = tf.function(lambda x, conv=conv: conv(x), input_signature=[spec])
        fns[(label, "stride")] = lambda _, fn=served, x=x: fn(x).numpy()
        if layer.align == "max_norm":
            from keras_shiftinv.layers._utils import choose_phase
            from keras_shiftinv.layers._utils import gather_phase

            choose = tf.function(lambda x: choose_phase(x), input_signature=[spec])
            roll = tf.function(lambda x: gather_phase(x, choose_phase(x), (2, 2), subsample=False),
                               input_signature=[spec])
            fns[(label, "choose")] = lambda _, fn=choose, x=x: fn(x).numpy()
            fns[(label, "choose+gather")] = lambda _, fn=roll, x=x: fn(x).numpy()
        pixels = shape[0] * (shape[1] // 2) * (shape[2] // 2)
        picks[label] = bool(layer._fusing_pays(pixels))
    return fns, picks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--methods", default="group,conv3d")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--output", required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    if args.rounds < 10:
        fail(f"--rounds must be at least 10. Received: rounds={args.rounds}")

    from keras_shiftinv import provenance

    stamp = provenance.start()
    fns, picks = {}, {}
    for method in args.methods.split(","):
        f, p = runners(method, args)
        fns.update(f)
        picks.update(p)
    rounds = measure(fns, None, args.rounds, args.calls)  # each fn holds its own input
    samples = {key: np.array([cpu for cpu, _, _ in values]) for key, values in rounds.items()}  # CPU s per call
    record = provenance.finish(stamp)
    rows, summary = [], []
    for label in picks:
        parts = [part for part in ("stride", *PATHS, "choose", "choose+gather") if (label, part) in samples]
        ms = {part: 1e3 * float(np.median(samples[(label, part)])) for part in parts}
        align = [f"{ms[part]:.2f}" if part in ms else "-" for part in ("choose", "choose+gather")]
        ratio = float(np.median(samples[(label, "fused")] / samples[(label, "factored")]))
        faster = "fused" if ratio < 1 else "factored"
        rule = "fused" if picks[label] else "factored"
        rows.append(f"| {label} | {ms['stride']:.2f} | {ms['fused']:.2f} | {ms['factored']:.2f} | {ratio:.2f} "
                    f"| {faster} | {rule} | {align[0]} | {align[1]} |")
        summary.append({"site": label, "ms": ms, "fused_over_factored": ratio, "rule": rule})
    head = (f"PolyphaseDownsample sites of ResNet-18, {args.image_size}x{args.image_size}, width {args.width}, "
            f"batch {args.batch}, CPU, float32, training=False in tf.function; {args.rounds} interleaved rounds "
            f"of {args.calls} calls; median CPU ms; {load_text(record)}")
    text = "\n".join([
        "| site | strided conv | fused | factored | fused / factored | faster | rule picks | phase choice "
        "| choice + gather |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|",
        *rows,
    ])
    write_report(args, head, text, summary, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
