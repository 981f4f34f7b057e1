"""CPU latency and throughput of exported `stride`, `group` and `group-aps` models.

Each variant is exported as a SavedModel (`serve_float` signature, run by
TensorFlow), a LiteRT flatbuffer (run by `ai_edge_litert`'s interpreter) and an
ONNX model (run by `onnxruntime`), then timed at batch 1 and batch 32 on
preprocessed float input. Prints the median latency per call, images/second
and the latency ratio to `stride` in the same runtime, measured in the same run.

    python benchmarks/bench_serving.py                       # 64x64, width 0.5
    python benchmarks/bench_serving.py --image-size 224 --width 1
"""

import argparse
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

import keras_shiftinv as ks
from keras_shiftinv.export import export_litert
from keras_shiftinv.export import export_onnx
from keras_shiftinv.export import export_saved_model

METHODS = ("stride", "group", "group-aps")
RUNTIMES = ("saved_model", "litert", "onnx")
BATCHES = (1, 32)


def runner(runtime, model, directory):
    """`fn(x) -> probabilities` for one runtime."""
    if runtime == "saved_model":
        serve = tf.saved_model.load(export_saved_model(model, directory)).signatures["serve_float"]
        return lambda x: serve(image=tf.constant(x))["probabilities"].numpy()
    if runtime == "litert":
        from ai_edge_litert.interpreter import Interpreter

        serve = Interpreter(model_path=export_litert(model, directory)).get_signature_runner("serve_float")
        return lambda x: serve(image=x)["probabilities"]
    import onnxruntime

    session = onnxruntime.InferenceSession(export_onnx(model, directory), providers=["CPUExecutionProvider"])
    return lambda x: session.run(["probabilities"], {"image": x})[0]


def median_latency(fn, x, repeats):
    fn(x)  # warm up (shape-specialised kernels, interpreter resize)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    inputs = {b: rng.normal(size=(b, args.image_size, args.image_size, 3)).astype("float32") for b in BATCHES}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in METHODS:
            padding = "circular" if method.endswith("aps") else "zeros"
            model = ks.resnet18(method, num_classes=args.num_classes, width=args.width, padding=padding,
                                input_shape=(args.image_size, args.image_size, 3))
            for runtime in RUNTIMES:
                fn = runner(runtime, model, os.path.join(tmp, method, runtime))
                for b in BATCHES:
                    results[method, runtime, b] = median_latency(fn, inputs[b], args.repeats)
    print(f"{args.image_size}x{args.image_size}, width {args.width}, {args.num_classes} classes, "
          f"median of {args.repeats} calls, CPU")
    print("| runtime | batch | variant | latency ms | img/s | latency / stride |")
    print("|---|---:|---|---:|---:|---:|")
    for runtime in RUNTIMES:
        for b in BATCHES:
            for method in METHODS:
                t = results[method, runtime, b]
                ratio = t / results["stride", runtime, b]
                print(f"| {runtime} | {b} | {method} | {1000 * t:.2f} | {b / t:.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
