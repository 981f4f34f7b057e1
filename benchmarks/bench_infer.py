"""Inference time of ResNet-18 variants, interleaved round by round, as ratios to `stride`.

Every variant is built once (same seed) and served by each runtime asked for:
`keras` (a `tf.function` of the model, batch None), `saved_model` (the
package's export, `serve_float` signature), `litert` and `onnx` (the
package's exports, run by `ai_edge_litert` and `onnxruntime`). Then, round
by round, every (runtime, variant) is called `--calls` times in an order
rotated each round, so slow phases of a shared machine hit all variants
alike. Per call both CPU time (`time.process_time`, all threads of this
process) and wall time are taken; the table gives, per runtime and variant,
the median per-call milliseconds and the median over rounds of the ratio to
`stride` in the same round, with the 1-minute load average seen during the
rounds. A provenance record (keras_shiftinv/provenance.py) is written beside
the table.

    python benchmarks/bench_infer.py --output /tmp/infer.md
    python benchmarks/bench_infer.py --image-size 224 --width 1 --batch 8 --rounds 10 --calls 1 \
        --runtimes keras --output /tmp/infer224.md
"""

import argparse
import contextlib
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench import fail  # noqa: E402 (this folder; bench_serving uses these names through this module)
from _bench import inference_resnet18  # noqa: E402
from _bench import load_text  # noqa: E402 (bench_serving too)
from _bench import measure  # noqa: E402
from _bench import parse_list  # noqa: E402
from _bench import table  # noqa: E402
from _bench import write_report  # noqa: E402

METHODS = ("stride", "group", "conv3d", "aps", "group-aps")
RUNTIMES = ("keras", "saved_model", "litert", "onnx")
PATHS = ("count", "fused", "factored")  # polyphase_algebra.INFERENCE_PATHS
LEARNED = ("group", "conv3d", "group-aps", "conv3d-aps")  # the methods with PolyphaseDownsample


def runner(runtime, model, directory):
    """`fn(x)` that runs `model` on a float32 batch in one runtime."""
    import tensorflow as tf

    from keras_shiftinv.export import export_litert
    from keras_shiftinv.export import export_onnx
    from keras_shiftinv.export import export_saved_model

    if runtime == "keras":
        spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
        serve = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        serve.get_concrete_function()  # traced now, inside the caller's `inference_path`
        return lambda x: serve(tf.constant(x)).numpy()
    if runtime == "saved_model":
        signature = tf.saved_model.load(export_saved_model(model, directory)).signatures["serve_float"]
        return lambda x: signature(image=tf.constant(x))["logits"].numpy()
    if runtime == "litert":
        from ai_edge_litert.interpreter import Interpreter

        signature = Interpreter(model_path=export_litert(model, directory)).get_signature_runner("serve_float")
        return lambda x: signature(image=x)["probabilities"]
    import onnxruntime

    session = onnxruntime.InferenceSession(export_onnx(model, directory), providers=["CPUExecutionProvider"])
    return lambda x: session.run(["probabilities"], {"image": x})[0]


def variants(methods, paths):
    """`[(label, method, path)]`: each learned method once per path (label `group@fused`), the others once."""
    out = []
    for method in methods:
        for path in (paths if method in LEARNED else paths[:1]):
            out.append((method if path == paths[0] else f"{method}@{path}", method, path))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=3, help="calls per variant per round")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--runtimes", default="keras,saved_model")
    parser.add_argument("--paths", default=None,
                        help="inference paths of the learned methods to compare, e.g. count,fused,factored "
                             "(default: each runtime's own; labels of the others get @path)")
    parser.add_argument("--padding", choices=("method", "circular"), default="method",
                        help="method: circular for the methods that choose a phase, zeros for the others; "
                             "circular: every variant (how much of an aligned method's cost is its padding)")
    parser.add_argument("--output", required=True, help="the table (markdown); its provenance goes to <stem>.json")
    parser.add_argument("--note", default="", help="said beside the provenance, e.g. what else loaded the machine")
    args = parser.parse_args()
    from keras_shiftinv.methods import METHODS as ALL_METHODS  # any method; METHODS is the default set

    methods = parse_list(args.methods, ALL_METHODS, "methods")
    runtimes = parse_list(args.runtimes, RUNTIMES, "runtimes")
    paths = [None] if args.paths is None else parse_list(args.paths, PATHS, "paths")
    if "stride" not in methods:
        methods = ["stride", *methods]
    if args.rounds < 10:
        fail(f"--rounds must be at least 10. Received: rounds={args.rounds}")

    from keras_shiftinv import provenance

    stamp = provenance.start()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, args.image_size, args.image_size, 3)).astype("float32")
    with tempfile.TemporaryDirectory() as tmp:
        fns, labels = build_runners(methods, runtimes, paths, args, tmp)
        samples = measure(fns, x, args.rounds, args.calls)
    text, summary = table(samples, labels, runtimes)
    record = provenance.finish(stamp)
    head = (f"ResNet-18, {args.image_size}x{args.image_size}, width {args.width}, batch {args.batch}, "
            f"{args.num_classes} classes, CPU, float32, padding: {args.padding}; {args.rounds} interleaved rounds of {args.calls} calls; "
            f"medians; {load_text(record)}")
    write_report(args, head, text, summary, record)
    return 0


def build_runners(methods, runtimes, paths, args, tmp):
    """`({(runtime, label): fn}, labels)`: every variant built once (seed 0) and served by each runtime."""
    from keras_shiftinv.layers.polyphase_algebra import inference_path

    fns = {}
    for label, method, path in variants(methods, paths):
        model = inference_resnet18(method, args)
        for runtime in runtimes:
            with contextlib.nullcontext() if path is None else inference_path(path):
                fns[runtime, label] = runner(runtime, model, os.path.join(tmp, label, runtime))
    return fns, [label for label, _, _ in variants(methods, paths)]


def ab_arguments(doc):
    """The command line shared by the A/B scripts in docs/speed-infer (`round*_ab.py`)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--runtimes", default="keras,saved_model,litert,onnx")
    parser.add_argument("--output", required=True, help="the table (markdown); its provenance goes to <stem>.json")
    parser.add_argument("--note", default="", help="said beside the provenance, e.g. what else loaded the machine")
    return parser.parse_args()


def ab_run(args, variants, pairs, what, exact=True):
    """Times two versions of the package's code side by side in whole ResNet-18s, per runtime.

    `variants` are `(label, method, padding, patch)`: each model is built
    (seed 0) and served by every runtime with `patch()` (a context manager
    that swaps the code under test, or None) active while it traces or
    exports. Each `(a, b)` of `pairs` must give the same outputs (equal, or
    within float rounding unless `exact`), checked before timing. Then
    bench_infer's interleaved loop, ratios to `stride`, provenance; `what`
    says what is compared in the table's head.
    """
    import keras

    import keras_shiftinv as ks
    from keras_shiftinv import provenance

    runtimes = parse_list(args.runtimes, RUNTIMES, "runtimes")
    stamp = provenance.start()
    fns = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, method, padding, patch in variants:
            keras.utils.set_random_seed(0)
            model = ks.resnet18(method, num_classes=1000, width=args.width, padding=padding,
                                input_shape=(args.image_size, args.image_size, 3))
            with contextlib.nullcontext() if patch is None else patch():
                for runtime in runtimes:
                    fns[runtime, label] = runner(runtime, model, os.path.join(tmp, label, runtime))
        x = np.random.default_rng(0).normal(size=(args.batch, args.image_size, args.image_size, 3)).astype("float32")
        for runtime in runtimes:
            for a, b in pairs:
                if exact:
                    np.testing.assert_array_equal(fns[runtime, a](x), fns[runtime, b](x))
                else:
                    np.testing.assert_allclose(fns[runtime, a](x), fns[runtime, b](x), rtol=1e-4, atol=1e-5)
        samples = measure(fns, x, args.rounds, args.calls)
    text, summary = table(samples, [label for label, _, _, _ in variants], runtimes)
    record = provenance.finish(stamp)
    head = (f"ResNet-18, {args.image_size}x{args.image_size}, width {args.width}, batch {args.batch}, 1000 classes, "
            f"CPU, float32; {what}; {args.rounds} interleaved rounds of {args.calls} calls; medians; {load_text(record)}")
    write_report(args, head, text, summary, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
