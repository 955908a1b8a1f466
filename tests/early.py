"""Child processes that run beside the session (see ``start_early`` in tests/conftest.py).

A test that waits seconds on a child process would leave the second core idle while the
session's own work (XLA compiling, one program at a time) keeps one core busy. So a module's
``start_early(items)`` returns ``Early`` objects, and the session's background lane launches
them one after another (one child at a time, on the other core) as soon as collection ends. A
test calls ``result()``: it waits for the child the lane launched, or launches it itself when
the lane has not reached it yet (or is not running: pytest-xdist workers, a module run on its
own before its lane turn).
"""

import os
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Child:
    """A subprocess whose stdout and stderr go to temporary files (a pipe nobody reads would block it)."""

    def __init__(self, argv, **kwargs):
        self.out, self.err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=self.err, text=True, **kwargs)

    def result(self, timeout: float) -> subprocess.CompletedProcess:
        """Waits for the child (killed after ``timeout`` s: TimeoutExpired) and returns what
        ``subprocess.run(..., capture_output=True, text=True)`` would have."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        texts = []
        for f in (self.out, self.err):
            f.seek(0)
            texts.append(f.read())
            f.close()
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, *texts)


def two_devices(script: str) -> Child:
    """``python -c script`` in a fresh interpreter whose CPU backend has two devices (the count
    is fixed when jax starts, so XLA_FLAGS is set before; LLVM's optimization off, a quarter
    less compile time), this checkout first on PYTHONPATH."""
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    return Child([sys.executable, "-c", script], env=env)


class Early:
    """A child to be launched once, by the background lane or by its test, whichever comes first."""

    def __init__(self, start):
        self._start, self._lock, self.child, self.stopped = start, threading.Lock(), None, False

    def launch(self, by_lane: bool = False):
        """Starts the child unless it was started; the lane starts nothing once stopped."""
        with self._lock:
            if self.child is None and not (by_lane and self.stopped):
                self.child = self._start()
            return self.child

    def result(self, timeout: float) -> subprocess.CompletedProcess:
        return self.launch().result(timeout)

    def stop(self):
        """The session is over: the lane launches nothing more, and a running child is killed."""
        with self._lock:
            self.stopped = True
            if self.child is not None and self.child.proc.poll() is None:
                self.child.proc.kill()
                self.child.proc.wait()


def lane(earlies):
    """Launches each child in turn and waits for it before the next (a thread of the session)."""
    for early in earlies:
        child = early.launch(by_lane=True)
        if child is None:
            return
        child.proc.wait()


def selected(items, earlies: dict) -> list:
    """The ``Early`` objects of ``earlies`` (``{test function's name: Early}``) whose test is
    among the session's selected ``items``: a module's ``start_early`` in one line."""
    names = {item.originalname for item in items}
    return list(dict.fromkeys(early for name, early in earlies.items() if name in names))  # each once
