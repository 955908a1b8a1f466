"""An exclusive lock on a run folder, held by ``fnann train --out D`` for its whole run.

Two trainings into one folder would both pass the "checkpoint exists?" check and the later
rename would silently win. `RunLock` takes an exclusive, non-blocking ``fcntl.flock`` on the
folder itself before anything is read or written there, so a second run fails at its start
with `FolderInUse`. Deleting files in the folder cannot release it: the lock is on the
folder's inode, held by an open descriptor. The kernel drops it when its process ends,
however it ends. Beside it, ``D/.fnann-train.lock`` names the holder (its pid and host) for
the second run's message; it is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (which never
follows a link or opens an existing file), so a planted symlink or FIFO there is refused and
no other file is ever truncated or written through it. A regular lock file left by a killed
run is replaced; a run that ends normally removes it. Creating it is also the check that the
folder is writable, before any training. Where ``fcntl`` does not exist the lock file alone
is the lock (``O_EXCL``) and a leftover one must be removed by hand.
"""

from __future__ import annotations

import os
import socket
import stat
import time

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".fnann-train.lock"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class FolderInUse(RuntimeError):
    """Another process holds the lock of the folder."""


class LockRefused(OSError):
    """The lock file's name is taken by something fnann will not replace (a link, a FIFO, a folder)."""


def _holder(path: str) -> str:
    """``pid N [on host]`` from a lock file, read without following links or blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return "another process"
            pid, _, rest = f.read(200).strip().partition(" ")
    except (OSError, UnicodeDecodeError):
        return "another process"
    host = rest.split(" ")[0] if rest else ""
    if not pid.isdigit():
        return "another process"
    return f"pid {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")


class RunLock:
    """``with RunLock(folder):`` holds the folder's lock (creating the folder if needed).

    Raises (on entry):
      FolderInUse: when another live process holds it.
      LockRefused: when ``folder/.fnann-train.lock`` is a symlink or not a regular file.
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
        self.fd: int | None = None  # the lock file
        self.folder_fd: int | None = None  # the folder, flocked
        self.created: list[str] = []  # the folders this lock made, deepest first

    def __enter__(self) -> RunLock:
        missing, folder = [], os.path.abspath(self.folder)
        while not os.path.lexists(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.created = missing
        try:
            self.folder_fd = self._lock_folder()
            self.fd = self._create_lock_file()
            os.write(self.fd, f"{os.getpid()} {socket.gethostname()} {time.time():.0f}\n".encode())
        except BaseException:
            self._release()
            raise
        return self

    def _lock_folder(self) -> int | None:
        if fcntl is None:  # pragma: no cover
            return None
        fd = os.open(self.folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderInUse(f"{self.folder} is in use by another `fnann train` ({_holder(self.path)}); "
                              "wait for it to finish or use another --out") from None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _create_lock_file(self) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
        for _ in range(2):
            try:
                return os.open(self.path, flags, 0o644)
            except FileExistsError:
                if fcntl is None:  # pragma: no cover - the file is the lock
                    raise FolderInUse(f"{self.folder} is in use by {_holder(self.path)} (lock file "
                                      f"{self.path}; remove it if no run uses the folder)") from None
                mode = os.lstat(self.path).st_mode
                if not stat.S_ISREG(mode):
                    kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                    raise LockRefused(f"{self.path} is {kind}; fnann will not write through it "
                                      "(remove it if no run uses the folder)") from None
                os.remove(self.path)  # a killed run's: we hold the folder, so no live run owns it
        raise LockRefused(f"{self.path} keeps reappearing")  # pragma: no cover

    def _remove_created_folder(self) -> None:
        for folder in self.created:
            try:
                os.rmdir(folder)  # only if nothing was written there
            except OSError:
                break
        self.created = []

    def _release(self) -> None:
        if self.fd is not None:
            try:
                os.remove(self.path)  # ours: created with O_EXCL, and the folder is still locked
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None
        if self.folder_fd is not None:
            os.close(self.folder_fd)  # releases the flock
            self.folder_fd = None
        self._remove_created_folder()

    def __exit__(self, *exc) -> None:
        self._release()
