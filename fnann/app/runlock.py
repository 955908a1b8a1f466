"""An exclusive lock on a run folder, held by ``fnann train --out D`` for its whole run.

Two trainings into one folder would both pass the "checkpoint exists?" check and the later
rename would silently win. `RunLock` takes ``D/.fnann-train.lock`` with ``fcntl.flock``
(exclusive, non-blocking) before anything is read or written there, so a second run fails
at its start with `FolderInUse`, naming the holder's pid. The kernel drops the lock when its
process ends, however it ends, so a lock file left behind by a killed run (a dead pid) is
simply taken over; a run that ends normally removes the file. Creating the lock file is also
the check that the folder is writable, before any training. Where ``fcntl`` does not exist
the lock file is created with ``O_EXCL`` and a leftover one must be removed by hand.
"""

from __future__ import annotations

import os
import socket
import time

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".fnann-train.lock"


class FolderInUse(RuntimeError):
    """Another process holds the lock of the folder."""


def _holder(path: str) -> str:
    try:
        with open(path) as f:
            pid, _, rest = f.read().strip().partition(" ")
    except OSError:
        return "another process"
    host = rest.split(" ")[0] if rest else ""
    return f"pid {pid}" + (f" on {host}" if host and host != socket.gethostname() else "") if pid else "another process"


class RunLock:
    """``with RunLock(folder):`` holds the folder's lock (creating the folder if needed).

    Raises (on entry):
      FolderInUse: when another live process holds it.
      OSError: when the folder cannot be created or written (the caller reports it).

    Example:
      >>> import tempfile
      >>> with tempfile.TemporaryDirectory() as d, RunLock(d) as lock:
      ...     os.path.basename(lock.path)
      '.fnann-train.lock'
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, LOCK_NAME)
        self.fd: int | None = None
        self.created: list[str] = []  # the folders this lock made, deepest first

    def __enter__(self) -> RunLock:
        missing, folder = [], os.path.abspath(self.folder)
        while not os.path.exists(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.created = missing
        try:
            self.fd = self._acquire()
        except BaseException:
            self._remove_created_folder()
            raise
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()} {socket.gethostname()} {time.time():.0f}\n".encode())
        return self

    def _acquire(self) -> int:
        if fcntl is None:  # pragma: no cover
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise FolderInUse(f"{self.folder} is in use by {_holder(self.path)} (lock file "
                                  f"{self.path}; remove it if no run uses the folder)") from None
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise FolderInUse(f"{self.folder} is in use by another `fnann train` "
                                  f"({_holder(self.path)}); wait for it to finish or use "
                                  "another --out") from None
            try:  # a run that just finished may have unlinked the file we opened
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)
        raise FolderInUse(f"{self.folder}: could not take the lock {self.path}")  # pragma: no cover

    def _remove_created_folder(self) -> None:
        for folder in self.created:
            try:
                os.rmdir(folder)  # only if nothing was written there
            except OSError:
                break
        self.created = []

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            try:
                os.remove(self.path)  # still holding the lock: no one else can own this file
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None
        self._remove_created_folder()
