"""`RunLock`: one training process per model dir (docs/design.md, "Run directory")."""

import json
import os
import socket
import time

from keras_shiftinv.errors import UsageError

UNWRITTEN_LOCK_GRACE_S = 30  # an empty lock older than this was left by a kill mid-create


class RunLock:
    """A lock file created exclusively (`O_CREAT | O_EXCL`) holding host and pid.

    Exclusive create works on local disks and on NFS (where HDF5 file locking is
    often off). A lock left by a killed process on this host (its pid is gone)
    is stale and taken over; a live one, or one from another host, is a
    one-line `UsageError`.

    Args:
        path: the lock file.

    Example:
    >>> with RunLock(os.path.join(tmp_dir, ".lock")) as lock:
    ...     os.path.exists(lock.path)
    True
    """

    def __init__(self, path):
        self.path = path
        self.held = False

    def acquire(self):
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._stale():
                    try:
                        os.remove(self.path)
                    except FileNotFoundError:
                        pass
                    continue
                raise UsageError(self._message()) from None
            with os.fdopen(fd, "w") as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid()}, f)
            self.held = True
            return self
        raise UsageError(self._message())

    def release(self):
        if self.held:
            self.held = False
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def _owner(self):
        try:
            with open(self.path) as f:
                owner = json.load(f)
            return owner if isinstance(owner, dict) else {}
        except (OSError, ValueError):
            return {}

    def _stale(self):
        owner = self._owner()
        if not owner:  # killed between create and write, or garbage
            try:
                return time.time() - os.path.getmtime(self.path) > UNWRITTEN_LOCK_GRACE_S
            except FileNotFoundError:
                return True
        if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
            return False
        try:
            os.kill(owner["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def _message(self):
        owner = self._owner()
        who = f"pid {owner.get('pid')} on {owner.get('host')}" if owner else "a process that is starting"
        return (f"{os.path.dirname(self.path) or '.'} is in use by another training ({who}); wait for it "
                f"to finish, or delete {self.path} if that process is gone")
