"""Training and inference throughput of every `resnet18` downsampling variant.

Prints images/second and the ratio to `stride` measured in the same run.

    python benchmarks/bench_resnet.py                      # 64x64, batch 128, CPU
    python benchmarks/bench_resnet.py --image-size 224 --mixed-precision
"""

import argparse
import time

import keras
import numpy as np

import keras_shiftinv as ks

TARGETS = {"group": 0.85, "conv3d": 0.5}  # training ratio to `stride`


def measure(model, x, y, steps, train):
    if train:
        step = lambda: model.train_on_batch(x, y)  # noqa: E731
    else:
        step = lambda: model.predict_on_batch(x)  # noqa: E731
    step()  # trace and warm up
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * len(x) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--variants", nargs="+", default=list(ks.METHODS))
    args = parser.parse_args()
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    if "stride" not in args.variants:
        args.variants.insert(0, "stride")
    rng = np.random.default_rng(0)
    size = args.image_size
    x = rng.normal(size=(args.batch_size, size, size, 3)).astype("float32")
    y = rng.integers(0, args.num_classes, size=(args.batch_size,))
    print(
        f"resnet18 {size}x{size}, batch {args.batch_size}, width {args.width}, "
        f"{args.steps} timed steps, policy {keras.mixed_precision.global_policy().name}"
    )
    results = {}
    for name in args.variants:
        keras.utils.clear_session()
        model = ks.resnet18(
            name, num_classes=args.num_classes, input_shape=(size, size, 3), width=args.width
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        train = measure(model, x, y, args.steps, train=True)
        infer = measure(model, x, y, args.steps, train=False)
        results[name] = (train, infer)
        ratio = train / results["stride"][0]  # stride is measured first: a run cut short keeps its ratios
        print(f"  measured {name}: train {train:.1f} img/s ({ratio:.2f}x stride), infer {infer:.1f} img/s", flush=True)
    base_train, base_infer = results["stride"]
    print(f"\n{'variant':<12}{'train img/s':>13}{'ratio':>8}{'infer img/s':>13}{'ratio':>8}  target")
    for name, (train, infer) in results.items():
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = f">= {target}x: {'met' if train / base_train >= target else 'MISSED'}"
        print(
            f"{name:<12}{train:>13.1f}{train / base_train:>8.2f}"
            f"{infer:>13.1f}{infer / base_infer:>8.2f}  {verdict}"
        )
    if "blur" in results:
        for name in ("group", "conv3d"):
            if name in results:
                faster = results[name][0] > results["blur"][0]
                print(f"{name} faster than blur in training: {faster}")


if __name__ == "__main__":
    main()
