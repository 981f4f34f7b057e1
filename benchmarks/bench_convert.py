"""Wall time of `keras_shiftinv.convert` on keras.applications ResNet50, per method.

    python3 benchmarks/bench_convert.py [--size 224] [--methods blur group-aps ...] [--calibration-examples 256]

Builds ResNet50 (weights=None) once and converts it to each method with
`padding="circular"`, timing each conversion (graph rewrite, weight copy and
the least-squares fits). The build time is printed alongside as the baseline
measured in the same run: on a shared machine only the ratio is comparable.
With `--calibration-examples N` each conversion is also calibrated on N random
images (`convert(..., calibration_data=)`: the least-squares refit of every
module on the activations that reach it and the re-estimation of every batch
norm); the conversion alone is timed first, so the calibration's share shows.
"""

import argparse
import time

import keras
import numpy as np

import keras_shiftinv as ks
from keras_shiftinv.methods import METHODS


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--calibration-examples", type=int, default=0,
                        help="also time convert(..., calibration_data=) on this many random images (0: off)")
    args = parser.parse_args()
    if args.calibration_examples < 0:
        parser.error(f"--calibration-examples must be >= 0; got {args.calibration_examples}")
    shape = (args.calibration_examples, args.size, args.size, 3)
    images = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")  # made once, for every method
    start = time.perf_counter()
    model = keras.applications.ResNet50(weights=None, input_shape=(args.size, args.size, 3))
    build = time.perf_counter() - start
    print(f"ResNet50 {args.size}x{args.size}: build {build:.1f} s (baseline)")
    print("| method | convert s | / build | sites replaced | max fit error | calibrated convert s | max calibration error |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method in args.methods:
        start = time.perf_counter()
        _, report = ks.convert(model, method, padding="circular")
        seconds = time.perf_counter() - start
        error = report.max_fit_error
        calibrated, calibration_error = "-", "-"
        if args.calibration_examples:
            start = time.perf_counter()
            _, calibrated_report = ks.convert(model, method, padding="circular", calibration_data=images)
            calibrated = f"{time.perf_counter() - start:.1f}"
            errors = [s.calibration_error for s in calibrated_report.sites if s.calibration_error is not None]
            calibration_error = f"{max(errors):.1e}" if errors else "-"
        print(f"| {method} | {seconds:.1f} | {seconds / build:.2f} | {report.counts()['replaced']} | "
              f"{'-' if error is None else f'{error:.1e}'} | {calibrated} | {calibration_error} |", flush=True)


if __name__ == "__main__":
    main()
