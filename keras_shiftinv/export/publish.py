"""Atomic, world-readable version folders `<export_dir>/<version>/`."""

import contextlib
import fcntl
import os
import re
import shutil
import tempfile

from keras_shiftinv.errors import UsageError

MAX_VERSION = 2**63 - 1  # TF Serving reads version folder names as int64
# What `publish` leaves beside the versions while it works; the number is the writing process's pid.
LEFTOVER = re.compile(r"^\.(?:tmp-\d+-(\d+)-.*|old-\d+-(\d+))$")


def check_version(version):
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise ValueError(
            f"`version` must be a positive integer of at most {MAX_VERSION} (int64). Received: version={version!r}"
        )
    return version


def check_destination(export_dir, version, overwrite=False):
    """The target `<export_dir>/<version>`, or an error if it cannot be written.

    Raises `FileExistsError` for an existing version without `overwrite`,
    `UsageError` (a `ValueError`) for an `export_dir` that is not a directory.
    """
    check_version(version)
    export_dir = os.fspath(export_dir)
    target = os.path.join(export_dir, str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(
            f"{target} already exists. Pass overwrite=True or a new version. Received: version={version}"
        )
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise UsageError(f"cannot export to {export_dir}: it is not a directory. Received: export_dir={export_dir!r}")
    return target


def publish(export_dir, version, write, overwrite=False):
    """Calls `write(tmp_dir)`, then puts `tmp_dir` in place as `<export_dir>/<version>`.

    The folder is written beside the target (`.tmp-<version>-<pid>-*`, a name
    TF Serving ignores), made readable by every user (folders 0755, files
    0644) and renamed into place while holding an exclusive `flock` on
    `export_dir`, so of two concurrent publishes of one version without
    `overwrite` exactly one wins and the other raises `FileExistsError`. With
    `overwrite`, an existing version is renamed aside (`.old-<version>-<pid>`),
    the new one renamed in, and only then the old one deleted; if the rename
    in fails the old one is put back; the last publish wins whole. A failure
    leaves the target as it was and no temporary folder. Temporary and old
    folders left by killed processes (pid no longer alive) are deleted.

    Returns:
        The path of the version folder.
    """
    target = check_destination(export_dir, version, overwrite)
    export_dir = os.path.dirname(target)
    try:
        os.makedirs(export_dir, mode=0o755, exist_ok=True)
        with locked(export_dir):
            remove_leftovers(export_dir)
        tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-{os.getpid()}-", dir=export_dir)
    except OSError as e:
        raise UsageError(f"cannot export to {export_dir}: {e.strerror}. Received: export_dir={export_dir!r}") from None
    try:
        write(tmp)
        make_readable(tmp)
        with locked(export_dir):
            check_destination(export_dir, version, overwrite)  # again: another process may have won meanwhile
            if os.path.exists(target):
                old = os.path.join(export_dir, f".old-{version}-{os.getpid()}")
                os.rename(target, old)
                try:
                    os.rename(tmp, target)
                except BaseException:
                    os.rename(old, target)
                    raise
                shutil.rmtree(old)
            else:
                os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


@contextlib.contextmanager
def locked(directory):
    """An exclusive `flock` on `directory` itself (no lock file is left behind)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(export_dir):
    """Deletes `.tmp-<v>-<pid>-*` and `.old-<v>-<pid>` folders whose process is gone."""
    for name in os.listdir(export_dir):
        match = LEFTOVER.match(name)
        path = os.path.join(export_dir, name)
        if match and os.path.isdir(path) and not pid_alive(int(match.group(1) or match.group(2))):
            shutil.rmtree(path, ignore_errors=True)


def make_readable(root):
    """chmod 0755 on `root` and every folder under it, 0644 on every file."""
    os.chmod(root, 0o755)
    for directory, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(directory, name), 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
