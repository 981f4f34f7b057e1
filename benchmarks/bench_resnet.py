"""Training throughput of `resnet18` downsampling variants, interleaved round by round, as ratios to `stride`.

Every variant is built once (same seed) and compiled (SGD, momentum 0.9);
after `--warmup` untimed train steps each, every round runs `--steps` train
steps (`train_on_batch`) of each variant in an order rotated per round
(benchmarks/_bench.py), so slow phases of a shared machine hit all variants
alike. Per step both CPU time (`time.process_time`) and wall time are taken;
the table gives img/s and the median over rounds of the throughput ratio to
`stride` in the same round, each variant's issue-22 training target and
what bounds it: its multiplies per image (convolutions, dense and each
polyphase module on the path its training cost rule takes) relative to
`stride`'s. A provenance record (keras_shiftinv/provenance.py) is written
beside the table. Inference: benchmarks/bench_infer.py.

    python benchmarks/bench_resnet.py --output /tmp/train.md          # 64x64, batch 128, width 1, CPU
    python benchmarks/bench_resnet.py --image-size 224 --mixed-precision --output /tmp/train224.md
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench import fail  # noqa: E402 (this folder)
from _bench import load_text  # noqa: E402
from _bench import measure  # noqa: E402
from _bench import multiplies  # noqa: E402
from _bench import parse_list  # noqa: E402
from _bench import summarize  # noqa: E402
from _bench import write_report  # noqa: E402

# Issue 22's training targets: img/s ratio to `stride` (64x64, batch 128, width 1, 2-core CPU).
TARGETS = {"group": 0.9, "group-aps": 0.8, "conv3d": 0.6, "aps": 0.6}


def build(methods, args):
    """`({method: model}, x, y)`: every variant built (seed 0) and compiled, one shared batch."""
    import keras

    import keras_shiftinv as ks

    models = {}
    for method in methods:
        keras.utils.set_random_seed(0)
        models[method] = ks.resnet18(method, num_classes=args.num_classes, width=args.width,
                                     input_shape=(args.image_size, args.image_size, 3))
        models[method].compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch_size, args.image_size, args.image_size, 3)).astype("float32")
    y = rng.integers(0, args.num_classes, size=(args.batch_size,))
    return models, x, y


def train_table(samples, methods, models, batch, judge):
    """Markdown rows and a summary: img/s, median per-round speed ratios, target, verdict, multiplies."""
    base_mults, _ = multiplies(models["stride"], batch, training=True)
    lines = [
        "| variant | img/s (wall) | wall speed / stride | img/s (CPU) | CPU speed / stride | target | "
        f"met ({judge}) | multiplies / img | / stride | modules fused, factored | load (1-min) |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    summary = {}
    for method in methods:
        s = summarize(samples[method], samples["stride"])
        mults, paths = multiplies(models[method], batch, training=True)
        s.update(wall_img_s=1000 * batch / s["wall_ms"], cpu_img_s=1000 * batch / s["cpu_ms"],
                 multiplies=mults, multiplies_ratio=mults / base_mults, paths=paths, target=TARGETS.get(method))
        target, verdict = "", ""
        if method in TARGETS:
            target = f">= {TARGETS[method]}x"
            verdict = "met" if s[f"{judge}_speed"] >= TARGETS[method] else "not met"
            s["met"] = verdict == "met"
        modules = f"{paths['fused']}, {paths['factored']}" if sum(paths.values()) else "-"
        low, high = s["load_min_max"]
        lines.append(f"| {method} | {s['wall_img_s']:.1f} | {s['wall_speed']:.2f}x | {s['cpu_img_s']:.1f} | "
                     f"{s['cpu_speed']:.2f}x | {target} | {verdict} | {mults / 1e6:.1f} M | "
                     f"{mults / base_mults:.2f}x | {modules} | {low:.1f}-{high:.1f} |")
        summary[method] = s
    return "\n".join(lines), summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2, help="timed train steps per variant per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed train steps per variant first")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 policy")
    parser.add_argument("--methods", default=None, help="comma-separated methods (default: all; stride is added)")
    parser.add_argument("--output", required=True, help="the table (markdown); its provenance goes to <stem>.json")
    parser.add_argument("--note", default="", help="said beside the provenance, e.g. what else loaded the machine")
    args = parser.parse_args()
    if args.rounds < 10:
        fail(f"--rounds must be at least 10. Received: rounds={args.rounds}")
    for name in ("steps", "batch_size", "image_size", "num_classes"):
        if getattr(args, name) < 1:
            fail(f"--{name.replace('_', '-')} must be at least 1. Received: {name}={getattr(args, name)}")
    if args.warmup < 1:
        fail(f"--warmup must be at least 1 (the first step traces). Received: warmup={args.warmup}")
    import keras

    from keras_shiftinv import provenance
    from keras_shiftinv.methods import METHODS

    methods = list(METHODS) if args.methods is None else parse_list(args.methods, METHODS, "methods")
    if "stride" not in methods:
        methods = ["stride", *methods]
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    stamp = provenance.start()
    models, x, y = build(methods, args)
    fns = {method: (lambda model: lambda batch: model.train_on_batch(batch, y))(models[method]) for method in methods}
    samples = {}
    try:
        measure(fns, x, args.rounds, args.steps, warmup=args.warmup, samples=samples)
    except KeyboardInterrupt:  # a time limit (gpu_check.sh's `timeout --signal=INT`): keep whole rounds
        done = min((len(v) for v in samples.values()), default=0)
        if not done:
            fail("interrupted before one whole round was measured; nothing written")
        samples = {key: v[:done] for key, v in samples.items()}
        args.note = f"{args.note}; interrupted: {done} of {args.rounds} rounds".lstrip("; ")
    record = provenance.finish(stamp)
    judge = "wall" if record["machine"]["gpus"] else "cpu"  # CPU time of this process says little on a GPU
    text, summary = train_table(samples, methods, models, args.batch_size, judge)
    head = (f"ResNet-18 training, {args.image_size}x{args.image_size}, width {args.width}, batch {args.batch_size}, "
            f"{args.num_classes} classes, {'GPU' if record['machine']['gpus'] else 'CPU'}, policy "
            f"{keras.mixed_precision.global_policy().name}; {len(samples['stride'])} interleaved rounds of {args.steps} train "
            f"steps after {args.warmup} warm-up steps; medians of per-round ratios; targets judged on {judge} time; "
            f"{load_text(record)}")
    write_report(args, head, text, summary, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
