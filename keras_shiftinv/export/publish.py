"""Atomic, world-readable version folders `<export_dir>/<version>/`."""

import os
import shutil
import tempfile

from keras_shiftinv.errors import UsageError


def check_version(version):
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"`version` must be a positive integer. Received: version={version!r}")
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

    The folder is written beside the target (`.tmp-<version>-*`, a name TF
    Serving ignores), made readable by every user (folders 0755, files 0644)
    and renamed into place. With `overwrite`, an existing version is renamed
    aside, the new one renamed in, and only then the old one deleted; if the
    rename in fails the old one is put back. A failure leaves the target as
    it was and no temporary folder.

    Returns:
        The path of the version folder.
    """
    target = check_destination(export_dir, version, overwrite)
    export_dir = os.path.dirname(target)
    try:
        os.makedirs(export_dir, mode=0o755, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)
    except OSError as e:
        raise UsageError(f"cannot export to {export_dir}: {e.strerror}. Received: export_dir={export_dir!r}") from None
    try:
        write(tmp)
        make_readable(tmp)
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


def make_readable(root):
    """chmod 0755 on `root` and every folder under it, 0644 on every file."""
    os.chmod(root, 0o755)
    for directory, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(directory, name), 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
