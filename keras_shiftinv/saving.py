"""Atomic `.keras` files that carry the package's metadata (docs/design.md, "Run directory").

`save_model` writes a normal Keras archive plus one extra member,
`keras_shiftinv.json` (class names, dataset, image size, training config), to a
temporary file beside the target and renames it into place, so a kill at any
moment leaves either the old file or the new one. Keras ignores the extra
member when loading; `read_metadata` reads it back.
"""

import json
import os
import zipfile

import keras

from keras_shiftinv import layers  # noqa: F401 - registers every class the package writes into a model
from keras_shiftinv.errors import UsageError

METADATA_MEMBER = "keras_shiftinv.json"


def _fsync_dir(directory):
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write):
    """Calls `write(tmp_path)`, fsyncs, then renames `tmp_path` onto `path`.

    The temporary file sits beside `path` (same filesystem) and is removed if
    `write` fails, so `path` is never half-written.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path)
    base, ext = os.path.splitext(os.path.basename(path))
    tmp = os.path.join(directory, f".{base}.tmp-{os.getpid()}{ext}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(directory)
    return path


def atomic_write_text(path, text):
    """Writes a text file atomically (temp file + rename)."""

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, write)


def save_model(model, path, metadata=None):
    """Saves `model` to the `.keras` file `path` atomically, with `metadata`.

    Args:
        model: a `keras.Model`.
        path: target path ending in `.keras`.
        metadata: JSON-serializable dict stored in the archive (e.g.
            `{"class_names": [...], "dataset": "folder", "image_size": 160}`).

    Returns:
        `path`.

    Example:
    >>> model = keras_shiftinv.resnet18("group", num_classes=2, input_shape=(32, 32, 3), width=0.25)
    >>> path = save_model(model, os.path.join(tmp_dir, "m.keras"), {"class_names": ["cat", "dog"]})
    >>> read_metadata(path)["class_names"]
    ['cat', 'dog']
    """
    if not os.fspath(path).endswith(".keras"):
        raise ValueError(f"The file name must end in `.keras`. Received: path={path!r}")

    def write(tmp):
        model.save(tmp)
        if metadata is not None:
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(METADATA_MEMBER, json.dumps(metadata, indent=2))

    return atomic_write(path, write)


def read_metadata(path):
    """The metadata dict stored by `save_model` in a `.keras` file ({} if none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if METADATA_MEMBER not in archive.namelist():
                return {}
            return json.loads(archive.read(METADATA_MEMBER))
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        raise UsageError(f"{path} is not a readable .keras file ({type(e).__name__})") from None


def load_model(path, compile=True):
    """Loads a `.keras` file; a missing or broken file is a one-line `UsageError`.

    The package's layers (the only classes it registers with Keras) are
    imported with this module, so this works in a fresh process.
    """
    if not os.path.exists(path):
        raise UsageError(f"model file not found: {path}")
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as e:  # noqa: BLE001 - any failure: not a loadable Keras model
        raise UsageError(f"{path} is not a loadable .keras model ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})") from None
