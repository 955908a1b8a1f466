"""``fnann train / predict / evaluate / gradcheck``: one clear line for every bad invocation,
never a wrong number, and the tasks people bring (classification by softmax, sigmoid or MSE,
regression in original units), resume that continues the same run or refuses.

Everything runs in-process through ``cli.main(argv)`` (a subprocess costs seconds of start-up);
``--no-cache`` keeps JAX's persistent compilation cache, a process-wide setting, off.
"""

import hashlib
import os
from pathlib import Path

import jax
import numpy as np
import pytest

import fnann
from fnann.app import cli, datasets


def run(argv, capsys):
    try:
        status = cli.main(argv)
    except SystemExit as e:  # argparse's own usage errors and --help/--version
        status = e.code
    out = capsys.readouterr()
    return status, out.out, out.err


FLAGS = ("--no-cache", "--no-progress", "--no-gradcheck", "--no-plot")


def write_csv(path, x, labels, header=None):
    with open(path, "w") as f:
        if header:
            f.write(",".join(header) + "\n")
        for row, t in zip(x, labels):
            f.write(",".join(f"{v:g}" for v in row) + f",{t}\n")
    return str(path)


def iris_rows():
    d = datasets.load("iris", standardize=False)
    return np.concatenate([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test])


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A trained run on a CSV of iris with integer labels, and the bad files of the table."""
    root = tmp_path_factory.mktemp("cli")
    x, y = iris_rows()
    write_csv(root / "iris.csv", x, y, header=["a", "b", "c", "d", "label"])
    # the README's training on a CSV of iris (so that, in one pytest process, its programs compile once)
    argv = ["train", "--data", str(root / "iris.csv"), "--batch-size", "full", "--out", str(root / "run"), *FLAGS]
    assert cli.main(argv) == 0
    bad = root / "bad"
    bad.mkdir()
    (bad / "nan.csv").write_text("1,2,0\n3,nan,1\n5,6,0\n7,8,1\n")
    (bad / "ragged.csv").write_text("1,2,0\n3,4\n5,6,0\n7,8,1\n")
    (bad / "h.csv").write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    (bad / "latin1.csv").write_bytes("a,b,y\n1,2,0\n3,4,caf\xe9\n5,6,0\n".encode("latin-1"))
    (bad / "text.npz").write_text("x,y\n1,2\n")
    np.savez(bad / "complex.npz", x=np.ones((6, 2)) * (1 + 2j), y=np.arange(6) % 2)
    (bad / "pets.csv").write_text("".join(f"{i},{i % 3},{['cat', 'dog'][i % 2]}\n" for i in range(12)))
    (bad / "three.csv").write_text("".join(f"{v:g},{v:g},{v:g}\n" for v in x[:5, 0]))
    (bad / "five.csv").write_text("".join(",".join(f"{v:g}" for v in r) + ",1\n" for r in x[:5]))
    (bad / "cells.csv").write_text("1,2,3,4\n1,2,oops,4\n")
    (bad / "unseen.csv").write_text("".join(",".join(f"{v:g}" for v in r) + ",7\n" for r in x[:5]))
    (bad / "file.txt").write_text("a file, not a folder\n")
    (bad / "predictions.csv").write_text("already here\n")
    fnann.save(bad / "plain.npz", fnann.MLP([4, 3]), fnann.init(__import__("jax").random.key(0), fnann.MLP([4, 3])))
    (bad / "corrupt.npz").write_bytes(b"garbage")
    return root


def snapshot(folder):
    """Every file and folder under ``folder`` with its content hash."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            found[os.path.join(dirpath, name)] = "dir"
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                found[path] = (os.stat(path).st_mtime_ns, hashlib.sha256(f.read()).hexdigest())
    return found


TRAIN = ["train", "--epochs", "1", *FLAGS]


def new(r):  # a fresh run folder that must not come into existence
    return ["--out", str(r / "new" / "run")]


def resumed(r):
    return [*TRAIN[:1], "--resume", "--out", str(r / "run"), *FLAGS]


CKPT = lambda r: str(r / "run" / "checkpoint.npz")
B = lambda r, name: str(r / "bad" / name)

BAD = {  # id: (argv from the fixture's root, a piece of the one error line)
    "unknown dataset": (lambda r: [*TRAIN, *new(r), "--data", "mnist"], "unknown dataset 'mnist'"),
    "sizes not numbers": (lambda r: [*TRAIN, *new(r), "--hidden-sizes", "12,x"], "malformed sizes"),
    "sizes zero": (lambda r: [*TRAIN, *new(r), "--hidden-sizes", "0"], "malformed sizes"),
    "batch 0": (lambda r: [*TRAIN, *new(r), "--batch-size", "0"], "batch size must be"),
    "activation": (lambda r: [*TRAIN, *new(r), "--data", "iris", "--hidden", "nonesuch"], "unknown activation 'nonesuch'"),
    "loss": (lambda r: [*TRAIN, *new(r), "--data", "iris", "--loss", "hinge_squared"], "unknown loss 'hinge_squared'"),
    "optimizer": (lambda r: [*TRAIN, *new(r), "--optimizer", "lbfgs"], "invalid choice"),
    "nan cell": (lambda r: [*TRAIN, *new(r), "--data", B(r, "nan.csv")], "not a finite number"),
    "ragged": (lambda r: [*TRAIN, *new(r), "--data", B(r, "ragged.csv")], "line 2 has 2 columns, expected 3"),
    "label column": (lambda r: [*TRAIN, *new(r), "--data", B(r, "h.csv"), "--label", "class"],
                     "no label column 'class'"),
    "missing file": (lambda r: [*TRAIN, *new(r), "--data", B(r, "missing.csv")], "no such file"),
    "not utf-8": (lambda r: [*TRAIN, *new(r), "--data", B(r, "latin1.csv")], "latin1.csv: line 3 is not UTF-8"),
    "text named .npz": (lambda r: [*TRAIN, *new(r), "--data", B(r, "text.npz")], "text.npz: not a readable .npz"),
    "complex npz": (lambda r: [*TRAIN, *new(r), "--data", B(r, "complex.npz")], "complex"),
    "epochs < 0": (lambda r: [*TRAIN, *new(r), "--epochs", "-1"], "--epochs: must be >= 0"),
    "val size": (lambda r: [*TRAIN, *new(r), "--val-size", "1.5"], "--val-size: must be < 1"),
    "test size": (lambda r: [*TRAIN, *new(r), "--test-size", "0"], "--test-size: must be > 0"),
    "lr < 0": (lambda r: [*TRAIN, *new(r), "--lr", "-1"], "--lr: must be > 0"),
    "lr text": (lambda r: [*TRAIN, *new(r), "--lr", "fast"], "expected a number"),
    "lr nan": (lambda r: [*TRAIN, *new(r), "--lr", "nan"], "finite"),
    "weight decay < 0": (lambda r: [*TRAIN, *new(r), "--weight-decay", "-0.5"], "must be >= 0"),
    "seed < 0": (lambda r: [*TRAIN, *new(r), "--seed", "-1"], "--seed: must be >= 0"),
    "patience < 0": (lambda r: [*TRAIN, *new(r), "--patience", "-2"], "--patience: must be >= 0"),
    "task name": (lambda r: [*TRAIN, *new(r), "--task", "clustering"], "invalid choice"),
    "regression of text labels": (lambda r: [*TRAIN, *new(r), "--data", B(r, "pets.csv"), "--task", "regression"],
                                  "regression needs numeric labels"),
    "task of a bundled set": (lambda r: [*TRAIN, *new(r), "--data", "iris", "--task", "regression"],
                              "iris is a classification set"),
    "label of a bundled set": (lambda r: [*TRAIN, *new(r), "--data", "iris", "--label", "0"],
                               "--label applies to your own files"),
    "schedule name": (lambda r: [*TRAIN, *new(r), "--schedule", "step"], "invalid choice"),
    "dtype": (lambda r: [*TRAIN, *new(r), "--dtype", "float16"], "invalid choice"),
    "gamma with adam": (lambda r: [*TRAIN, *new(r), "--gamma", "0.5"], "--gamma applies to --optimizer momentum"),
    "warmup without warmup": (lambda r: [*TRAIN, *new(r), "--warmup-epochs", "3"],
                              "--warmup-epochs applies to --schedule warmup or warmup_cosine"),
    "warmup as long as the run": (lambda r: [*TRAIN, *new(r), "--data", "iris", "--schedule", "warmup_cosine",
                                             "--warmup-epochs", "1"], "leaves no epoch to decay over"),
    "delimiter": (lambda r: [*TRAIN, *new(r), "--delimiter", "ab"], "must be one character"),
    "out is a file": (lambda r: [*TRAIN, "--out", B(r, "file.txt")], "is a file, not a folder"),
    "out under a file": (lambda r: [*TRAIN, "--out", B(r, "file.txt") + "/run"], "cannot write to --out"),
    "checkpoint exists": (lambda r: [*TRAIN, "--out", str(r / "run")], "holds checkpoint.npz, history.csv from an earlier run: pass --resume"),
    "resume nothing": (lambda r: [*TRAIN, *new(r), "--resume"], "--resume: no checkpoint at"),
    "resume and overwrite": (lambda r: [*resumed(r), "--overwrite"], "pass one of them"),
    "resume seed": (lambda r: [*resumed(r), "--seed", "5"], "--seed 5 (recorded: 0)"),
    "resume optimizer": (lambda r: [*resumed(r), "--optimizer", "sgd"], "--optimizer sgd (recorded: adam)"),
    "resume weight decay": (lambda r: [*resumed(r), "--weight-decay", "0"], "--weight-decay 0 (recorded: 0.001)"),
    "resume b1": (lambda r: [*resumed(r), "--b1", "0.8"], "--b1 0.8 (recorded: 0.9)"),
    "resume loss": (lambda r: [*resumed(r), "--loss", "mse"], "--loss mse (recorded: cross_entropy)"),
    "resume batch": (lambda r: [*resumed(r), "--batch-size", "16"], "--batch-size 16 (recorded: full)"),
    "resume network": (lambda r: [*resumed(r), "--hidden-sizes", "16"], "--hidden-sizes 16 (recorded: 128,64)"),
    "resume data": (lambda r: [*resumed(r), "--data", "wine"], "--data wine"),
    "resume split": (lambda r: [*resumed(r), "--test-size", "0.3", "--val-size", "0.2"],
                     "--test-size 0.3 (recorded: 0.2); --val-size 0.2 (recorded: 0.1)"),
    "resume schedule": (lambda r: [*resumed(r), "--schedule", "cosine"], "--schedule cosine (recorded: constant)"),
    "resume gamma of adam": (lambda r: [*resumed(r), "--gamma", "0.5"], "--gamma applies to --optimizer momentum"),
    "predict no checkpoint": (lambda r: ["predict", B(r, "none.npz"), B(r, "three.csv"), "--no-cache"],
                              "does not exist"),
    "predict corrupt": (lambda r: ["predict", B(r, "corrupt.npz"), B(r, "three.csv"), "--no-cache"],
                        "truncated or corrupt"),
    "predict plain checkpoint": (lambda r: ["predict", B(r, "plain.npz"), B(r, "three.csv"), "--no-cache"],
                                 "was not written by `fnann train`"),
    "predict features": (lambda r: ["predict", CKPT(r), B(r, "three.csv"), "--no-cache"],
                         "three.csv has 3 feature columns but the network takes 4"),
    "predict label column": (lambda r: ["predict", CKPT(r), B(r, "five.csv"), "--no-cache"],
                             "is the label column still in it?"),
    "predict cell": (lambda r: ["predict", CKPT(r), B(r, "cells.csv"), "--no-cache"], "'oops' is not a number"),
    "predict missing inputs": (lambda r: ["predict", CKPT(r), B(r, "none.csv"), "--no-cache"], "no such file"),
    "predict output exists": (lambda r: ["predict", CKPT(r), B(r, "three.csv"), "--output",
                                         B(r, "predictions.csv"), "--no-cache"], "exists; pass --overwrite"),
    "predict output folder": (lambda r: ["predict", CKPT(r), B(r, "three.csv"), "--output",
                                         B(r, "file.txt") + "/p.csv", "--no-cache"], "is a file, not a folder"),
    "evaluate unseen label": (lambda r: ["evaluate", CKPT(r), "--data", B(r, "unseen.csv"), "--no-cache"],
                              "label 7 never seen in training; the model knows 0, 1, 2"),
    "evaluate features": (lambda r: ["evaluate", CKPT(r), "--data", B(r, "nan.csv"), "--no-cache"],
                          "not a finite number"),
    "evaluate feature count": (lambda r: ["evaluate", CKPT(r), "--data", B(r, "h.csv"), "--no-cache"],
                               "h.csv has 2 feature columns but the network takes 4"),
    "evaluate corrupt": (lambda r: ["evaluate", B(r, "corrupt.npz"), "--no-cache"], "truncated or corrupt"),
    "gradcheck sizes": (lambda r: ["gradcheck", "--sizes", "3,a", "--no-cache"], "malformed sizes"),
    "gradcheck one width": (lambda r: ["gradcheck", "--sizes", "5", "--no-cache"], "at least two widths"),
    "gradcheck batch": (lambda r: ["gradcheck", "--batch", "0", "--no-cache"], "--batch must be >= 1"),
    "gradcheck loss": (lambda r: ["gradcheck", "--loss", "hinge_squared", "--no-cache"], "unknown loss"),
    "no command": (lambda r: [], "required: COMMAND"),
    "unknown command": (lambda r: ["fit"], "invalid choice: 'fit'"),
    "unknown option": (lambda r: ["train", "--bogus"], "unrecognized arguments: --bogus"),
}


def test_the_table_is_large():
    assert len(BAD) >= 30


@pytest.mark.parametrize("case", list(BAD))
def test_bad_invocation_is_one_line_exit_2_and_changes_nothing(case, root, capsys):
    make_argv, message = BAD[case]
    before = snapshot(root)
    status, _, err = run(make_argv(root), capsys)
    assert status == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert message in err, err
    assert err.startswith("fnann") and "error: " in err
    assert snapshot(root) == before  # no file written, changed or left behind (lock, run folder)


def test_evaluate_on_a_file_lacking_a_class_equals_accuracy_from_predict(root, tmp_path, capsys):
    x, y = iris_rows()
    keep = y != 0  # class 0 is missing: the labels are 1 and 2, never renumbered to 0 and 1
    labelled = write_csv(tmp_path / "no0.csv", x[keep], y[keep])
    features = tmp_path / "no0_x.csv"
    np.savetxt(features, x[keep], delimiter=",", fmt="%g")
    status, out, err = run(["evaluate", CKPT(root), "--data", labelled, "--label", "-1", "--no-cache"], capsys)
    assert status == 0, err
    evaluated = float(out.split("accuracy ")[1].split()[0])
    assert f"({keep.sum()} examples)" in out
    status, out, err = run(["predict", CKPT(root), str(features), "--no-cache"], capsys)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "prediction,p_0,p_1,p_2"
    predicted = np.array([int(line.split(",")[0]) for line in lines[1:]])
    assert evaluated == pytest.approx(np.mean(predicted == y[keep]), abs=5e-5)
    assert evaluated > 0.6  # a real model: with the labels renumbered to 0 and 1 it would score near 0
    status, out, _ = run(["evaluate", CKPT(root), "--no-cache"], capsys)  # the test split, as training saw it
    ck = fnann.load(CKPT(root))
    assert status == 0 and f"accuracy {ck.meta['test']['accuracy']:.4f}" in out


def test_resume_with_only_epochs_is_bit_identical_and_lr_changes_with_a_note(root, tmp_path, capsys):
    args = ("--data", str(root / "iris.csv"), "--batch-size", "full", *FLAGS)  # the fixture's run: compiled
    assert run(["train", "--out", str(tmp_path / "a"), "--epochs", "5", *args], capsys)[0] == 0
    assert run(["train", "--out", str(tmp_path / "b"), "--epochs", "2", *args], capsys)[0] == 0
    status, out, err = run(["train", "--resume", "--epochs", "3", "--out", str(tmp_path / "b"), *FLAGS], capsys)
    assert status == 0, err
    assert "from epoch 2" in out
    a, b = fnann.load(tmp_path / "a" / "checkpoint.npz"), fnann.load(tmp_path / "b" / "checkpoint.npz")
    assert b.epoch == 5 and b.history == a.history
    for u, v in zip(a.params, b.params):
        np.testing.assert_array_equal(u.W, v.W)
        np.testing.assert_array_equal(u.b, v.b)
    rows = (tmp_path / "b" / "history.csv").read_text().splitlines()
    assert rows[0] == "epoch,loss,val_loss,val_accuracy" and [r.split(",")[0] for r in rows[1:]] == list("12345")
    assert float(rows[-1].split(",")[1]) == b.history["loss"][-1]  # full precision
    status, out, err = run(["train", "--resume", "--epochs", "1", "--lr", "0.01", "--out", str(tmp_path / "b"),
                            *FLAGS], capsys)
    assert status == 0, err
    assert "note: --lr 0.01 replaces the recorded 0.001" in out
    assert fnann.load(tmp_path / "b" / "checkpoint.npz").meta["run"]["lr"] == 0.01


def test_integer_regression_targets_with_task_regression(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = np.clip(np.round(20 + 6 * x @ np.array([1.0, -0.5, 0.3])), 0, 40).astype(int)  # integers 0..40
    path = write_csv(tmp_path / "counts.csv", x, y, header=["a", "b", "c", "count"])
    assert datasets.infer_task(y)[0] == "classification"  # what auto would do: say so, and allow --task
    out_dir = tmp_path / "run"
    status, out, err = run(["train", "--data", path, "--task", "regression", "--dtype", "float64", "--epochs", "300",
                            "--patience", "20", "--batch-size", "full", "--lr", "0.01", "--hidden-sizes", "16",
                            "--out", str(out_dir), "--no-cache", "--no-progress", "--no-plot"], capsys)
    assert status == 0, err
    assert "task regression (--task)" in out and "3-16-1 relu/identity, loss mse" in out
    with jax.enable_x64(True):  # a float64 checkpoint loads under x64 only (issue 19: never narrowed silently)
        ck = fnann.load(out_dir / "checkpoint.npz")
    assert ck.meta["task"] == "regression" and ck.net.n_out == 1 and ck.meta["run"]["dtype"] == "float64"
    rmse = float(out.split("test RMSE ")[1].split()[0])
    r2 = float(out.split("R² ")[1].split()[0])
    assert rmse < 2.0 and r2 > 0.9  # in counts, the file's units (the targets' std is about 7)
    # early stopping said which epoch it kept, and it is the best validation loss of the history
    kept = int(out.split("kept the params of epoch ")[1].split(",")[0])
    assert kept == 1 + int(np.argmin(ck.history["val_loss"]))
    assert "stopped after epoch" in out or "ran all 300 epochs" in out
    status, out, err = run(["evaluate", str(out_dir / "checkpoint.npz"), "--data", path, "--no-cache"], capsys)
    assert status == 0, err
    rmse_all = float(out.split("RMSE ")[1].split()[0])
    assert 0 < rmse_all < 2.0 and "(200 examples)" in out
    np.savetxt(tmp_path / "new.csv", x[:4], delimiter=",")
    status, out, err = run(["predict", str(out_dir / "checkpoint.npz"), str(tmp_path / "new.csv"), "--no-cache"],
                           capsys)
    assert status == 0, err
    predicted = np.array([float(v) for v in out.splitlines()[1:]])
    np.testing.assert_allclose(predicted, y[:4], atol=5)  # original units, not standardized


def test_sigmoid_bce_and_mse_classification_match_softmax_on_breast_cancer(tmp_path, capsys):
    """Within a few points of the softmax default, and the figures the README states."""
    accuracy = {}
    for name, extra in {"softmax": [], "bce": ["--output", "sigmoid", "--loss", "binary_cross_entropy"],
                        "mse": ["--loss", "mse"]}.items():
        status, out, err = run(["train", "--data", "breast_cancer", "--epochs", "20", "--out", str(tmp_path / name),
                                *FLAGS, *extra], capsys)
        assert status == 0, err
        accuracy[name] = fnann.load(tmp_path / name / "checkpoint.npz").meta["test"]["accuracy"]
        assert f"test accuracy {accuracy[name]:.4f}" in out
    assert fnann.load(tmp_path / "bce" / "checkpoint.npz").net.n_out == 1  # P(class 1) from one sigmoid
    assert accuracy["softmax"] > 0.95
    assert abs(accuracy["bce"] - accuracy["softmax"]) <= 0.03 and abs(accuracy["mse"] - accuracy["softmax"]) <= 0.03
    readme = " ".join((Path(__file__).parent.parent / "README.md").read_text().split())
    assert (f"the test accuracy is {accuracy['softmax']:.3f} for softmax, {accuracy['bce']:.3f} for sigmoid + BCE "
            f"and {accuracy['mse']:.3f} for softmax + MSE") in readme


def test_divergence_is_one_line_and_keeps_the_last_finite_params(tmp_path, capsys):
    out_dir = tmp_path / "run"
    status, _, err = run(["train", "--data", "iris", "--optimizer", "sgd", "--lr", "1e4", "--epochs", "3",
                          "--out", str(out_dir), *FLAGS], capsys)
    assert status == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "training diverged in epoch 1" in err and "smaller --lr" in err and str(out_dir / "diverged.npz") in err
    saved = fnann.load(out_dir / "diverged.npz")
    assert all(np.all(np.isfinite(layer.W)) for layer in saved.params)
    assert not (out_dir / "checkpoint.npz").exists()


def test_read_only_folders_are_one_line_before_any_work(root, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.geteuid() == 0:  # root writes anywhere: make the folder refuse as it would for a user
        from fnann.app import runlock

        real_open = os.open

        def refuse(path, *args, **kwargs):
            if str(path).startswith(str(locked)):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(runlock.os, "open", refuse)
        monkeypatch.setattr(cli.os, "access", lambda path, mode: not str(path).startswith(str(locked)))
    try:
        status, _, err = run([*TRAIN, "--out", str(locked)], capsys)
        assert status == 2 and len(err.splitlines()) == 1 and "cannot write to --out" in err, err
        status, _, err = run(["predict", CKPT(root), B(root, "five.csv"), "--output", str(locked / "p.csv"),
                              "--no-cache"], capsys)
        assert status == 2 and len(err.splitlines()) == 1 and "is not writable" in err, err
    finally:
        locked.chmod(0o700)
    assert os.listdir(locked) == []


def test_schedules_are_the_library_ones_over_the_run():
    from fnann.optim import schedules

    opts = {**cli.TRAIN_DEFAULTS, "lr": 0.01, "weight_decay": 0.0}
    for name, expected in [("constant", 0.01), ("cosine", schedules.cosine_decay(0.01, 40)),
                           ("exponential", schedules.exponential_decay(0.01, 0.1, 40)),
                           ("warmup", schedules.linear_warmup(0.0, 0.01, 20)),
                           ("warmup_cosine", schedules.warmup_cosine_decay(0.01, 20, 40))]:
        built = cli.build_optimizer({**opts, "schedule": name}, steps_per_epoch=4, schedule_steps=40)
        assert built == fnann.adam(expected), name


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "gradcheck"])
def test_help(command, capsys):
    status, out, _ = run([command, "--help"], capsys)
    assert status == 0 and "usage: fnann " + command in out


def test_train_help_lists_names_and_every_default(capsys):
    assert set(cli.ACTIVATION_NAMES) == set(fnann.ACTIVATIONS) and set(cli.LOSS_NAMES) == set(fnann.LOSSES)
    parser = cli.build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        if action.option_strings and action.nargs != 0 and action.dest in cli.TRAIN_DEFAULTS:
            assert "default" in action.help, action.dest
    status, out, _ = run(["train", "--help"], capsys)
    text = " ".join(out.split())
    for name in (*cli.ACTIVATION_NAMES, *cli.LOSS_NAMES, *cli.OPTIMIZERS, *cli.SCHEDULES):
        assert name in text
    assert "default 0.001" in text and "default 60" in text and "default digits" in text


def test_version(capsys):
    status, out, _ = run(["--version"], capsys)
    assert status == 0 and out.startswith(f"fnann {fnann.__version__} (jax ")


def test_regression_metrics_against_a_numpy_transcription():
    from fnann.app.metrics import rmse_r2

    rng = np.random.default_rng(3)
    y, y_hat = rng.normal(size=(40, 2)) * 5 + 3, rng.normal(size=(40, 2)) * 5 + 3
    rmse, r2 = rmse_r2(y_hat, y)
    assert rmse == pytest.approx(np.linalg.norm(y - y_hat) / np.sqrt(y.size), rel=1e-12)
    r2_columns = [1 - np.mean((y[:, j] - y_hat[:, j]) ** 2) / np.var(y[:, j]) for j in range(2)]
    assert r2 == pytest.approx(np.mean(r2_columns), rel=1e-12)
    assert np.isnan(rmse_r2(y_hat, np.ones_like(y))[1])  # constant targets: R² undefined
