"""The loop, ratios and report shared by the benchmarks (bench_infer, bench_resnet, bench_serving).

Variants are timed interleaved: after a warm-up, every round calls each
variant in an order rotated per round, so slow phases of a shared machine hit
all variants alike; per call both CPU time (`time.process_time`, all threads
of this process) and wall time are taken, and a ratio is the median over
rounds of the ratio to the baseline in the same round. A run writes its table
and, beside it, a JSON record with the settings, the results and the
provenance (keras_shiftinv/provenance.py).
"""

import json
import os
import sys
import time

import numpy as np


def fail(message):
    """A user mistake: one line on stderr, exit status 2."""
    print(f"{os.path.basename(sys.argv[0])}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_list(value, choices, name):
    """The comma-separated `value` as a list, each item one of `choices` (else `fail`)."""
    items = [v for v in value.split(",") if v]
    bad = [v for v in items if v not in choices]
    if bad or not items:
        fail(f"--{name} takes a comma-separated subset of {','.join(choices)}. Received: {name}={value!r}")
    return items


def write_whole(path, text):
    """Writes `text` to a temporary file beside `path`, then renames it into place."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def timed(fn, x, calls):
    """Per-call (cpu seconds, wall seconds) of `calls` calls of `fn(x)`."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        fn(x)
    return (time.process_time() - cpu) / calls, (time.perf_counter() - wall) / calls


def measure(fns, x, rounds, calls, warmup=1, samples=None):
    """`{key: [(cpu, wall, load1), ...]}`, one entry per round, order rotated per round.

    Each `fns[key](x)` is first called `warmup` times (tracing, shape-specialised
    kernels, interpreter resize, optimizer slots), untimed. Pass an empty dict
    as `samples` to keep the rounds measured so far if the loop is interrupted.
    """
    keys = list(fns)
    for key in keys:
        for _ in range(warmup):
            fns[key](x)
    samples = {} if samples is None else samples
    samples.update({key: [] for key in keys})
    for r in range(rounds):
        shift = r % len(keys)
        for key in keys[shift:] + keys[:shift]:
            cpu, wall = timed(fns[key], x, calls)
            samples[key].append((cpu, wall, os.getloadavg()[0]))
    return samples


def summarize(rounds, base):
    """Median per-call times and median per-round ratios of one variant's `rounds` to `base`'s.

    `rounds` and `base` are `[(cpu, wall, load1), ...]` of the same rounds.
    `cpu_ratio`/`wall_ratio` are medians of time / base time (> 1: slower);
    `cpu_speed`/`wall_speed` are medians of base time / time (throughput
    ratios, < 1: slower).

    Example:
    >>> s = summarize([(2.0, 4.0, 1.0), (3.0, 3.0, 2.0), (9.0, 6.0, 3.0)],
    ...               [(1.0, 2.0, 1.0), (1.0, 2.0, 2.0), (3.0, 2.0, 3.0)])
    >>> s["cpu_ratio"], s["cpu_speed"], s["wall_ratio"], s["cpu_ms"], s["load_min_max"]
    (3.0, 0.333..., 2.0, 3000.0, [1.0, 3.0])
    """
    s, b = np.array(rounds, "float64"), np.array(base, "float64")  # (rounds, 3): cpu, wall, load
    return {
        "cpu_ms": 1000 * float(np.median(s[:, 0])),
        "wall_ms": 1000 * float(np.median(s[:, 1])),
        "cpu_ratio": float(np.median(s[:, 0] / b[:, 0])),
        "wall_ratio": float(np.median(s[:, 1] / b[:, 1])),
        "cpu_speed": float(np.median(b[:, 0] / s[:, 0])),
        "wall_speed": float(np.median(b[:, 1] / s[:, 1])),
        "load_min_max": [float(s[:, 2].min()), float(s[:, 2].max())],
    }


def table(samples, methods, runtimes, base="stride"):
    """Markdown rows: per runtime and variant label, median ms (cpu, wall) and median per-round ratio to `base`."""
    lines = [
        f"| runtime | variant | CPU ms | CPU / {base} | wall ms | wall / {base} | load (1-min) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    summary = {}
    for runtime in runtimes:
        for method in methods:
            s = summarize(samples[runtime, method], samples[runtime, base])
            low, high = s["load_min_max"]
            lines.append(f"| {runtime} | {method} | {s['cpu_ms']:.2f} | {s['cpu_ratio']:.2f}x | {s['wall_ms']:.2f} | "
                         f"{s['wall_ratio']:.2f}x | {low:.1f}-{high:.1f} |")
            summary[f"{runtime}/{method}"] = s
    return "\n".join(lines), summary


def inference_resnet18(method, args):
    """ResNet-18 `method` as the inference benchmarks build it: seed 0, `args`' size, width and classes.

    Padding circular for the methods that choose a phase (or for every
    method with `args.padding == "circular"`), zeros for the others.
    """
    import keras

    import keras_shiftinv as ks

    keras.utils.set_random_seed(0)
    circular = args.padding == "circular" or ks.methods.get(method).chooses_phase
    return ks.resnet18(method, num_classes=args.num_classes, width=args.width,
                       padding="circular" if circular else "zeros", input_shape=(args.image_size, args.image_size, 3))


def load_text(record):
    """`load average [..] before, [..] after` of a provenance record, as every table's head says it."""
    return f"load average {record['load_average_before']} before, {record['load_average_after']} after"


def write_report(args, head, text, summary, record):
    """The table to `args.output`, settings + results + provenance to `<stem>.json`; `--note` in both."""
    if args.note:
        head += f"; note: {args.note}"
        record = {**record, "note": args.note}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    stem = os.path.splitext(args.output)[0]
    write_whole(args.output, head + "\n\n" + text + "\n")
    write_whole(stem + ".json", json.dumps({"settings": vars(args), "results": summary, "provenance": record},
                                           indent=1, default=float))
    print(head)
    print(text)


def module_multiplies(mixing, kernel_size, channels, filters, mixed, fused):
    """Multiplies per output pixel of one `PolyphaseDownsample` on one path.

    The counts of `polyphase_algebra.fusing_pays` without its cost weights:
    fused, one `(k, k, 4*C, filters)` convolution; factored `"group"`, the
    grouped convolution (`mixed` channels, 4 phases each) and the 1x1 merge;
    factored `"conv3d"`, two 3-phase windows and the `2*filters -> filters`
    merge. `mixed` is the grouped width (ignored for `"conv3d"`).

    Example:
    >>> module_multiplies("group", 3, 16, 32, 32, fused=True), module_multiplies("group", 3, 16, 32, 32, fused=False)
    (18432, 2176)
    """
    k, c, f = kernel_size, channels, filters
    if fused:
        return 4 * c * f * k * k
    if mixing == "group":
        return 4 * mixed * k * k + mixed * f
    return 6 * c * f * k * k + 2 * f * f


def compose_multiplies(mixing, kernel_size, channels, filters, mixed):
    """Multiplies of one fold of the mixing and merge into the fused kernel (`fusing_pays`'s `compose`)."""
    k = kernel_size
    return 4 * k * k * mixed * filters if mixing == "group" else 6 * k * k * channels * filters * filters


def multiplies(model, batch, training=False):
    """Multiplies per image of `model` (built, 2-D): `(total, paths)`.

    Counts convolutions (`Conv2D`, `DepthwiseConv2D`, `BlurPool2D`), `Dense`
    and each `PolyphaseDownsample` on the path its cost rule takes at this
    batch (`paths`: the fused/factored counts), its kernel fold spread over
    the batch (`TRAINING_COMPOSE_PASSES` folds per training step). Leaves out
    what no multiply count shows: normalization, activations, pooling, the
    phase choice and gather of the aligned methods.
    """
    import keras

    from keras_shiftinv.layers import BlurPool2D
    from keras_shiftinv.layers import PolyphaseDownsample
    from keras_shiftinv.layers.polyphase_algebra import TRAINING_COMPOSE_PASSES

    total, paths = 0, {"fused": 0, "factored": 0}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        inputs = layer.input[0] if isinstance(layer.input, (list, tuple)) else layer.input
        if isinstance(layer, PolyphaseDownsample):
            _, h, w, c = inputs.shape
            pixels = -(-h // 2) * -(-w // 2)  # odd sizes are padded to even first
            mixed = layer.merge_kernel.shape[0]
            fused = bool(layer._fusing_pays(batch * pixels, training=training))
            count = pixels * module_multiplies(layer.mixing, layer.kernel_size, c, layer.filters, mixed, fused)
            if fused:
                folds = TRAINING_COMPOSE_PASSES if training else 1
                count += folds * compose_multiplies(layer.mixing, layer.kernel_size, c, layer.filters, mixed) / batch
            paths["fused" if fused else "factored"] += 1
            total += count
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, out = layer.output.shape
            total += h * w * out * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, out = layer.output.shape
            total += h * w * out * layer.kernel_size[0] * layer.kernel_size[1] * inputs.shape[-1] // layer.groups
        elif isinstance(layer, BlurPool2D):
            _, h, w, out = layer.output.shape
            total += h * w * out * layer.filt_size ** 2
        elif isinstance(layer, keras.layers.Dense):
            total += inputs.shape[-1] * layer.units
    return total, paths
