"""Operating-system errors (disk full, read-only, no permission) as one line of the `shiftinv` CLI."""

import errno
import sys

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
