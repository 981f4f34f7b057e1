"""Errors as one line of the `shiftinv` CLI: library errors in flags, operating-system errors.

Library errors name Python arguments in backticks (`overwrite=True`,
`data_dir=DIR`, `model_dir`); `as_flags` rewrites those the command line
sets into its flags (`--overwrite`, `--data-dir DIR`, `--model-dir`).
"""

import errno
import re
import sys

# Python arguments named in library errors -> the flag that sets them.
FLAGS = {
    "overwrite": "--overwrite",
    "out": "--out",
    "out_dir": "--out",
    "data_dir": "--data-dir",
    "manual_dir": "--manual-dir",
    "model_dir": "--model-dir",
    "batch_size": "--batch-size",
    "cpu_replicas": "--cpu-replicas",
    "crop_size": "--crop-size",
    "max_shift": "--max-shift",
    "dataset": "--dataset",
    "base": "--base",
}
ARGUMENT = re.compile(r"`(\w+)(?:=([^`]*))?`")


def as_flags(message):
    """`message` with each backticked argument of `FLAGS` as its flag; others stay as they are.

    Example:
    >>> as_flags("pick another `model_dir` or pass `overwrite=True`; `base` must be a `stride` model")
    'pick another --model-dir or pass --overwrite; --base must be a `stride` model'
    >>> as_flags("dataset 'folder' needs `data_dir=DIR`. Received: data_dir=None")
    "dataset 'folder' needs --data-dir DIR. Received: data_dir=None"
    """

    def flag(match):
        name, value = match.groups()
        if name not in FLAGS:
            return match.group(0)
        return FLAGS[name] if value in (None, "True") else f"{FLAGS[name]} {value}"

    return ARGUMENT.sub(flag, str(message))

# Errors of the file system or its permissions: the user's environment, not a bug. TensorFlow's C++ file
# code reports them in its own exception types with the C library's text, so they are matched by text too.
ERRNO_TEXT = {
    errno.ENOSPC: "No space left on device",
    errno.EROFS: "Read-only file system",
    errno.EACCES: "Permission denied",
    errno.EPERM: "Operation not permitted",
    errno.EDQUOT: "Disk quota exceeded",
    errno.EIO: "Input/output error",
    errno.ENOTDIR: "Not a directory",
    errno.EISDIR: "Is a directory",
    errno.ENAMETOOLONG: "File name too long",
    errno.EMFILE: "Too many open files",
}


def os_error_line(error):
    """One line (what failed and where) for an OS error anywhere in `error`'s chain, else None.

    Looks at `error`, its `__cause__` and `__context__` (Keras and h5py
    re-raise the `OSError` of a failed write as other types), and at
    TensorFlow `OpError`s whose message carries one of `ERRNO_TEXT`.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in ERRNO_TEXT:
            where = error.filename if error.filename is not None else None
            reason = error.strerror or ERRNO_TEXT[error.errno]
            return f"{reason}: {where}" if where else reason
        text = str(error)
        if is_tf_error(error) or (isinstance(error, OSError) and error.errno is None):
            for reason in ERRNO_TEXT.values():
                if reason.lower() in text.lower():
                    return f"{reason} ({first_line(text)})"
        error = error.__cause__ or error.__context__
    return None


def is_tf_error(error):
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(error, tf.errors.OpError)


def first_line(text):
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = next((line for line in lines if any(r.lower() in line.lower() for r in ERRNO_TEXT.values())),
                lines[0] if lines else "")
    return line[:300]


def print_os_error(command, line):
    print(f"shiftinv {command}: error: {line}", file=sys.stderr)
    sys.stderr.flush()
