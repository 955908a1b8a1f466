"""``fnann gradcheck``: prints a passing table with exit status 0; bad options exit 2."""

import subprocess
import sys

import pytest

from fnann.app import cli


def test_gradcheck_default_network_passes(capsys):
    assert cli.main(["gradcheck", "--batch", "8"]) == 0
    out = capsys.readouterr().out
    assert "MLP(sizes=(64, 128, 64, 10)" in out and "gradient check passed" in out


def test_gradcheck_exit_status_1_when_the_check_fails(monkeypatch, capsys):
    import jax.numpy as jnp

    import fnann
    from fnann import mlp

    # A tanh whose hand-written derivative is 1% off: the command must report failure.
    wrong = fnann.elementwise("tanh", jnp.tanh, lambda z: 1.01 / jnp.cosh(z) ** 2)
    real = mlp.get_activation
    monkeypatch.setattr(mlp, "get_activation", lambda a, argname: wrong if a == "tanh" else real(a, argname=argname))
    assert cli.main(["gradcheck", "--sizes", "3,4,2", "--hidden", "tanh", "--batch", "4"]) == 1
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.parametrize("argv,msg", [
    (["gradcheck", "--sizes", "3,a"], "malformed sizes"),
    (["gradcheck", "--hidden", "nonesuch"], "unknown activation"),
    (["gradcheck", "--loss", "hinge_squared"], "unknown loss"),
    (["gradcheck", "--eps", "inf"], "argument --eps: expected a finite number"),
    (["gradcheck", "--eps", "a"], "argument --eps: expected a number"),
    (["gradcheck", "--eps", "0"], "argument --eps: must be > 0"),
    (["gradcheck", "--atol=-1e-9"], "argument --atol: must be >= 0"),
    (["gradcheck", "--fd-rtol=-1"], "argument --fd-rtol: must be >= 0"),
    (["gradcheck", "--autodiff-rtol", "nan"], "argument --autodiff-rtol: expected a finite number"),
    (["gradcheck", "--n-fd", "2.5"], "argument --n-fd: expected an integer"),
    (["gradcheck", "--n-fd=-1"], "argument --n-fd: must be >= 0"),
    (["gradcheck", "--seed=-1"], "argument --seed: must be >= 0"),
])
def test_bad_options_one_line_exit_2(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        status = cli.main(argv)
        raise SystemExit(status)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_console_module_runs():
    r = subprocess.run([sys.executable, "-m", "fnann", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "gradcheck" in r.stdout


def test_gradcheck_relu_kinks_pass_and_are_counted(capsys):
    # Issue 19.15: finite differences straddling a ReLU kink used to report FAILED (exit 1).
    assert cli.main(["gradcheck", "--sizes", "3,5,5,5,5,5,2", "--output", "identity", "--loss", "mse",
                     "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "gradient check passed" in out and "left out: their step crossed a kink" in out and "kinks" in out


def test_gradcheck_tolerance_options_reach_check_grads(capsys):
    assert cli.main(["gradcheck", "--sizes", "3,4,2", "--batch", "4", "--eps", "1e-5", "--fd-rtol", "1e-5",
                     "--autodiff-rtol", "1e-9", "--atol", "0", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "(eps 1e-05) rtol 1e-05" in out and "vs autodiff rtol 1e-09" in out
