"""Which Keras backend is asked for, and one-line errors when it or TensorFlow is missing.

Standard library only, and nothing imports Keras here: this runs before Keras
would fail with a traceback (docs/backends.md).
"""

import importlib.util
import json
import os
import sys

# Keras backend name -> the module it imports
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy",
                   "openvino": "openvino"}
TF_INSTALL = 'pip install "keras-shiftinv[tf]" (or pip install tensorflow)'


def requested_backend():
    """The backend Keras will load: `KERAS_BACKEND`, else `$KERAS_HOME/keras.json`, else tensorflow."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            return json.load(f).get("backend") or "tensorflow"
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def installed(module):
    """Whether `module` can be imported (found, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_backend_message():
    """One line saying that the requested backend is not installed, or None if it is."""
    name = requested_backend()
    module = BACKEND_MODULES.get(name)
    if module is None or installed(module):
        return None  # an unknown name is Keras's own error to give
    extra = {"tensorflow": "tf", "jax": "jax", "torch": "torch"}.get(name)
    how = f'pip install "keras-shiftinv[{extra}]"' if extra else f"pip install {module}"
    return f"the Keras backend is {name} (KERAS_BACKEND) but {module} is not installed: {how}"


def require_tensorflow(what):
    """Raises a one-line `ModuleNotFoundError` if TensorFlow is not installed.

    Args:
        what: what needs TensorFlow, e.g. "keras_shiftinv.data (tf.data pipelines)".
    """
    if not installed("tensorflow"):
        raise ModuleNotFoundError(f"{what} needs TensorFlow, which is not installed: {TF_INSTALL}",
                                  name="tensorflow")


def exit_if_cli_cannot_run(prog="shiftinv"):
    """Prints one line and exits 2 if the Keras backend or TensorFlow is missing.

    The `shiftinv` command reads its data through tf.data on every backend, so
    it needs TensorFlow besides the backend. Called before the subcommands
    import Keras, whose own error would be a traceback.
    """
    message = missing_backend_message()
    if message is None and not installed("tensorflow"):
        message = f"the {prog} command needs TensorFlow (tf.data input, export), which is not installed: {TF_INSTALL}"
    if message is not None:
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)
