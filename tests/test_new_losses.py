"""Huber, mean absolute error and the multi-class hinge: each value against an independent
transcription (numpy, optax), each hand-derived gradient against jax.grad, the kinks stated and
tested, and every entry point that takes a loss."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnann
from fnann.app import cli
from strategies import max_rel_error, problem


def x64(fn):
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)
    return wrapped


def hinge_numpy(s, labels):
    total = 0.0
    for i, j in itertools.product(range(s.shape[0]), range(s.shape[1])):
        if j != labels[i]:
            total += max(0.0, s[i, j] - s[i, labels[i]] + 1.0)
    return total / s.shape[0]


@x64
@pytest.mark.parametrize("delta", [1.0, 0.5, 3.0])
def test_huber_against_optax_and_its_gradient_against_autodiff(delta):
    rng = np.random.default_rng(0)
    y_hat, y = rng.normal(size=(9, 3)) * 2, rng.normal(size=(9, 3))
    loss = fnann.huber_with(delta)
    want = float(np.mean(optax.losses.huber_loss(jnp.asarray(y_hat), jnp.asarray(y), delta=delta)))
    assert float(loss.fn(jnp.asarray(y_hat), jnp.asarray(y))) == pytest.approx(want, rel=1e-14)
    np.testing.assert_allclose(loss.grad(jnp.asarray(y_hat), jnp.asarray(y)),
                               jax.grad(loss.fn)(jnp.asarray(y_hat), jnp.asarray(y)), rtol=1e-14, atol=0)
    r = np.array([[-delta, delta, 0.0, 2 * delta]])  # at |r| = δ both branches meet: value and slope
    np.testing.assert_allclose(loss.grad(jnp.asarray(r), jnp.zeros((1, 4))), np.clip(r, -delta, delta) / 4)


def test_huber_is_a_family_named_by_its_delta():
    assert fnann.get_loss("huber(0.5)") is fnann.huber_with(0.5) and fnann.huber_with(0.5).name == "huber(0.5)"
    assert fnann.get_loss("huber") is fnann.huber and fnann.get_loss("huber(1)") is fnann.huber
    assert fnann.get_loss("smooth_l1") is fnann.huber and fnann.LOSSES["huber(2.0)"].name == "huber(2.0)"
    for bad in ("huber(0)", "huber(-1)", "huber(inf)", "huber(x)"):
        with pytest.raises(ValueError, match="loss: 'huber"):
            fnann.get_loss(bad)
    with pytest.raises(TypeError, match="delta must be a real number"):
        fnann.huber_with("1")


@x64
def test_mae_against_numpy_with_the_subgradient_0_at_the_target():
    rng = np.random.default_rng(1)
    y_hat, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    y_hat[0, 0] = y[0, 0]  # r = 0 exactly: the subgradient fnann and jax.grad both take is 0
    assert float(fnann.mae.fn(jnp.asarray(y_hat), jnp.asarray(y))) == pytest.approx(np.mean(np.abs(y_hat - y)),
                                                                                      rel=1e-15)
    g = np.asarray(fnann.mae.grad(jnp.asarray(y_hat), jnp.asarray(y)))
    np.testing.assert_array_equal(g, np.sign(y_hat - y) / 12)
    assert g[0, 0] == 0.0
    np.testing.assert_array_equal(g, jax.grad(fnann.mae.fn)(jnp.asarray(y_hat), jnp.asarray(y)))


@x64
def test_hinge_against_a_loop_transcription_labels_and_one_hot_alike():
    rng = np.random.default_rng(2)
    s, labels = rng.normal(size=(8, 4)), rng.integers(0, 4, 8)
    s[0] = [0.0, 1.0, 0.0, 0.0]  # label 1 beats class 0 by exactly the margin: at the kink
    labels[0] = 1
    one_hot = np.eye(4)[labels]
    for y in (labels, one_hot):
        assert float(fnann.hinge.fn(jnp.asarray(s), jnp.asarray(y))) == pytest.approx(hinge_numpy(s, labels),
                                                                                     rel=1e-14)
        got = fnann.hinge.grad(jnp.asarray(s), jnp.asarray(y))
        np.testing.assert_array_equal(got, jax.grad(fnann.hinge.fn)(jnp.asarray(s), jnp.asarray(y)))
    assert np.asarray(fnann.hinge.grad(jnp.asarray(s), jnp.asarray(labels)))[0].tolist() == [0.0] * 4


def test_the_hinge_needs_raw_scores_and_labels():
    with pytest.raises(ValueError, match="needs output='identity'.*compare raw scores"):
        fnann.loss_and_grad(fnann.MLP([2, 3]), "hinge")
    net = fnann.MLP([2, 3], output="identity")
    params = fnann.init(jax.random.key(0), net)
    with pytest.raises(ValueError, match="y"):
        fnann.loss_and_grad(net, "hinge")(params, jnp.ones((2, 2)), jnp.full((2, 3), 2.0))


NETS = [("mae", "identity"), ("huber", "identity"), ("huber(0.3)", "tanh"), ("hinge", "identity")]


@settings(max_examples=8, deadline=None)
@given(case=st.sampled_from(NETS), hidden=st.sampled_from(["relu", "tanh", "elu"]), batch=st.integers(1, 6),
       seed=st.integers(0, 2**31 - 1))
def test_the_delta_recursion_with_the_new_losses_equals_autodiff_and_passes_the_check(case, hidden, batch, seed):
    loss, output = case
    net = fnann.MLP([3, 5, 4], hidden=hidden, output=output)
    with jax.enable_x64(True):
        params, x, _ = problem(net, "mse", batch, seed, jnp.float64)
        y = fnann.losses.random_targets(fnann.get_loss(loss), jax.random.key(seed), batch, 4, jnp.float64)
        _, manual = fnann.loss_and_grad(net, loss)(params, x, y)
        _, auto = fnann.loss_and_grad(net, loss, "autodiff")(params, x, y)
        assert max_rel_error(manual, auto) < 1e-9
        report = fnann.check_grads(net, loss, params, x, y, n_fd=6, seed=seed)
        assert report.passed, report


@pytest.mark.parametrize("data, loss", [("diabetes", "huber(0.5)"), ("diabetes", "mae"), ("iris", "hinge")])
def test_the_command_line_trains_with_each(tmp_path, capsys, data, loss):
    assert cli.main(["train", "--data", data, "--loss", loss, "--epochs", "3", "--out", str(tmp_path),
                     "--no-plot", "--no-cache", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"loss {loss}" in out and "gradient check passed" in out
    assert fnann.load(tmp_path / "checkpoint.npz").meta["loss"] == loss
