"""The training-curves PNG of ``fnann train``, drawn by a helper process while the run trains.

Importing matplotlib and drawing a figure take about a second of CPU; JAX is not needed for
it. So ``fnann train`` starts this helper first (``python -m fnann.app.plot_worker``, before
the run itself imports JAX): it imports matplotlib on another core while the run loads JAX,
checks gradients and trains, then draws what it is sent. The protocol is one JSON object per
line each way: the run sends ``{"history": ..., "path": ..., "title": ..., "best_epoch": ...}``
and the helper answers ``{"saved": path}`` or ``{"error": message}``.

What can go wrong is contained: the file is written atomically (``plots.save_figure``), so a
helper killed mid-write leaves the previous PNG; a helper that dies, hangs past ``timeout`` or
cannot import matplotlib is an error message for the caller, never a lost checkpoint; a run
that ends without asking (an error, Ctrl-C) closes the helper's input and it exits. The helper
only ever writes the path the run sends it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading

TIMEOUT = 120.0  # seconds to wait for the figure; matplotlib takes about one


class PlotError(RuntimeError):
    """The helper could not draw the figure (the message says why)."""


class PlotWorker:
    """A started helper process; a context manager that always reaps it."""

    def __init__(self, timeout: float = TIMEOUT):
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.timeout = timeout
        self._thread: threading.Thread | None = None
        self._answer: tuple[str, str] | None = None
        self.proc = subprocess.Popen([sys.executable, "-m", "fnann.app.plot_worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def submit(self, history: dict, path, title: str = "", best_epoch: int | None = None) -> None:
        """Sends ``plots.plot_history``'s arguments; the helper draws while the caller goes on."""
        request = json.dumps({"history": history, "path": os.fspath(path), "title": title,
                              "best_epoch": best_epoch}) + "\n"

        def exchange():  # one figure per run: the input is closed after it and the helper exits
            try:
                self._answer = self.proc.communicate(request, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self._answer = None
            except (OSError, ValueError) as e:  # closed underneath (close() from another thread)
                self._answer = ("", str(e))

        self._thread = threading.Thread(target=exchange, daemon=True)
        self._thread.start()

    def result(self) -> str:
        """The path the helper wrote, or `PlotError` saying why there is none."""
        self._thread.join()
        if self._answer is None:
            self.close()
            raise PlotError(f"the plotting process gave no answer in {self.timeout:g} s")
        out, err = self._answer
        lines = out.strip().splitlines()
        answer = json.loads(lines[-1]) if lines else {}
        if "saved" in answer:
            return answer["saved"]
        last = err.strip().splitlines()[-1:] or ["no message"]
        raise PlotError(answer.get("error") or f"the plotting process ended (exit {self.proc.returncode}): {last[0]}")

    def plot_history(self, history: dict, path, title: str = "", best_epoch: int | None = None) -> str:
        """``plots.plot_history`` in the helper: the path written, or `PlotError`."""
        self.submit(history, path, title, best_epoch)
        return self.result()

    def close(self) -> None:
        """Ends the helper (killed if it is still running) and reaps it."""
        if self.proc.poll() is None:
            self.proc.kill()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()
        self.proc.wait()

    def __enter__(self) -> PlotWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _warm_up(plots) -> None:
    """Renders a figure like the real one into memory: the first drawing in a process loads
    fonts and caches glyphs and the log axis' tick labels (1e-3 to 10 here), about half the
    time of the real figure's drawing, done while the run trains."""
    decades = [10.0, 1.0, 0.1, 0.01, 0.001]
    fig = plots.history_figure({"epoch": list(range(5)), "loss": decades, "val_loss": decades,
                                "val_accuracy": [0.1, 0.3, 0.5, 0.7, 0.9]}, "warm-up: 0.123", best_epoch=1)
    try:
        fig.savefig(io.BytesIO(), format="png", dpi=100)
    finally:
        plots._pyplot().close(fig)


def main() -> int:
    """The helper: imports matplotlib and draws a first figure at once, then draws each
    request read from stdin."""
    try:
        from fnann.app import plots

        _warm_up(plots)
    except ImportError as e:
        plots, failure = None, str(e)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if plots is None:
                raise ImportError(failure)
            saved = plots.plot_history(request["history"], request["path"], title=request["title"],
                                       best_epoch=request["best_epoch"])
            answer = {"saved": saved}
        except Exception as e:  # reported to the run, which prints it
            answer = {"error": f"{type(e).__name__}: {e}" if not isinstance(e, ImportError) else str(e)}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
