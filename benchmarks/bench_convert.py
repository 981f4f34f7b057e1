"""Wall time of `keras_shiftinv.convert` on keras.applications ResNet50, per method.

    python3 benchmarks/bench_convert.py [--size 224] [--methods blur group-aps ...]

Builds ResNet50 (weights=None) once and converts it to each method with
`padding="circular"`, timing each conversion (graph rewrite, weight copy and
the least-squares fits). The build time is printed alongside as the baseline
measured in the same run: on a shared machine only the ratio is comparable.
"""

import argparse
import time

import keras

import keras_shiftinv as ks
from keras_shiftinv.methods import METHODS


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    args = parser.parse_args()
    start = time.perf_counter()
    model = keras.applications.ResNet50(weights=None, input_shape=(args.size, args.size, 3))
    build = time.perf_counter() - start
    print(f"ResNet50 {args.size}x{args.size}: build {build:.1f} s (baseline)")
    print("| method | convert s | / build | sites replaced | max fit error |")
    print("|---|---:|---:|---:|---:|")
    for method in args.methods:
        start = time.perf_counter()
        _, report = ks.convert(model, method, padding="circular")
        seconds = time.perf_counter() - start
        error = report.max_fit_error
        print(f"| {method} | {seconds:.1f} | {seconds / build:.2f} | {report.counts()['replaced']} | "
              f"{'-' if error is None else f'{error:.1e}'} |", flush=True)


if __name__ == "__main__":
    main()
