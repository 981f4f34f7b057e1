"""Input pipeline throughput next to the model's training throughput, same run.

    python benchmarks/bench_input.py

Prints img/s of the Fashion-MNIST and image-folder training pipelines and of
`resnet18` (`group`) training at the same image size, at the full width 1.0 and
at the width 0.25 that the Table 1 presets use, and their ratios (target >= 5x).
"""

import argparse
import os
import tempfile
import time

import keras
import numpy as np
from PIL import Image

import keras_shiftinv as ks
from keras_shiftinv import data


def pipeline_rate(ds, batches):
    it = iter(ds)
    next(it)
    start = time.perf_counter()
    n = sum(len(next(it)[1]) for _ in range(batches))
    return n / (time.perf_counter() - start)


def model_rate(size, batch, width, steps=5):
    model = ks.resnet18("group", num_classes=10, input_shape=(size, size, 3), width=width)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.normal(size=(batch, size, size, 3)).astype("float32")
    y = np.random.randint(0, 10, batch)
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch / (time.perf_counter() - start)


def make_folder(root, n=512, size=(120, 100)):
    rng = np.random.default_rng(0)
    for i in range(n):
        d = os.path.join(root, f"class{i % 4}")
        os.makedirs(d, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, size + (3,), dtype=np.uint8)).save(os.path.join(d, f"{i}.jpg"))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.25])
    args = parser.parse_args()
    rows = []
    fm = data.fashion_mnist("train", batch_size=args.batch_size)[0].repeat()
    rows.append(("fashion_mnist 32x32", 32, pipeline_rate(fm, 40)))
    with tempfile.TemporaryDirectory() as root:
        make_folder(root)
        folder, _ = data.image_folder(root, batch_size=args.batch_size, image_size=64, training=True)
        rows.append(("image folder 64x64 (JPEG)", 64, pipeline_rate(folder.repeat(), 30)))
    print(f"{'pipeline':<28}{'input img/s':>12}{'width':>7}{'model img/s':>12}{'ratio':>8}  target >= 5x")
    for name, size, rate in rows:
        for width in args.widths:
            model = model_rate(size, args.batch_size, width)
            verdict = "met" if rate >= 5 * model else "MISSED"
            print(f"{name:<28}{rate:>12.0f}{width:>7}{model:>12.0f}{rate / model:>8.1f}  {verdict}")


if __name__ == "__main__":
    main()
