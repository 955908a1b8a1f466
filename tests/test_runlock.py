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


QUICK = ["train", "--data", "xor", "--epochs", "1", "--no-gradcheck", "--no-plot", "--no-progress", "--no-cache"]


def _victim(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("the user's file\n")
    return victim


def test_a_planted_symlink_lock_is_refused_and_its_target_untouched(tmp_path, capsys):
    victim, out = _victim(tmp_path), tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).symlink_to(victim)
    status = cli.main([*QUICK, "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1 and "is a symbolic link" in err, err
    assert victim.read_text() == "the user's file\n" and (out / LOCK_NAME).is_symlink()
    assert sorted(os.listdir(out)) == [LOCK_NAME]  # nothing else written


def test_a_fifo_in_the_lock_s_place_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / LOCK_NAME)
    with pytest.raises(OSError, match="not a regular file"):
        RunLock(tmp_path).__enter__()
    RunLock(tmp_path).__exit__()  # nothing held


def test_a_stale_lock_hard_linked_to_a_user_file_is_unlinked_not_written(tmp_path):
    victim = _victim(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    os.link(victim, out / LOCK_NAME)
    with RunLock(out) as lock:
        assert open(lock.path).read().split()[0] == str(os.getpid())
    assert victim.read_text() == "the user's file\n"


def test_deleting_the_lock_file_does_not_let_a_second_run_in(tmp_path, capsys):
    with RunLock(tmp_path) as lock:
        os.remove(lock.path)
        with pytest.raises(FolderInUse, match="in use by another `fnann train`"):
            RunLock(tmp_path).__enter__()
        assert cli.main([*QUICK, "--out", str(tmp_path)]) == 2
        assert "in use by another `fnann train`" in capsys.readouterr().err
    with RunLock(tmp_path):  # released with the first holder
        pass


@pytest.mark.parametrize("name", ["checkpoint.npz", "history.csv", "curves.png", "diagnostics.png",
                                  "diverged.npz"])
def test_every_file_a_run_writes_is_guarded_and_a_link_is_replaced_not_followed(tmp_path, capsys, name):
    from fnann.app.training import RUN_FILES

    assert name in RUN_FILES
    victim, out = _victim(tmp_path), tmp_path / "run"
    out.mkdir()
    (out / name).symlink_to(victim)
    status = cli.main([*QUICK, "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1 and f"holds {name} from an earlier run" in err, err
    assert "--overwrite" in err and ("--resume" in err) == (name == "checkpoint.npz")
    assert sorted(os.listdir(out)) == [name] and victim.read_text() == "the user's file\n"
    if name in ("checkpoint.npz", "history.csv"):  # files this quick run writes: replaced when asked
        assert cli.main([*QUICK, "--out", str(out), "--overwrite"]) == 0, capsys.readouterr().err
        assert not (out / name).is_symlink() and victim.read_text() == "the user's file\n"
