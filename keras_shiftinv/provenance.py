"""Where a result came from: versions, checkout, machine, load and time (docs/design.md, "Reproducibility").

Every `results.json`, per-pair `scores.json` and `report.json` carries the
record `finish(start())` makes around its work:

    provenance.start()   -> a stamp (date, load average, clock) taken before
    provenance.finish(s) -> the record: `versions()`, the git commit, the
                            machine, load before/after, wall seconds, the
                            command line

`versions()` is the part a result depends on besides its settings (a pair of
another version is retrained, not reused); the rest describes the run.
"""

import datetime
import os
import platform
import subprocess
import sys
import time

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def versions():
    """The versions a result depends on: this package, Python, TensorFlow, Keras, NumPy.

    Example:
    >>> sorted(versions())
    ['keras', 'keras_shiftinv', 'numpy', 'python', 'tensorflow']
    """
    import keras
    import numpy
    import tensorflow

    from keras_shiftinv import __version__

    return {
        "keras_shiftinv": __version__,
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
    }


def git_commit(path=PACKAGE_ROOT):
    """`{"commit": sha, "dirty": bool}` of the git checkout holding `path`, or None.

    None when `path` is not in a checkout (an installed wheel) or git is
    missing. `dirty` means tracked files differ from the commit (untracked
    files do not count).
    """
    try:
        top = _git(path, "rev-parse", "--show-toplevel")
        if os.path.realpath(top) != os.path.realpath(path):
            return None  # the package sits inside some other repository
        commit = _git(path, "rev-parse", "HEAD")
        dirty = bool(_git(path, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def _git(path, *args):
    done = subprocess.run(["git", "-C", path, *args], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


def machine():
    """The machine: platform, CPU model, cores, TensorFlow threads, oneDNN and Keras backend."""
    import keras
    import tensorflow as tf

    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),  # 0: one per usable CPU
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "backend": keras.backend.backend(),
    }


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _load():
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def start():
    """A stamp taken before the work: date, load average and a clock for `finish`."""
    return {"started": _now(), "load_average_before": _load(), "clock": time.perf_counter()}


def finish(stamp):
    """The provenance record of work begun at `stamp` (a `start()`), ending now.

    Returns:
        dict with `versions`, `git` (or None), `machine`, `command`,
        `started`, `finished`, `wall_seconds` and the 1/5/15-minute
        `load_average_before` and `load_average_after`.
    """
    return {
        "versions": versions(),
        "git": git_commit(),
        "machine": machine(),
        "command": list(sys.argv),
        "started": stamp["started"],
        "finished": _now(),
        "wall_seconds": round(time.perf_counter() - stamp["clock"], 3),
        "load_average_before": stamp["load_average_before"],
        "load_average_after": _load(),
    }
