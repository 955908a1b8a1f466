"""A run is planned for its first ``--epochs``: a killed run resumes from its last periodic
save and ends as the unbroken run would, bit for bit, its schedule included; a schedule the
run's length shapes is never resumed past its end."""

import os
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

import fnann
from fnann.app import cli

RUN = ["--data", "iris", "--epochs", "8", "--schedule", "cosine", "--save-every", "3", "--no-gradcheck",
       "--no-plot", "--no-progress", "--no-cache"]
FLAGS = RUN[RUN.index("--save-every"):]

KILL_AFTER_FIRST_SAVE = """
import os, signal, sys
import fnann
from fnann.app import cli
real_save = fnann.save
def save(path, *args, **kwargs):
    written = real_save(path, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9 right after the first periodic save
fnann.save = save
sys.exit(cli.main(sys.argv[1:]))
"""


def train(*args):
    return cli.main(["train", *args])


def same(a, b):
    leaves = jax.tree.leaves((a.params, a.opt_state)), jax.tree.leaves((b.params, b.opt_state))
    return len(leaves[0]) == len(leaves[1]) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(*leaves, strict=True))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The unbroken run, and one killed (kill -9) right after its first periodic save."""
    root = tmp_path_factory.mktemp("resume")
    killed = subprocess.Popen([sys.executable, "-c", KILL_AFTER_FIRST_SAVE, "train", *RUN, "--out",
                               str(root / "killed")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)  # runs while this process trains the unbroken run
    try:
        assert train(*RUN, "--out", str(root / "unbroken")) == 0
        _, stderr = killed.communicate(timeout=300)
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.communicate()
    assert killed.returncode == -signal.SIGKILL, stderr
    shutil.copytree(root / "killed", root / "half")  # the killed run as it was left
    return root


def test_a_killed_run_resumes_from_its_last_save_bit_for_bit(runs, capsys):
    unbroken = fnann.load(runs / "unbroken" / "checkpoint.npz")
    left = fnann.load(runs / "half" / "checkpoint.npz")
    assert left.epoch == 3 and len(left.history["loss"]) == 3 and unbroken.epoch == 8
    assert not (runs / "half" / "history.csv").exists()  # only the checkpoint is saved on the way
    assert train("--resume", "--out", str(runs / "killed"), *FLAGS) == 0  # to the planned end
    assert "from epoch 3" in capsys.readouterr().out
    resumed = fnann.load(runs / "killed" / "checkpoint.npz")
    assert resumed.epoch == 8 and same(resumed, unbroken)
    assert resumed.history["loss"] == unbroken.history["loss"]
    assert resumed.meta["run"] == unbroken.meta["run"] and unbroken.meta["run"]["run_epochs"] == 8


def test_a_schedule_resumed_in_steps_equals_the_unbroken_run(runs, tmp_path):
    folder = tmp_path / "steps"
    shutil.copytree(runs / "half", folder)
    assert train("--resume", "--epochs", "2", "--out", str(folder), *FLAGS) == 0
    assert fnann.load(folder / "checkpoint.npz").epoch == 5
    assert train("--resume", "--out", str(folder), *FLAGS) == 0
    assert same(fnann.load(folder / "checkpoint.npz"), fnann.load(runs / "unbroken" / "checkpoint.npz"))


@pytest.mark.parametrize("extra, message", [
    ([], "has trained all 8 of its planned epochs and its cosine schedule has ended"),
    (["--epochs", "1"], "--resume --epochs 1 would train to epoch 9, past the end of the run's cosine schedule "
                        "at epoch 8"),
])
def test_resuming_past_the_end_of_a_schedule_is_refused(runs, tmp_path, capsys, extra, message):
    folder = tmp_path / "done"
    shutil.copytree(runs / "unbroken", folder)
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    assert train("--resume", *extra, "--out", str(folder), *FLAGS) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err and "start a new run with" in err, err
    assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == before


def test_past_its_schedule_s_end_a_half_way_run_is_told_how_far_it_may_go(runs, tmp_path, capsys):
    folder = tmp_path / "half"
    shutil.copytree(runs / "half", folder)
    assert train("--resume", "--epochs", "6", "--out", str(folder), *FLAGS) == 2
    assert "pass --epochs 5 or fewer" in capsys.readouterr().err


def test_a_constant_schedule_goes_on_when_asked_and_says_so_when_complete(tmp_path, capsys):
    args = ["--data", "xor", "--epochs", "2", "--no-gradcheck", "--no-plot", "--no-progress", "--no-cache",
            "--out", str(tmp_path)]
    assert train(*args) == 0
    assert train("--resume", *args[args.index("--no-gradcheck"):]) == 2
    assert "has trained all 2 of its planned epochs; pass --epochs K to train K more" in capsys.readouterr().err
    assert train("--resume", "--epochs", "1", *args[args.index("--no-gradcheck"):]) == 0
    ck = fnann.load(tmp_path / "checkpoint.npz")
    assert ck.epoch == 3 and ck.meta["run"]["run_epochs"] == 3


@pytest.mark.parametrize("value", ["-1", "1.5", "x"])
def test_save_every_is_a_count(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        train("--data", "xor", "--save-every", value, "--out", str(tmp_path / "r"))
    assert exit_.value.code == 2
    assert "--save-every" in capsys.readouterr().err and not (tmp_path / "r").exists()
