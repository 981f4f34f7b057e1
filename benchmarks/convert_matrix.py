"""The convert matrix: keras.applications models x methods, with padding="circular".

    python3 benchmarks/convert_matrix.py [--size 96] [--models Xception ...] [--methods aps ...]
                                         [--jsonl matrix.jsonl]

For each model (weights=None, logits) and method it runs
`keras_shiftinv.convert(model, method, padding="circular")` and prints one
markdown row: converted or refused (the one-line error), the report's
`circular_invariant` flag, the measured roll difference, and the seconds the
conversion took. The roll difference is max |logits(roll(x)) - logits(x)| /
max |logits(x)| over two random images and three random circular shifts
(odd and even, by up to 31 pixels; the sides must be multiples of 32, the
total stride, for exact invariance: 96 is). Where the flag is True it must
be below 1e-4. Seconds are wall time on whatever machine runs it: state the
load with them.
"""

import argparse
import json
import os
import time

import keras
import numpy as np

import keras_shiftinv as ks
from keras_shiftinv.methods import METHODS

MODELS = ("Xception", "InceptionV3", "NASNetMobile", "MobileNetV3Small", "EfficientNetV2B0", "ResNet50")


def shifts(seed=0):
    """Three random circular shifts: (odd, odd), (even, even), (odd, even)."""
    rng = np.random.default_rng(seed)
    odd = 2 * rng.integers(-16, 16, size=2) + 1
    even = 2 * rng.integers(-16, 16, size=2)
    return [tuple(int(s) for s in odd), tuple(int(s) for s in even), (int(odd[0]), int(even[1]))]


def roll_difference(model, x):
    reference = np.asarray(model(x), "float64")
    worst = 0.0
    for shift in shifts():
        moved = np.asarray(model(np.roll(x, shift, axis=(1, 2))), "float64")
        worst = max(worst, float(np.abs(moved - reference).max() / np.abs(reference).max()))
    return worst


def row(name, model, method, x):
    start = time.perf_counter()
    try:
        converted, report = ks.convert(model, method, padding="circular")
    except (ValueError, TypeError) as error:
        return {"model": name, "method": method, "status": "refused", "error": str(error),
                "seconds": time.perf_counter() - start}
    seconds = time.perf_counter() - start
    return {
        "model": name, "method": method, "status": "converted", "seconds": seconds,
        **report.counts(), "circular_invariant": report.circular_invariant,
        "breaks": report.invariance_breaks, "roll": roll_difference(converted, x),
        "max_fit_error": report.max_fit_error,
    }


def markdown(result):
    flag = result.get("circular_invariant")
    if result["status"] == "refused":
        return f"| {result['model']} | {result['method']} | refused: {result['error']} | - | - | {result['seconds']:.0f} |"
    first = result["breaks"][0] if result["breaks"] else ""
    flag = "-" if flag is None else str(flag) + (f" ({len(result['breaks'])}: {first})" if first else "")
    done = f"{result['replaced']} sites replaced" if result["replaced"] else f"{result['kept']} sites kept"
    return (f"| {result['model']} | {result['method']} | converted ({done}) | {flag} | "
            f"{result['roll']:.1e} | {result['seconds']:.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--jsonl", help="also append each row as JSON to this file")
    args = parser.parse_args()
    print(f"size {args.size}, load average {os.getloadavg()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| model | method | result | circular_invariant | roll difference | seconds |")
    print("|---|---|---|---|---:|---:|")
    x = np.random.default_rng(0).normal(size=(2, args.size, args.size, 3)).astype("float32")
    for name in args.models:
        model = getattr(keras.applications, name)(
            weights=None, input_shape=(args.size, args.size, 3), classifier_activation=None
        )
        for method in args.methods:
            result = row(name, model, method, x)
            result["load_average"] = os.getloadavg()
            print(markdown(result), flush=True)
            if args.jsonl:
                with open(args.jsonl, "a") as f:
                    f.write(json.dumps(result) + "\n")
        keras.backend.clear_session()
    print(f"done, load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
