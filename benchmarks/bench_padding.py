"""Forms of circular padding, interleaved round by round, as ratios to zero padding, per runtime.

Which way of writing a circular pad does each runtime run fastest? The
model is `--depth` times (pad one pixel on every side, 3x3 convolution
C -> C with `valid` padding, ReLU) on a `(batch, size, size, C)` map, the
pattern of an aligned method's stride-1 convolutions. The forms:

- `zeros`: `ops.pad` with zeros, the baseline (what `stride`'s convolutions pay);
- `gather`: the package's `pad_spatial`, one gather of the flattened pixels;
- `take`: the package's `pad_axes`, one gather per axis (`pad_spatial` before round 5);
- `concat`: slices and a concatenation per axis, no gather.

Every form gives the same values (checked before timing, per runtime).
Runtimes: `keras` (a `tf.function`), `litert` (TFLiteConverter, builtin ops
only, run by `ai_edge_litert`), `onnx` (tf2onnx at the package's opset, run
by `onnxruntime`). Timing, ratios and provenance as bench_infer (_bench.py).

    python benchmarks/bench_padding.py --size 64 --channels 16 --batch 32 --output /tmp/pad64.md
    python benchmarks/bench_padding.py --size 112 --channels 64 --batch 8 --output /tmp/pad112.md
"""

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench import fail  # noqa: E402 (this folder)
from _bench import load_text  # noqa: E402
from _bench import measure  # noqa: E402
from _bench import parse_list  # noqa: E402
from _bench import table  # noqa: E402
from _bench import write_report  # noqa: E402

FORMS = ("zeros", "gather", "take", "concat")
RUNTIMES = ("keras", "litert", "onnx")


def concat_pad(x, p):
    """Circular pad of `p < size` pixels on axes 1 and 2 from slices and concatenations."""
    from keras import ops

    x = ops.concatenate([x[:, -p:], x, x[:, :p]], axis=1)  # (B, H + 2p, W, C)
    return ops.concatenate([x[:, :, -p:], x, x[:, :, :p]], axis=2)  # (B, H + 2p, W + 2p, C)


def pad(form, x, p):
    """`x` padded by `p` on each side of axes 1 and 2, circularly (`zeros`: with zeros)."""
    from keras import ops

    from keras_shiftinv.layers._utils import pad_axes
    from keras_shiftinv.layers._utils import pad_spatial

    if form == "zeros":
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
    if form == "gather":
        return pad_spatial(x, ((p, p), (p, p)), "circular")
    if form == "take":
        return pad_axes(x, [(p, p), (p, p)], "circular")
    return concat_pad(x, p)


def build(form, args):
    """The model with this padding form as a `tf.function` (the same kernels for every form)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    shape = (3, 3, args.channels, args.channels)
    kernels = [rng.normal(scale=(2.0 / (9 * args.channels)) ** 0.5, size=shape).astype("float32")
               for _ in range(args.depth)]  # numpy: constants of the graph, not captured inputs
    spec = tf.TensorSpec([None, args.size, args.size, args.channels], tf.float32)

    @tf.function(input_signature=[spec])
    def model(x):
        for kernel in kernels:
            x = tf.nn.relu(tf.nn.conv2d(pad(form, x, 1), tf.constant(kernel), 1, "VALID"))
        return x

    return model


def runner(runtime, model, directory, batch):
    """`fn(x)` that runs the `tf.function` `model` in one runtime on batches of `batch`."""
    if runtime == "keras":
        return lambda x: model(x).numpy()
    fn = model.get_concrete_function()
    os.makedirs(directory, exist_ok=True)
    if runtime == "litert":
        import tensorflow as tf
        from ai_edge_litert.interpreter import Interpreter

        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        path = os.path.join(directory, "model.tflite")
        with open(path, "wb") as f:
            f.write(converter.convert())
        interpreter = Interpreter(model_path=path)
        source, target = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
        interpreter.resize_tensor_input(source, [batch, *fn.inputs[0].shape[1:]])
        interpreter.allocate_tensors()

        def run(x):
            interpreter.set_tensor(source, x)
            interpreter.invoke()
            return interpreter.get_tensor(target)

        return run
    import onnxruntime
    import tf2onnx

    from keras_shiftinv.export.onnx import OPSET

    proto, _ = tf2onnx.convert.from_function(model, input_signature=model.input_signature, opset=OPSET)
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4, help="pad + conv + ReLU blocks")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=3, help="calls per variant per round")
    parser.add_argument("--forms", default=",".join(FORMS))
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    parser.add_argument("--output", required=True, help="the table (markdown); its provenance goes to <stem>.json")
    parser.add_argument("--note", default="", help="said beside the provenance, e.g. what else loaded the machine")
    args = parser.parse_args()
    forms = parse_list(args.forms, FORMS, "forms")
    runtimes = parse_list(args.runtimes, RUNTIMES, "runtimes")
    if "zeros" not in forms:
        forms = ["zeros", *forms]
    if args.rounds < 10:
        fail(f"--rounds must be at least 10. Received: rounds={args.rounds}")
    for name in ("size", "channels", "batch", "depth"):
        if getattr(args, name) < (2 if name == "size" else 1):
            fail(f"--{name} is too small. Received: {name}={getattr(args, name)}")

    from keras_shiftinv import provenance

    stamp = provenance.start()
    x = np.random.default_rng(1).normal(size=(args.batch, args.size, args.size, args.channels)).astype("float32")
    fns = {}
    with tempfile.TemporaryDirectory() as tmp:
        for runtime in runtimes:
            for form in forms:
                fns[runtime, form] = runner(runtime, build(form, args), os.path.join(tmp, runtime, form), args.batch)
            circular = [fns[runtime, f](x) for f in forms if f != "zeros"]
            for other in circular[1:]:  # every circular form: the same values
                np.testing.assert_allclose(other, circular[0], rtol=1e-5, atol=1e-5)
        samples = measure(fns, x, args.rounds, args.calls)
    text, summary = table(samples, forms, runtimes, base="zeros")
    record = provenance.finish(stamp)
    head = (f"{args.depth} x (pad 1, 3x3 conv, ReLU), {args.size}x{args.size}x{args.channels}, batch {args.batch}, "
            f"CPU, float32; {args.rounds} interleaved rounds of {args.calls} calls; medians; {load_text(record)}")
    write_report(args, head, text, summary, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
