"""``fnann train / predict / evaluate``: the main job end to end, and bad input as one line."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fnann
from fnann import cli


def run(argv, capsys):
    try:
        status = cli.main(argv)
    except SystemExit as e:  # argparse's own usage errors
        status = e.code
    out = capsys.readouterr()
    return status, out.out, out.err


def train(tmp_path, capsys, *extra):
    return run(["train", "--out", str(tmp_path / "run"), "--no-cache", "--no-progress", *extra], capsys)


def test_train_digits_quick(tmp_path, capsys):
    status, out, err = train(tmp_path, capsys, "--epochs", "8", "--diagnostics", "4")
    assert status == 0, err
    assert "gradient check passed" in out
    acc = float(out.split("test accuracy ")[1].split()[0])
    assert acc >= 0.9  # the full default run (60 epochs) is checked by hand: >= 0.97
    assert out.count("epoch ") >= 8
    ck = fnann.load(tmp_path / "run" / "checkpoint.npz")
    assert ck.net == fnann.MLP([64, 128, 64, 10]) and ck.epoch == 8
    assert len(ck.history["loss"]) == 8 and ck.meta["data"] == "digits"
    png = tmp_path / "run" / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # --diagnostics: the last record's table (one row per layer) and the layers x epochs heatmap
    table = out.split("gradient flow after epoch 8 (256 training examples):\n")[1].splitlines()
    assert [row.split()[:3] for row in table[2:5]] == [["1", "relu", "128x64"], ["2", "relu", "64x128"],
                                                       ["3", "softmax", "10x64"]]
    assert (tmp_path / "run" / "diagnostics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # predict and evaluate from the checkpoint
    from fnann import datasets
    d = datasets.load("digits", standardize=False)
    np.savetxt(tmp_path / "new.csv", d.x_test[:5], delimiter=",")
    status, out, err = run(["predict", str(tmp_path / "run" / "checkpoint.npz"),
                            str(tmp_path / "new.csv"), "--no-cache"], capsys)
    assert status == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("prediction,p_0") and len(lines) == 6
    predicted = [int(l.split(",")[0]) for l in lines[1:]]
    assert np.mean(np.array(predicted) == d.y_test[:5]) >= 0.6
    status, out, err = run(["evaluate", str(tmp_path / "run" / "checkpoint.npz"), "--no-cache"], capsys)
    assert status == 0 and f"accuracy {acc:.4f}" in out
    status, out, err = run(["evaluate", str(tmp_path / "run" / "checkpoint.npz"), "--data", "digits",
                            "--no-cache"], capsys)
    assert status == 0 and "(1797 examples)" in out, err
    assert float(out.split("accuracy ")[1].split()[0]) >= 0.9


def test_resume_continues_and_existing_checkpoint_is_never_overwritten(tmp_path, capsys):
    args = ("--data", "iris", "--epochs", "2", "--no-gradcheck", "--no-plot")
    assert train(tmp_path, capsys, *args)[0] == 0
    path = tmp_path / "run" / "checkpoint.npz"
    before = path.read_bytes()
    status, _, err = train(tmp_path, capsys, *args)
    assert status == 2 and "exists" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert path.read_bytes() == before
    assert train(tmp_path, capsys, *args, "--resume")[0] == 0
    ck = fnann.load(path)
    assert ck.epoch == 4 and len(ck.history["loss"]) == 4
    assert train(tmp_path, capsys, *args, "--overwrite")[0] == 0
    assert fnann.load(path).epoch == 2


def test_resume_is_bit_identical_to_one_run(tmp_path, capsys):
    args = ("--data", "wine", "--no-gradcheck", "--no-plot", "--no-cache", "--no-progress")
    assert run(["train", "--out", str(tmp_path / "a"), "--epochs", "5", *args], capsys)[0] == 0
    assert run(["train", "--out", str(tmp_path / "b"), "--epochs", "2", *args], capsys)[0] == 0
    assert run(["train", "--out", str(tmp_path / "b"), "--epochs", "3", "--resume", *args], capsys)[0] == 0
    a, b = fnann.load(tmp_path / "a" / "checkpoint.npz"), fnann.load(tmp_path / "b" / "checkpoint.npz")
    for u, v in zip(a.params, b.params):
        np.testing.assert_array_equal(u.W, v.W)
        np.testing.assert_array_equal(u.b, v.b)


def test_regression_on_a_csv_file_with_header(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=120)
    with open(tmp_path / "reg.csv", "w") as f:
        f.write("a,b,c,target\n")
        for row, t in zip(x, y):
            f.write(",".join(f"{v:.6f}" for v in row) + f",{t:.6f}\n")
    status, out, err = train(tmp_path, capsys, "--data", str(tmp_path / "reg.csv"), "--label", "target",
                             "--epochs", "30", "--batch-size", "full", "--lr", "0.01", "--no-plot")
    assert status == 0, err
    assert "loss mse" in out and "identity" in out
    assert float(out.split("standardized targets) ")[1].split()[0]) < 0.2


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("make_args,message", [
    (lambda t: ["--data", "mnist"], "unknown dataset 'mnist'"),
    (lambda t: ["--hidden-sizes", "12,x"], "malformed sizes"),
    (lambda t: ["--hidden-sizes", "0"], "malformed sizes"),
    (lambda t: ["--batch-size", "0"], "batch size must be"),
    (lambda t: ["--hidden", "gelu"], "unknown activation 'gelu'"),
    (lambda t: ["--loss", "hinge"], "unknown loss 'hinge'"),
    (lambda t: ["--optimizer", "lbfgs"], "invalid choice"),
    (lambda t: ["--data", write(t, "nan.csv", "1,2,0\n3,nan,1\n5,6,0\n7,8,1\n")], "not a finite number"),
    (lambda t: ["--data", write(t, "ragged.csv", "1,2,0\n3,4\n5,6,0\n7,8,1\n")], "line 2 has 2 columns, expected 3"),
    (lambda t: ["--data", write(t, "h.csv", "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n"), "--label", "class"],
     "no label column 'class'"),
    (lambda t: ["--data", str(t / "missing.csv")], "no such file"),
])
def test_bad_input_is_one_line_with_exit_status_2(tmp_path, capsys, make_args, message):
    status, _, err = train(tmp_path, capsys, *make_args(tmp_path), "--epochs", "1")
    assert status == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_predict_and_evaluate_errors(tmp_path, capsys):
    status, _, err = run(["predict", str(tmp_path / "none.npz"), "x.csv", "--no-cache"], capsys)
    assert status == 2 and "does not exist" in err
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    status, _, err = run(["evaluate", str(tmp_path / "bad.npz"), "--no-cache"], capsys)
    assert status == 2 and "truncated or corrupt" in err


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "gradcheck"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    assert e.value.code == 0 and "usage: fnann " + command in capsys.readouterr().out


def test_console_script_uses_the_compilation_cache(tmp_path):
    env = dict(os.environ, FNANN_CACHE_DIR=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "fnann", "train", "--data", "xor", "--epochs", "2", "--no-gradcheck",
           "--no-plot", "--out", str(tmp_path / "run")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert any((tmp_path / "cache").iterdir())  # compiled programs were written to the cache
