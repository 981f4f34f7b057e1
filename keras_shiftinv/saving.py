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


def write_json(path, obj, indent=2):
    """Writes `obj` as JSON (and a final newline) atomically: fsync, then rename; the package's one JSON writer.

    Example:
    >>> path = write_json(os.path.join(tmp_dir, "r.json"), {"method": "aps"})
    >>> with open(path) as f:
    ...     json.load(f)
    {'method': 'aps'}
    """
    return atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


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


MAX_METADATA_BYTES = 16 * 2**20  # the metadata member's size cap: 21k ImageNet class names take < 1 MB
# Known metadata keys -> (check, what is expected). Other keys (training config, run state) pass unchecked.
METADATA_SCHEMA = {
    "class_names": (lambda v: isinstance(v, list) and all(map(_is_clean_name, v)),
                    "a list of class names (strings without control characters)"),
    "image_size": (lambda v: _is_side(v) or (isinstance(v, list) and len(v) == 2 and all(map(_is_side, v))),
                   "a positive integer or a pair of them"),
    "dataset": (lambda v: isinstance(v, str), "a string"),
    "epoch": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a non-negative integer"),
    "state": (lambda v: isinstance(v, dict), "an object"),
    "config": (lambda v: isinstance(v, dict), "an object"),
}


def _is_side(value):
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 2**16


def _is_clean_name(name):
    return isinstance(name, str) and bool(name) and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name)


def check_metadata(metadata, path="metadata"):
    """Raises a one-line `UsageError` unless `metadata` is a dict whose known keys have the right types."""
    if not isinstance(metadata, dict):
        raise UsageError(f"{path}: the {METADATA_MEMBER} member is not a JSON object "
                         f"(got {type(metadata).__name__})")
    for key, (check, expected) in METADATA_SCHEMA.items():
        if key in metadata and not check(metadata[key]):
            shown = repr(metadata[key])
            raise UsageError(f"{path}: metadata {key!r} must be {expected}; got {shown[:80]}")
    return metadata


def check_keras_file(path):
    """A one-line `UsageError` for a path that cannot be a `.keras` file: missing, not a file, empty."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UsageError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory; expected a .keras file")
    if not os.path.isfile(path):
        raise UsageError(f"{path} is not a regular file; expected a .keras file")
    if os.path.getsize(path) == 0:
        raise UsageError(f"{path} is empty (0 bytes); expected a .keras file")
    return path


def read_metadata(path):
    """The metadata dict stored by `save_model` in a `.keras` file ({} if none).

    The member is size-checked (`MAX_METADATA_BYTES`, from the zip directory,
    before reading) and its known keys type-checked (`METADATA_SCHEMA`); a
    violation is a one-line `UsageError`.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            if METADATA_MEMBER not in archive.namelist():
                return {}
            size = archive.getinfo(METADATA_MEMBER).file_size
            if size > MAX_METADATA_BYTES:
                raise UsageError(f"{path}: the {METADATA_MEMBER} member is {size} bytes, above the limit of "
                                 f"{MAX_METADATA_BYTES}")
            with archive.open(METADATA_MEMBER) as member:
                text = member.read(MAX_METADATA_BYTES + 1)  # file_size can lie; never read more
            if len(text) > MAX_METADATA_BYTES:
                raise UsageError(f"{path}: the {METADATA_MEMBER} member is above the limit of "
                                 f"{MAX_METADATA_BYTES} bytes")
            metadata = json.loads(text)
    except UsageError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError, EOFError) as e:
        raise UsageError(f"{path} is not a readable .keras file ({type(e).__name__})") from None
    return check_metadata(metadata, path)


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
