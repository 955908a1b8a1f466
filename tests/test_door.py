"""Checks at the door, the mathematics unchecked inside: one eager call checks its arguments
once, and a precision given at the door reaches every matrix product of the compiled pass."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from fnann import checks

NET = fnann.MLP([4, 6, 5, 3], hidden="tanh")
PARAMS = fnann.init(jax.random.key(0), NET)
X = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
Y = np.arange(8) % 3


@pytest.fixture
def counted(monkeypatch):
    """How often each check ran, by name."""
    calls = {}
    for name in ("check_params", "check_params_finite", "check_finite", "check_x", "check_targets"):
        real = getattr(checks, name)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            calls[_name] = calls.get(_name, 0) + 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(checks, name, wrapper)
    return calls


@pytest.mark.parametrize("method", ["manual", "autodiff"])
def test_one_eager_loss_and_grad_checks_each_argument_once(counted, method):
    fnann.loss_and_grad(NET, "cross_entropy", method)(PARAMS, X, Y)
    assert counted["check_params"] == 1 and counted["check_params_finite"] == 1
    assert counted["check_x"] == 1 and counted["check_targets"] == 1
    # x once, and each of the 2L parameter arrays once
    assert counted["check_finite"] == 1 + 2 * NET.n_layers


def test_one_eager_train_step_and_backward_trace_check_once(counted):
    opt = fnann.sgd(0.1)
    fnann.train_step(NET, "cross_entropy", opt)(PARAMS, opt.init(PARAMS), X, Y)
    assert counted["check_params"] == 1 and counted["check_targets"] == 1
    counted.clear()
    _, trace = fnann.forward_trace(NET, PARAMS, X)
    fnann.backward_trace(NET, PARAMS, trace, Y, "cross_entropy")
    assert counted["check_params"] == 2  # one per public call, none inside the math


def _dot_precisions(fn, *args) -> set[str]:
    text = jax.jit(fn).lower(*args).as_text()
    dots = [line for line in text.splitlines() if "dot_general" in line]
    assert dots, "no matrix product in the program"
    return {m.group(1) if (m := re.search(r"precision = \[(\w+), \w+\]", line)) else "DEFAULT" for line in dots}


@pytest.mark.parametrize("method", ["manual", "autodiff"])
@pytest.mark.parametrize("precision", ["highest", jax.lax.Precision.HIGHEST, ("highest", "highest")])
def test_a_precision_at_the_door_reaches_every_product(method, precision):
    f = fnann.loss_and_grad(NET, "cross_entropy", method, precision=precision)
    assert _dot_precisions(f, PARAMS, jnp.asarray(X), jnp.asarray(Y)) == {"HIGHEST"}
    assert _dot_precisions(fnann.loss_and_grad(NET, "cross_entropy", method), PARAMS, jnp.asarray(X),
                           jnp.asarray(Y)) == {"DEFAULT"}


def test_precision_scope_gives_the_program_of_explicit_precision():
    """jax.default_matmul_precision around tracing = precision= on every product: the same
    optimized HLO as a hand-written pass with Precision.HIGHEST."""
    x = jnp.asarray(X)

    def explicit(params, x):
        a = x
        for layer, act in zip(params, NET.activations):
            a = act.fn(jnp.matmul(a, layer.W.T, precision=jax.lax.Precision.HIGHEST) + layer.b)
        return a

    ours = jax.jit(lambda p, x: fnann.forward(NET, p, x, precision="highest")).lower(PARAMS, x).compile().as_text()
    theirs = jax.jit(explicit).lower(PARAMS, x).compile().as_text()
    def dots(text):  # every dot instruction, names and metadata removed
        return [re.sub(r"%[\w.\-]+", "%", re.sub(r", metadata=\{[^}]*\}", "", line)).strip()
                for line in text.splitlines() if " dot(" in line]

    assert len(dots(ours)) == NET.n_layers and dots(ours) == dots(theirs)
    assert all("operand_precision={highest,highest}" in d for d in dots(ours))


def test_a_pair_of_different_precisions_is_refused_by_name():
    with pytest.raises(ValueError, match="precision: a pair of different precisions"):
        fnann.forward(NET, PARAMS, X, precision=("highest", "default"))


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(eps="a"), TypeError, "eps must be a real number"),
    (dict(eps=0.0), ValueError, "eps must be a finite number > 0"),
    (dict(eps=float("inf")), ValueError, "eps must be a finite number > 0"),
    (dict(atol=-1e-12), ValueError, "atol must be a finite number >= 0"),
    (dict(autodiff_rtol=-1.0), ValueError, "autodiff_rtol must be a finite number >= 0"),
    (dict(autodiff_rtol=float("nan")), ValueError, "autodiff_rtol must be a finite number >= 0"),
    (dict(seed=1.5), TypeError, "seed must be an int"),
    (dict(n_fd=2.5), TypeError, "n_fd must be an int >= 1 or None"),
    (dict(n_fd=0), ValueError, "n_fd must be >= 1"),
    (dict(fd_rtol=-1.0), ValueError, "fd_rtol must be a finite number >= 0"),
    (dict(seed=-1), ValueError, "seed must be >= 0"),
])
def test_check_grads_arguments_fail_with_fnanns_error(kwargs, err, match):
    with pytest.raises(err, match=match):
        fnann.check_grads(NET, "cross_entropy", PARAMS, X, Y, **kwargs)


def test_the_declarative_helpers_refuse_what_they_should():
    assert checks.integer(3, "k", 1) == 3
    for bad, err in ((True, TypeError), (2.0, TypeError), (0, ValueError)):
        with pytest.raises(err, match="k must"):
            checks.integer(bad, "k", 1)
    assert checks.real(1, "r", 0, 1) == 1.0
    for bad, kw in ((1.0, dict(high_open=True)), (0.0, dict(low_open=True)), (float("nan"), {}),
                    (float("inf"), {}), (-0.1, {})):
        with pytest.raises(ValueError, match="r must"):
            checks.real(bad, "r", 0, 1, **kw)
    assert checks.real(float("inf"), "r", 0, finite=False) == float("inf")
