"""The machinery around a training run: the run folder's lock, the progress, the plotting
helper, the run's keys and compiling on a second thread."""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path

from fnann.app.common import UsageError


class Progress:
    """One progress bar (tqdm, on a terminal) or one plain line per epoch."""

    def __init__(self, total: int, first: int, plain: bool, show_accuracy: bool = True):
        self.bar = None
        if not plain and sys.stderr.isatty():
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, initial=0, unit="epoch", desc="training")
            except ImportError:
                pass
        self.total, self.first, self.show_accuracy = total, first, show_accuracy

    def __call__(self, epoch: int, logs: dict) -> None:
        shown = {"loss": logs["loss"]}
        for k in ("val_loss", "val_accuracy") if self.show_accuracy else ("val_loss",):
            if k in logs:
                shown[k.replace("accuracy", "acc")] = logs[k]
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in shown.items()})
        else:
            text = "  ".join(f"{k} {v:.4f}" for k, v in shown.items())
            print(f"epoch {epoch + 1:4d}/{self.first + self.total}  {text}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def run_folder(out: Path):
    """Holds the lock of the run folder (proving it writable) for the duration of the run."""
    from fnann.app.runlock import FolderInUse, LockRefused, RunLock

    lock = RunLock(out)
    try:
        lock.__enter__()
    except (FolderInUse, LockRefused) as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write to --out {out}: {e.strerror or e}") from None
    try:
        yield lock
    finally:
        lock.__exit__(None, None, None)


@functools.cache
def run_keys():
    """``seed -> (init key, fit key)``, the split of ``jax.random.key(seed)``, as one program
    (eagerly it is four: the seed's conversion, the seeding, the split and the unstacking)."""
    import jax

    return jax.jit(lambda seed: tuple(jax.random.split(jax.random.key(seed))))


@contextlib.contextmanager
def compiling_ahead(wide: bool):
    """``ahead(fn, *args)``: runs ``fn`` (a ``compile_*`` function) on a second thread and
    returns its future. XLA compiles without holding the GIL, so the epoch compiles while the
    gradient check runs. An error there is dropped: the call it prepares raises it itself.
    ``enable_x64`` is per thread, so the thread enters the run's setting."""
    import concurrent.futures

    import jax

    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fnann-compile")

    def ahead(fn, *args, **kwargs):
        def run():
            with jax.enable_x64(wide):
                try:
                    fn(*args, **kwargs)
                except Exception:  # noqa: BLE001 (reported by the real call)
                    pass

        return pool.submit(run)

    try:
        yield ahead
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def plotter(plot: bool = True):
    """The helper process that draws the curves (started before JAX is imported, so that
    matplotlib loads on another core meanwhile), or None: no plot, or matplotlib is absent
    (then the in-process path reports the missing extra)."""
    import importlib.util

    if not plot or importlib.util.find_spec("matplotlib") is None:
        yield None
        return
    from fnann.app.plot_worker import PlotWorker

    try:
        worker = PlotWorker()
    except OSError:  # no process could be started: draw in this one
        yield None
        return
    with worker:
        yield worker


def plot_curves(plotter, history, path: Path, title: str, best_epoch):
    """Starts drawing the curves; returns a function that waits for the written path."""
    if plotter is None:
        def draw():
            from fnann.app.plots import plot_history

            return plot_history(history, path, title=title, best_epoch=best_epoch)

        return draw
    plotter.submit(history, path, title, best_epoch)
    return plotter.result
