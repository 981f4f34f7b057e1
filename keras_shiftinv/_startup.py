"""A quiet TensorFlow start-up for the `shiftinv` command (docs/design.md, "Command line").

TensorFlow 2.21 writes its start-up lines (oneDNN notice, "Could not find
cuda drivers", `failed call to cuInit`) from C++ straight to file descriptor
2 before its logging is initialised, so `TF_CPP_MIN_LOG_LEVEL` alone does not
hide them. For the command line only, `quiet_tensorflow_import` sets the log
level and imports TensorFlow (and initialises its devices) with descriptor 2
pointed at a temporary file, then restores it: what the package itself writes
later still shows. If the import fails, the captured text is written out.
`SHIFTINV_VERBOSE=1` turns all of this off.

This module imports nothing heavy: it runs before `keras` is imported.
"""

import importlib.util
import os
import sys
import tempfile

VERBOSE_ENV = "SHIFTINV_VERBOSE"


def is_command_line():
    """True in the `shiftinv` console script and in `python -m keras_shiftinv`.

    While `python -m` locates the module (and so imports this package),
    `sys.argv[0]` is `"-m"`.
    """
    first = sys.argv[0] if sys.argv else ""
    return os.path.basename(first) in ("shiftinv", "shiftinv.exe") or first == "-m"


def verbose():
    """True when `SHIFTINV_VERBOSE` asks for TensorFlow's own log lines."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def quiet_tensorflow_import():
    """Imports TensorFlow without its start-up lines on stderr (see the module docstring).

    Does nothing if TensorFlow is already imported or `SHIFTINV_VERBOSE` is set.
    """
    if verbose() or "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return  # without TensorFlow the command line says so in one line (keras_shiftinv._backend)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read by TensorFlow's C++ logging at run time
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the cuInit attempt happens here, not at import
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            sys.stderr.flush()
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
    import logging

    # tfds notes through absl's Python logger (e.g. "Variant folder ... has no dataset_info.json" before
    # a missing-data error): hidden like TensorFlow's own lines; `SHIFTINV_VERBOSE=1` shows them.
    logging.getLogger("absl").setLevel(logging.ERROR)
