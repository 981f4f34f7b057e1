import json, sys, time, numpy as np, tensorflow as tf, keras, keras_shiftinv as ks
from keras_shiftinv.layers import PolyphaseDownsample
keras.utils.set_random_seed(0)
from keras_shiftinv import provenance
stamp = provenance.start()
def build(force):
    m = ks.resnet18("group" if force != "stride" else "stride", input_shape=(224, 224, 3), width=1.0)
    for l in m.layers:
        if isinstance(l, PolyphaseDownsample) and force not in ("count", "stride"):
            l._fusing_pays = (lambda f: (lambda pixels, training=False: f))(force(l.name))
    spec = tf.TensorSpec([None, 224, 224, 3], tf.float32)
    fn = tf.function(lambda x: m(x, training=False), input_signature=[spec]); fn.get_concrete_function()
    return fn
variants = {
 "stride": build("stride"),
 "count": build("count"),
 "all_fused": build(lambda n: True),
 "fused_but_stage4_3x3": build(lambda n: n != "stage4_block1_conv1"),
 "fused_but_3x3_stages": build(lambda n: "conv1" not in n or n.startswith("stem")),
}
x = tf.constant(np.random.default_rng(0).normal(size=(8, 224, 224, 3)).astype("float32"))
for f in variants.values(): f(x)
keys = list(variants); s = {k: [] for k in keys}
for r in range(10):
    ks_ = keys[r % len(keys):] + keys[:r % len(keys)]
    for k in ks_:
        c = time.process_time(); variants[k](x).numpy(); s[k].append(time.process_time() - c)
rows = {k: {"cpu_ms": 1e3*float(np.median(s[k])), "cpu_over_stride": float(np.median(np.array(s[k]) / np.array(s["stride"])))} for k in keys}
for k in keys: print(k, rows[k])
json.dump({"what": "ResNet-18 group, 224x224, width 1, batch 8 (input batch None), keras tf.function training=False; 10 interleaved rounds of 1 call; CPU time medians; path per PolyphaseDownsample site forced statically (no cond) vs the b39fc03 cost rule (count: cond for batch-dependent sites)", "results": rows, "provenance": provenance.finish(stamp), "note": "under load: the lead's niced experiment + 2 helpers; code: git archive of b39fc03"}, open(sys.argv[1], "w"), indent=1)
