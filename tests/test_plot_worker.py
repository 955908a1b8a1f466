"""The plotting helper process of ``fnann train``: the same PNG as drawing in-process, and
each way it can fail (killed, hung, no matplotlib, its parent gone) is a message or a clean
exit, never a lost checkpoint, a half-written file or an orphan process."""

import os
import signal
import subprocess
import sys
import time

import pytest

import fnann
from fnann.app import cli, plots, training
from fnann.app.plot_worker import PlotError, PlotWorker

pytest.importorskip("matplotlib")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HISTORY = {"epoch": [0, 1, 2, 3], "loss": [1.0, 0.5, 0.3, 0.2], "val_loss": [1.1, 0.6, 0.5, 0.45],
           "val_accuracy": [0.5, 0.7, 0.8, 0.85]}


def test_the_helper_writes_the_png_drawing_in_process_writes(tmp_path):
    with PlotWorker() as worker:
        saved = worker.plot_history(HISTORY, tmp_path / "a.png", title="iris: 4-8-3", best_epoch=2)
    assert saved == str(tmp_path / "a.png")
    plots.plot_history(HISTORY, tmp_path / "b.png", title="iris: 4-8-3", best_epoch=2)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert worker.proc.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # no temporary left


def test_a_killed_helper_is_a_message_and_the_run_keeps_its_checkpoint(tmp_path, capsys, monkeypatch):
    real = training.plotter

    def killed_at_once(args):
        manager = real(args)
        worker = manager.__enter__()
        os.kill(worker.proc.pid, signal.SIGKILL)

        class Context:
            def __enter__(self):
                return worker

            def __exit__(self, *exc):
                return manager.__exit__(*exc)

        return Context()

    monkeypatch.setattr(training, "plotter", killed_at_once)
    out = tmp_path / "run"
    status = cli.main(["train", "--data", "xor", "--epochs", "2", "--out", str(out), "--no-cache",
                       "--no-progress", "--no-gradcheck"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "no plot: the plotting process ended (exit -9)" in printed
    assert not (out / "curves.png").exists()
    assert fnann.load(out / "checkpoint.npz").epoch == 2
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_a_hung_helper_times_out_and_is_reaped(tmp_path):
    worker = PlotWorker(timeout=1.0)
    worker.proc.kill()
    worker.proc.wait()
    worker.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    with pytest.raises(PlotError, match="no answer in 1 s"):
        worker.plot_history(HISTORY, tmp_path / "c.png")
    assert time.monotonic() - started < 30
    assert worker.proc.poll() is not None
    assert not (tmp_path / "c.png").exists()


def test_a_helper_without_matplotlib_names_the_extra(tmp_path):
    fake = tmp_path / "site"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(fake)
    try:
        with PlotWorker() as worker, pytest.raises(PlotError, match=r'pip install "fnann\[plot\]"'):
            worker.plot_history(HISTORY, tmp_path / "d.png")
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    assert not (tmp_path / "d.png").exists()


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited orphan waits for its new parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
def test_the_helper_ends_when_its_run_dies(tmp_path):
    """A run killed before it asks for the figure (kill -9: no clean-up of its own) closes
    the helper's input with it; the helper exits without writing anything."""
    code = ("import os, sys; from fnann.app.plot_worker import PlotWorker; w = PlotWorker(); "
            "print(w.proc.pid, flush=True); os.kill(os.getpid(), 9)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert run.returncode == -9
    pid = int(run.stdout.split()[0])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.1)
    if _running(pid):
        pytest.fail(f"the helper {pid} outlived its run")
    assert os.listdir(tmp_path) == []
