"""Screening of distillation settings on group-aps (issue 25): top-1 on 2,000 test images.

Usage: PYTHONPATH=. python3 screen.py N SPEC [SPEC ...], N training crops (one pass), each SPEC
`key=value,...` with keys lr, T, bn (train|frozen), feat (feature_weight on the 8 block outputs),
shifts (teacher_shifts), bs (batch size), warm (warmup), rebn (re-estimate batch norms afterwards).
Prints one JSON line per SPEC. (Dead lines removed after the runs; the runs of bn=frozen and warm
set the same things by hand before `distill` had the options.)
"""
import sys, time, json
import keras
import keras_shiftinv
from keras_shiftinv import data
from keras_shiftinv import metrics
from keras_shiftinv.conversion import convert
from keras_shiftinv.experiments.finetune import FinetuneConfig, calibration_images, recipe_config
from keras_shiftinv.training import train_dataset
from keras_shiftinv.saving import load_model

BASE = "/work/runs/calib/base-fm-s0/final.keras"
cfg = FinetuneConfig(base=BASE, methods=("group-aps",), train_examples=int(sys.argv[1]), eval_examples=2000,
                     calibration_examples=256, distill=True)
eval_ds, _ = data.load("fashion_mnist", "validation", batch_size=250, crop=False, max_examples=2000)
eval_ds = eval_ds.cache()
base = load_model(BASE, compile=False)
calib = calibration_images(cfg)
for spec in sys.argv[2:]:
    kw = dict(kv.split("=") for kv in spec.split(","))
    lr, T, bn = float(kw.get("lr", 1e-3)), float(kw.get("T", 4)), kw.get("bn", "train")
    t0 = time.time()
    student, _ = convert(base, "group-aps", padding="circular", calibration_data=calib)
    recipe = recipe_config(cfg, "stride", None, 1, cfg.learning_rate)
    bs = int(kw.get("bs", cfg.batch_size))
    steps = cfg.train_examples // bs
    ds = train_dataset(recipe, 0, bs, steps).map(lambda x, y: x)
    names = [f"stage{i}_block{j}_out" for i in range(1, 5) for j in (1, 2)]
    w = float(kw.get("feat", 0))
    keras_shiftinv.distill(student, base, ds, temperature=T, learning_rate=lr, freeze_batch_norm=bn == "frozen",
                           feature_layers=names if w else (), feature_weight=w, teacher_shifts=int(kw.get("shifts", 1)),
                           warmup=float(kw.get("warm", 0)))
    if kw.get("rebn"):
        from keras_shiftinv.conversion import calibrate as cal
        batches = cal.calibration_batches(calib)
        for layer in cal.run_order(student, batches[0]):
            if isinstance(layer, keras.layers.BatchNormalization):
                cal.reestimate_batch_norm(student, layer, batches)
    top1 = metrics.top_k_accuracy(student, eval_ds, metrics.FASHION_MNIST_PROTOCOL["crop_size"], k=(1,))[1]
    print(json.dumps({"n": cfg.train_examples, **kw, "top1": top1, "wall_s": round(time.time() - t0)}), flush=True)
