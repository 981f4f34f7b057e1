"""Shared test helpers: the `shiftinv` CLI in a fresh process, and one fresh interpreter that reloads models.

`FreshLoader` is used through the session fixture `fresh_process` (tests/conftest.py): ONE new Python,
started once per test session, which has done nothing but `import keras_shiftinv` (and the standard
library, numpy and keras that it imports) before loading the first file. Every test that promises "this
file reloads in a fresh process as a user's would" sends its files there instead of starting its own
interpreter (each start imports TensorFlow again: seconds per test).
"""

import json
import os
import subprocess
import sys


def cli_env(**extra):
    """The environment of a CLI subprocess: this one, without TF's C++ start-up chatter."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def cli_command(*args):
    """The argv that runs `shiftinv ARGS...` with this Python (and this PYTHONPATH)."""
    return [sys.executable, "-m", "keras_shiftinv", *map(str, args)]


def shiftinv(*args, env=None, timeout=600):
    """Runs the `shiftinv` CLI in a fresh process; returns the CompletedProcess (text stdout/stderr)."""
    return subprocess.run(cli_command(*args), capture_output=True, text=True, env=cli_env(**(env or {})),
                          timeout=timeout)


def error_lines(result):
    """The CLI's own stderr lines (TF's C++ start-up logging is not the CLI's); no traceback allowed.

    `result`: a CompletedProcess from `shiftinv(...)`, or the stderr text of an in-process `main([...])`.
    """
    stderr = result if isinstance(result, str) else result.stderr
    assert "Traceback" not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if line.startswith("shiftinv")]


_MARK = "@@fresh-loader@@ "

# The worker: reads one JSON request per line, answers one marked JSON line. It imports only
# keras_shiftinv (the user's import) before the first load; tensorflow comes in with it.
_WORKER = r"""
import hashlib, json, sys, traceback, zipfile
import keras_shiftinv  # registers the layers; nothing else
import keras
import numpy as np

def facts(path, x, signature):
    if signature:  # an exported SavedModel directory
        import tensorflow as tf
        out = tf.saved_model.load(path).signatures[signature](image=tf.constant(x))
        return {"outputs": {k: (v.numpy().astype(str) if v.dtype == tf.string else v.numpy()).tolist()
                            for k, v in out.items()}}
    model = keras.saving.load_model(path)
    weights = b"".join(np.ascontiguousarray(np.asarray(w)).tobytes() for w in model.weights)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        meta = json.loads(archive.read("keras_shiftinv.json")) if "keras_shiftinv.json" in names else None
    result = {"name": model.name, "layers": len(model.layers), "params": int(model.count_params()),
              "digest": hashlib.sha256(weights).hexdigest(), "metadata": meta}
    if x is not None:
        result["outputs"] = np.asarray(model(x)).tolist()
    return result

for line in sys.stdin:
    request = json.loads(line)
    try:
        x = np.load(request["x"]) if request["x"] else None
        answer = json.dumps({"files": {p: facts(p, x, request["signature"]) for p in request["paths"]}})
    except Exception:
        answer = json.dumps({"error": traceback.format_exc()})
    sys.stdout.write(%r + answer + "\n")
    sys.stdout.flush()
""" % _MARK


class FreshLoader:
    """One fresh interpreter, kept for the session, that reloads files the tests wrote."""

    def __init__(self, log_path):
        self._log = open(log_path, "w")
        self._proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._log, text=True, env=cli_env())
        self._log_path = log_path

    def load(self, paths, x=None, signature=None):
        """Loads each path there: {path: facts}; floats come back exactly (JSON doubles of float32).

        A `.keras` file gives `name`, `layers`, `params`, `digest` (sha256 of all weights in order),
        `metadata` (the keras_shiftinv.json it carries, or None) and, given `x` (a .npy file),
        `outputs` = model(x). A SavedModel directory with `signature` gives `outputs`, the signature's
        dict of outputs for `image=x` (strings decoded).
        """
        paths = [str(p) for p in paths]
        request = {"paths": paths, "x": str(x) if x is not None else None, "signature": signature}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        for line in self._proc.stdout:
            if line.startswith(_MARK):
                answer = json.loads(line[len(_MARK):])
                assert "error" not in answer, answer.get("error")
                return answer["files"]
        self._log.flush()
        raise AssertionError("the fresh interpreter died: " + open(self._log_path).read()[-3000:])

    def close(self):
        self._proc.stdin.close()
        self._proc.kill()  # nothing left to do there; TensorFlow's exit would take seconds
        self._proc.wait(timeout=60)
        self._log.close()


def perturb(model, seed=0):
    """Moves every weight off its initial value (BN variances to U(0.5, 1.5), the rest by N(0, 0.1)), as
    training would, so a lost, reordered or re-initialised weight shows in the outputs. Returns the model."""
    import numpy as np

    rng = np.random.default_rng(seed)
    model.set_weights([
        rng.uniform(0.5, 1.5, w.shape).astype("float32") if "variance" in w.path
        else np.asarray(w) + rng.normal(0, 0.1, w.shape).astype("float32")
        for w in model.weights
    ])
    return model


def small_residual_net(method, **convert_kwargs):
    """resnet18's layers in a fraction of its ops: a stride-2 stem with BN and one stride-2 block whose
    1x1 shortcut takes the main path's downsampling, converted to `method` (`keras_shiftinv.convert`,
    given `convert_kwargs`). Keras's own initial weights. Returns `(model, report)`; 3 sites replaced."""
    import keras

    import keras_shiftinv as ks

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    y = keras.layers.ReLU()(keras.layers.Conv2D(16, 3, strides=2, padding="same")(x))
    y = keras.layers.BatchNormalization()(keras.layers.Conv2D(16, 3, padding="same")(y))
    x = keras.layers.Add()([y, keras.layers.Conv2D(16, 1, strides=2)(x)])
    outputs = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x))
    model, report = ks.convert(keras.Model(inputs, outputs), method, **convert_kwargs)
    assert report.counts()["replaced"] == 3, str(report)
    return model, report


def graph_op_types(concrete):
    """Every op type in a concrete function's graph and the functions it calls, with counts."""
    graph = concrete.graph.as_graph_def()
    nodes = list(graph.node) + [node for fn in graph.library.function for node in fn.node_def]
    types = {}
    for node in nodes:
        types[node.op] = types.get(node.op, 0) + 1
    return types
