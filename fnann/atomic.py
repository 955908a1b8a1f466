"""Atomic file writes, and the clean-up of what a killed writer leaves behind.

``atomic_write`` writes to a temporary file in the target's folder, flushes it to disk and
renames it over the target (``os.replace`` is atomic), so a crash, a kill -9 or an error
mid-write leaves the previous file untouched. A writer killed before its rename leaves its
temporary behind; the name records who wrote it, ``.fnann-<host>.<pid>.<random>.tmp``, and
the next ``atomic_write`` into the same folder removes the temporaries of writers on this
host whose process no longer exists. A live writer's temporary (another process saving
into the folder at the same moment) is never touched; nor are temporaries from other hosts
(a shared folder) or of another name.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile

_PREFIX = ".fnann-"
_TEMP = re.compile(r"^\.fnann-(?P<host>[A-Za-z0-9]*)\.(?P<pid>[0-9]+)\.[A-Za-z0-9_]+\.tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32]


def _alive(pid: int) -> bool:
    """Whether a process with this id exists (it may belong to another user)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def stale_temporaries(folder: str | os.PathLike) -> list[str]:
    """The temporaries in ``folder`` left by dead writers on this host."""
    host, stale = _host(), []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        m = _TEMP.match(name)
        if m and m["host"] == host and not _alive(int(m["pid"])):
            stale.append(os.path.join(folder, name))
    return stale


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Removes the temporaries of dead writers in ``folder``; returns how many went."""
    removed = 0
    for path in stale_temporaries(folder):
        try:
            if not os.path.islink(path) and os.path.isfile(path):
                os.remove(path)
                removed += 1
        except OSError:
            pass  # raced with another cleaner, or not ours to remove
    return removed


def _file_mode(path: str) -> int:
    """The mode a plain ``open(path, "w")`` would give: the old file's, else 0666 & ~umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, content) -> str:
    """Writes a file atomically: a temporary file in the same folder, fsync, then rename.

    Before writing, the temporaries of dead writers in that folder are removed.

    Args:
      path: the target; its previous content survives any failure before the rename.
      content: ``bytes``, or a function that writes to the open binary file.

    Returns:
      The path written.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(folder)
    fd, tmp = tempfile.mkstemp(prefix=f"{_PREFIX}{_host()}.{os.getpid()}.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path
