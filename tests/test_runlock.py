"""One run per output folder: ``fnann train --out D`` holds D's lock for its whole run."""

import os
import subprocess
import sys
import time

import pytest

import fnann
from fnann.app import cli
from fnann.app.runlock import LOCK_NAME, FolderInUse, RunLock


def test_a_held_lock_refuses_a_second_holder_and_is_removed_on_release(tmp_path):
    with RunLock(tmp_path) as lock:
        assert open(lock.path).read().split()[0] == str(os.getpid())
        with pytest.raises(FolderInUse, match=f"in use by another `fnann train` \\(pid {os.getpid()}\\)"):
            RunLock(tmp_path).__enter__()
    assert os.listdir(tmp_path) == []  # the lock file is gone
    with RunLock(tmp_path):  # and the folder can be taken again
        pass


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_NAME).write_text(f"{dead.stdout.strip()} host 0\n")  # left by a killed run
    with RunLock(tmp_path) as lock:
        assert open(lock.path).read().split()[0] == str(os.getpid())


def test_folders_the_lock_created_are_removed_when_nothing_was_written(tmp_path):
    with RunLock(tmp_path / "a" / "b"):
        pass
    assert not (tmp_path / "a").exists()
    with RunLock(tmp_path / "c"):
        (tmp_path / "c" / "checkpoint.npz").write_bytes(b"x")
    assert (tmp_path / "c" / "checkpoint.npz").exists() and not (tmp_path / "c" / LOCK_NAME).exists()


def test_two_trainings_into_one_folder(tmp_path, capsys):
    """A second ``fnann train`` into a folder in use fails at its start with one line, the
    first finishes and its checkpoint is intact; the first (a console-script process) also
    fills the compilation cache it is given."""
    out = tmp_path / "run"
    env = dict(os.environ, FNANN_CACHE_DIR=str(tmp_path / "cache"))
    first = subprocess.Popen([sys.executable, "-m", "fnann", "train", "--data", "xor", "--epochs", "50",
                              "--no-gradcheck", "--no-plot", "--no-progress", "--out", str(out)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / LOCK_NAME).exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.02)
        for extra in ([], ["--overwrite"], ["--resume"]):
            status = cli.main(["train", "--data", "xor", "--epochs", "1", "--out", str(out), "--no-cache", *extra])
            err = capsys.readouterr().err
            if extra == ["--resume"] and "no checkpoint" in err:
                continue  # the first has not written its checkpoint yet: refused before the lock
            assert status == 2 and len(err.splitlines()) == 1, err
            assert f"in use by another `fnann train` (pid {first.pid})" in err, err
    finally:
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    ck = fnann.load(out / "checkpoint.npz")
    assert ck.epoch == 50 and len(ck.history["loss"]) == 50
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "history.csv"]  # no lock left behind
    assert any((tmp_path / "cache").iterdir())  # compiled programs were written to the cache
