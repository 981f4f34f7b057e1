"""Screening the pixelwise feature term of `distill` (issue 25, round 6): top-1 on 2,000 test images.

Usage: PYTHONPATH=<repo> python3 screen.py BASE METHOD N SPEC [SPEC ...]: BASE a trained `.keras`
stride ResNet-18, METHOD a method to convert to, N training crops (one pass), each SPEC `key=value,...`
with keys lr (Adam rate, default 2e-3), warm (warm-up fraction, 0.1), T (4), feat (feature weight on
the 8 block outputs, 0: logits only), pool (mean|none, none = pixel by pixel), seed (0).
Prints one JSON line per SPEC; calibration on 256 crops as `shiftinv finetune --calibration-examples 256`.
"""
import json
import sys
import time

import keras

import keras_shiftinv
from keras_shiftinv import data
from keras_shiftinv import metrics
from keras_shiftinv.conversion import convert
from keras_shiftinv.experiments.finetune import FinetuneConfig, calibration_images, recipe_config
from keras_shiftinv.saving import load_model
from keras_shiftinv.training import train_dataset

BASE, METHOD, N = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = FinetuneConfig(base=BASE, methods=(METHOD,), train_examples=N, eval_examples=2000,
                     calibration_examples=256, distill=True)
eval_ds, _ = data.load("fashion_mnist", "validation", batch_size=250, crop=False, max_examples=2000)
eval_ds = eval_ds.cache()
base = load_model(BASE, compile=False)
calib = calibration_images(cfg)
crop = metrics.FASHION_MNIST_PROTOCOL["crop_size"]
print(json.dumps({"base": BASE, "base_top1": metrics.top_k_accuracy(base, eval_ds, crop, k=(1,))[1]}), flush=True)
for spec in sys.argv[4:]:
    kw = dict(kv.split("=") for kv in spec.split(","))
    keras.utils.set_random_seed(int(kw.get("seed", 0)))
    t0 = time.time()
    student, _ = convert(base, METHOD, padding="circular", calibration_data=calib)
    recipe = recipe_config(cfg, "stride", None, 1, cfg.learning_rate)
    steps = cfg.train_examples // cfg.batch_size
    ds = train_dataset(recipe, 0, cfg.batch_size, steps).map(lambda x, y: x)
    names = [f"stage{i}_block{j}_out" for i in range(1, 5) for j in (1, 2)]
    w = float(kw.get("feat", 0))
    keras_shiftinv.distill(student, base, ds, temperature=float(kw.get("T", 4)), learning_rate=float(kw.get("lr", 2e-3)),
                           warmup=float(kw.get("warm", 0.1)), feature_layers=names if w else (), feature_weight=w,
                           feature_pooling=kw.get("pool", "mean"))
    top1 = metrics.top_k_accuracy(student, eval_ds, crop, k=(1,))[1]
    print(json.dumps({"method": METHOD, "n": N, **kw, "top1": top1, "wall_s": round(time.time() - t0)}), flush=True)
