"""Training and inference img/s of `resnet18` variants on JAX beside TensorFlow, as ratios.

One long-lived worker process per backend (`KERAS_BACKEND` set); the measurements are
interleaved round by round (method by method, the backend order alternating each round), so a
change in machine load hits both alike. Each backend compiles as `shiftinv train` does: TensorFlow
without XLA (the default `--jit-compile` off), JAX jit-compiled. Prints the median img/s over the
rounds and the ratio JAX / TensorFlow.

    python benchmarks/bench_backends.py                          # 32x32, batch 32, width 0.25
    python benchmarks/bench_backends.py --image-size 64 --batch-size 64 --width 1 --rounds 5
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax")


def measure(step, images, steps):
    step()  # trace and warm up
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * images / (time.perf_counter() - start)


def worker():
    """Reads one JSON request a line from stdin, answers `{"train": img/s, "infer": img/s}`."""
    import keras
    import numpy as np

    import keras_shiftinv as ks

    models = {}
    print(json.dumps({"ready": keras.config.backend()}), flush=True)
    for line in sys.stdin:
        r = json.loads(line)
        key = r["method"]
        if key not in models:
            keras.utils.set_random_seed(0)
            model = ks.resnet18(r["method"], num_classes=10, input_shape=(r["size"], r["size"], 3), width=r["width"])
            model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          jit_compile=keras.config.backend() == "jax")
            models[key] = model
        model = models[key]
        rng = np.random.default_rng(0)
        x = rng.normal(size=(r["batch"], r["size"], r["size"], 3)).astype("float32")
        y = rng.integers(0, 10, r["batch"])
        train = measure(lambda: model.train_on_batch(x, y), len(x), r["steps"])
        infer = measure(lambda: model.predict_on_batch(x), len(x), r["steps"])
        print(json.dumps({"train": train, "infer": infer}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="stride,blur,group,conv3d,aps,group-aps,conv3d-aps")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    methods = args.methods.split(",")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    workers = {}
    for backend in BACKENDS:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        workers[backend] = subprocess.Popen([sys.executable, __file__, "--worker"], env=env, text=True,
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    for backend, proc in workers.items():
        ready = json.loads(proc.stdout.readline())["ready"]
        if ready != backend:
            raise SystemExit(f"worker for {backend} runs {ready}")
    rates = {(b, m, k): [] for b in BACKENDS for m in methods for k in ("train", "infer")}
    for round_ in range(args.rounds):
        for method in methods:
            order = BACKENDS if round_ % 2 == 0 else BACKENDS[::-1]
            for backend in order:
                request = {"method": method, "size": args.image_size, "batch": args.batch_size,
                           "width": args.width, "steps": args.steps}
                workers[backend].stdin.write(json.dumps(request) + "\n")
                workers[backend].stdin.flush()
                answer = json.loads(workers[backend].stdout.readline())
                for kind in ("train", "infer"):
                    rates[(backend, method, kind)].append(answer[kind])
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    for proc in workers.values():
        proc.stdin.close()
        proc.wait()
    print(f"resnet18 width {args.width}, {args.image_size}x{args.image_size}, batch {args.batch_size}, "
          f"median of {args.rounds} interleaved rounds (img/s)")
    print(f"{'method':<12}{'TF train':>10}{'JAX train':>11}{'JAX/TF':>8}{'TF infer':>10}{'JAX infer':>11}{'JAX/TF':>8}")
    for method in methods:
        med = {(b, k): statistics.median(rates[(b, method, k)]) for b in BACKENDS for k in ("train", "infer")}
        print(f"{method:<12}{med['tensorflow', 'train']:>10.0f}{med['jax', 'train']:>11.0f}"
              f"{med['jax', 'train'] / med['tensorflow', 'train']:>8.2f}"
              f"{med['tensorflow', 'infer']:>10.0f}{med['jax', 'infer']:>11.0f}"
              f"{med['jax', 'infer'] / med['tensorflow', 'infer']:>8.2f}")


if __name__ == "__main__":
    worker() if "--worker" in sys.argv else main()
