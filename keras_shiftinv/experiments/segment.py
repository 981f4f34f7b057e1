"""Shift-equivariant segmentation: a U-Net per downsampling method on Fashion-MNIST scenes."""

import dataclasses
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_shiftinv import metrics
from keras_shiftinv import provenance
from keras_shiftinv import training
from keras_shiftinv.data import SCENE_CLASS_NAMES
from keras_shiftinv.data import SCENES_DATASET
from keras_shiftinv.data import fashion_mnist_scenes
from keras_shiftinv.experiments import records
from keras_shiftinv.experiments.records import summarize
from keras_shiftinv.methods import PAPER_METHODS
from keras_shiftinv.models import unet
from keras_shiftinv.saving import atomic_write
from keras_shiftinv.saving import load_model
from keras_shiftinv.saving import save_model
from keras_shiftinv.saving import write_json
from keras_shiftinv.training import RunLock
from keras_shiftinv.training import ThroughputMeter

IMAGE_SIZE = 64
SCORES = ("miou", "pixel_accuracy", "circular_massc", "crop_massc", "equivariance_error")
COLUMNS = [
    ("miou", "mIoU %", "{:.2f}"),
    ("pixel_accuracy", "Pixel acc. %", "{:.2f}"),
    ("circular_massc", "Circ. mASSC %", "{:.2f}"),
    ("crop_massc", "Crop mASSC %", "{:.2f}"),
    ("equivariance_error", "Equiv. error", "{:.2e}"),
    ("train_images_per_second", "Train img/s", "{:.0f}"),
    ("params", "Params", "{:.0f}"),
]

# Named presets are data. Training runs at about 50-100 scenes/s per model on
# 2 idle cores (aps slowest, stride fastest).
PRESETS = {
    # 3,000 scenes seen per model, one seed: 9.6 minutes measured on 2 idle cores.
    "quick": {
        "train_scenes": 1_500,
        "test_scenes": 200,
        "epochs": 2,
        "batch_size": 16,
        "depth": 3,
        "width": 0.125,
        "learning_rate": 3e-3,
        "seeds": (0,),
    },
    # 3 seeds, 10,000 scenes seen per model: about 90 minutes (97 measured, partly shared).
    "full": {
        "train_scenes": 2_000,
        "test_scenes": 500,
        "epochs": 5,
        "batch_size": 16,
        "depth": 3,
        "width": 0.125,
        "learning_rate": 3e-3,
        "seeds": (0, 1, 2),
    },
}


@dataclasses.dataclass
class SegmentConfig:
    """Settings of `run_segment` (see `PRESETS`); shifts follow LPS's protocol."""

    preset: str = "quick"
    train_scenes: int = 1_500
    test_scenes: int = 200
    epochs: int = 2
    batch_size: int = 16
    depth: int = 3
    width: float = 0.125
    learning_rate: float = 3e-3
    seeds: tuple = (0,)
    methods: tuple = PAPER_METHODS
    padding: str = "circular"
    max_shift: int = 8
    num_shifts: int = 5
    picture_shifts: int = 4
    data_dir: str = None

    @classmethod
    def from_preset(cls, preset, **overrides):
        if preset not in PRESETS:
            raise ValueError(f"Unknown preset. Expected one of {list(PRESETS)}. Received: preset={preset!r}")
        return cls(preset=preset, **{**PRESETS[preset], **overrides})


def train_unet(method, images, masks, config, seed):
    """A U-Net for `method`, trained with Adam on per-pixel cross-entropy.

    Returns:
        `(model, train_images_per_second)`.
    """
    keras.utils.set_random_seed(seed)
    model = unet(method, len(SCENE_CLASS_NAMES), images.shape[1:], depth=config.depth,
                 width=config.width, padding=config.padding)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=training.loss(),  # per-pixel: the same cross-entropy on logits
        jit_compile=False,  # XLA compiles slowly on CPU and gains nothing at this size
    )
    meter = ThroughputMeter(config.batch_size)
    model.fit(images, masks, batch_size=config.batch_size, epochs=config.epochs, shuffle=True,
              callbacks=[meter], verbose=0)
    return model, meter.images_per_second


def plot_shifted_masks(image, mask, predictions, path):
    """One scene shifted by 0..k pixels (rows: input, truth, each method's masks).

    `predictions[method]` is `(k + 1, H, W)` labels for the scene rolled right
    by 0..k pixels. Each mask's title counts the pixels whose label differs
    from the unshifted prediction rolled by the same amount.
    """
    import matplotlib.colors
    import matplotlib.pyplot as plt

    shifts = len(next(iter(predictions.values())))
    rows = [("input", None), ("truth", None)] + list(predictions.items())
    fig, axes = plt.subplots(len(rows), shifts, figsize=(1.5 * shifts + 1.2, 1.55 * len(rows)), squeeze=False)
    cmap = matplotlib.colors.ListedColormap(["black"] + [plt.get_cmap("tab10")(i) for i in range(10)])
    for r, (name, labels) in enumerate(rows):
        for s in range(shifts):
            ax = axes[r, s]
            ax.set_xticks([])
            ax.set_yticks([])
            if name == "input":
                ax.imshow(np.roll(image[..., 0], s, axis=1), cmap="gray", vmin=0, vmax=1)
                ax.set_title(f"shift {s} px", fontsize=8)
            else:
                shown = np.roll(mask, s, axis=1) if labels is None else labels[s]
                ax.imshow(shown, cmap=cmap, vmin=-0.5, vmax=len(SCENE_CLASS_NAMES) - 0.5, interpolation="nearest")
                if labels is not None:
                    changed = int(np.sum(labels[s] != np.roll(labels[0], s, axis=1)))
                    ax.set_title(f"{changed} px changed", fontsize=7)
            if s == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)


def pair_settings(config, method, seed):
    """What one method/seed pair's scores depend on (checked before they are reused)."""
    settings = dataclasses.asdict(config)
    for key in ("preset", "methods", "seeds", "picture_shifts", "data_dir"):
        settings.pop(key)
    return {**settings, "method": method, "seed": seed, "image_size": IMAGE_SIZE}


def run_pair(out_dir, config, method, seed, data, overwrite, verbose, need_model=True):
    """Trains and scores one method/seed pair, or reuses its finished record.

    The model goes to `models/<method>/seed<k>.keras` and then the record
    (settings, scores) to `seed<k>.json`, both atomically; a pair killed before
    its record was written is trained again on the next run.

    Returns:
        `(record, model)`: `model` is the trained U-Net, or for a finished
        pair the reloaded one (None unless `need_model`).
    """
    train_x, train_y, test_set = data
    folder = os.path.join(out_dir, "models", method)
    model_path = os.path.join(folder, f"seed{seed}.keras")
    record_path = os.path.join(folder, f"seed{seed}.json")
    settings = pair_settings(config, method, seed)
    record = records.read_pair(record_path, settings, overwrite)
    if record is not None and os.path.exists(model_path):
        if verbose:
            print(f"{method} seed {seed}: done before, scores from {record_path}", flush=True)
        return record, load_model(model_path) if need_model else None
    stamp = provenance.start()
    started = time.perf_counter()
    model, rate = train_unet(method, train_x, train_y, config, seed)
    seconds = time.perf_counter() - started
    scores = metrics.evaluate_segmentation(  # the same shifts for every model
        model, test_set, len(SCENE_CLASS_NAMES), config.max_shift, config.num_shifts, seed=0
    )
    metadata = {"class_names": list(SCENE_CLASS_NAMES), "dataset": SCENES_DATASET,
                "image_size": IMAGE_SIZE, "method": method, "task": "segmentation", "settings": settings}
    os.makedirs(folder, exist_ok=True)
    save_model(model, model_path, metadata)
    record = records.write_pair(
        record_path, settings, scores={key: float(scores[key]) for key in SCORES}, shifts=scores["shifts"],
        train_images_per_second=float(rate), train_seconds=seconds, params=int(model.count_params()),
        provenance=provenance.finish(stamp),
    )
    if verbose:
        print(f"{method} seed {seed}: " + ", ".join(f"{k}={scores[k]:.4g}" for k in SCORES)
              + f", {seconds:.0f}s", flush=True)
    return record, model


def run_segment(out_dir, config, overwrite=False, verbose=1):
    """Trains and evaluates a U-Net per method and seed; writes the results.

    Writes `results.json`, `results.md`, `shifted_masks.png` and, per pair,
    `models/<method>/seed<k>.keras` and `.json` into `out_dir`. A rerun
    skips the pairs that finished (so a killed run resumes); a finished pair
    made with other settings stops the run unless `overwrite`. One process
    at a time may use `out_dir`.

    Returns:
        The results dict (the content of `results.json`).
    """
    tf.config.experimental.enable_op_determinism()  # same seed, same numbers
    stamp = provenance.start()
    run_started = time.perf_counter()
    scenes = {split: fashion_mnist_scenes(split, count, image_size=IMAGE_SIZE, data_dir=config.data_dir)
              for split, count in (("train", config.train_scenes), ("validation", config.test_scenes))}
    os.makedirs(out_dir, exist_ok=True)  # once the data is found: a wrong `data_dir` leaves no folder
    with RunLock(os.path.join(out_dir, ".lock")):
        return _run_segment(out_dir, config, overwrite, verbose, run_started, stamp, scenes)


def _run_segment(out_dir, config, overwrite, verbose, run_started, stamp, scenes):
    (train_x, train_y), (test_x, test_y) = scenes["train"], scenes["validation"]
    test_set = [(test_x[i : i + 100], test_y[i : i + 100]) for i in range(0, len(test_x), 100)]
    scene = test_x[0]
    shifted_scene = np.stack([np.roll(scene, s, axis=1) for s in range(config.picture_shifts + 1)])
    rows, pictures, train_seconds = {}, {}, 0.0
    total = len(config.methods) * len(config.seeds)
    for m, method in enumerate(config.methods):
        per_seed = {key: [] for key in SCORES + ("train_images_per_second", "train_seconds")}
        for s, seed in enumerate(config.seeds):
            if verbose:
                print(f"segment [{m * len(config.seeds) + s + 1}/{total}] {method} seed {seed} "
                      f"({os.path.join(out_dir, 'models', method)})", file=sys.stderr, flush=True)
            record, model = run_pair(out_dir, config, method, seed, (train_x, train_y, test_set), overwrite,
                                     verbose, need_model=seed == config.seeds[0])  # the picture's model
            for key in SCORES:
                per_seed[key].append(record["scores"][key])
            for key in ("train_images_per_second", "train_seconds"):
                per_seed[key].append(record[key])
            if seed == config.seeds[0]:
                pictures[method] = np.asarray(model.predict_on_batch(shifted_scene)).argmax(-1)
        rows[method] = {key: summarize(values) for key, values in per_seed.items()}
        rows[method]["params"] = {"mean": record["params"]}
        train_seconds += sum(per_seed["train_seconds"])
    results = {"preset": config.preset, "config": dataclasses.asdict(config), "image_size": IMAGE_SIZE,
               "class_names": list(SCENE_CLASS_NAMES), "shifts": record["shifts"],
               "wall_seconds": time.perf_counter() - run_started, "train_seconds": train_seconds,
               "methods": rows, "provenance": provenance.finish(stamp)}
    write_json(os.path.join(out_dir, "results.json"), results)
    title = (f"Fashion-MNIST scenes ({IMAGE_SIZE}x{IMAGE_SIZE}), preset `{config.preset}`, "
             f"seeds {list(config.seeds)}, padding `{config.padding}`")
    table = records.write_summary(os.path.join(out_dir, "results.md"), title, rows, COLUMNS)
    plot_shifted_masks(scene, test_y[0], pictures, os.path.join(out_dir, "shifted_masks.png"))
    if verbose:
        print(table)
    return results
