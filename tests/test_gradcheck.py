"""check_grads: it passes correct gradients, catches wrong ones, and leaves x64 as it was."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from strategies import problem


def test_report_passes_and_prints_a_table():
    net = fnann.MLP([5, 6, 3], hidden="tanh")
    params, x, y = problem(net, "cross_entropy", 8, 0)
    report = fnann.check_grads(net, "cross_entropy", params, x, y)
    assert report.passed and bool(report)
    text = str(report)
    for word in ("layer", "param", "vs autodiff", "vs finite diff", "passed", "128" if False else "6x5"):
        assert word in text
    assert len(report.rows) == 4
    assert [(r.layer, r.param) for r in report.rows] == [(1, "W"), (1, "b"), (2, "W"), (2, "b")]
    assert report.max_autodiff_rel < 1e-12 and report.max_fd_rel < 1e-6


def test_x64_is_restored():
    net = fnann.MLP([2, 2])
    params, x, y = problem(net, "cross_entropy", 3, 0)
    before = jax.config.jax_enable_x64
    fnann.check_grads(net, "cross_entropy", params, x, y)
    assert jax.config.jax_enable_x64 == before
    assert jnp.ones(1).dtype == (jnp.float64 if before else jnp.float32)


@pytest.mark.parametrize("scale", [1.001, 1.1])
def test_a_wrong_derivative_is_caught(scale):
    # tanh with a derivative off by a small factor: both references must flag it.
    wrong = fnann.elementwise("tanh_wrong", jnp.tanh, lambda z: scale / jnp.cosh(z) ** 2)
    net = fnann.MLP([4, 5, 3], hidden=wrong)
    params, x, y = problem(net, "cross_entropy", 6, 1)
    report = fnann.check_grads(net, "cross_entropy", params, x, y)
    assert not report.passed
    layer1 = [r for r in report.rows if r.layer == 1]
    assert all(not r.passed for r in layer1)
    assert all(r.autodiff_rel > 1e-4 and r.fd_rel > 1e-4 for r in layer1)
    assert all(r.passed for r in report.rows if r.layer == 2)
    assert "FAILED" in str(report)


def test_all_entries_by_finite_differences():
    net = fnann.MLP([3, 2, 2], hidden="sigmoid", output="sigmoid")
    params, x, y = problem(net, "binary_cross_entropy", 4, 2)
    report = fnann.check_grads(net, "binary_cross_entropy", params, x, y, n_fd=None)
    assert [r.n_fd for r in report.rows] == [6, 2, 4, 2] and report.passed


def test_activations_declare_their_kinks():
    assert fnann.get_activation("relu").kinks == (0.0,)
    for name in ("tanh", "sigmoid", "softmax", "identity", "gelu"):
        assert fnann.get_activation(name).kinks == (), name
    assert fnann.elementwise("hinge", jnp.abs, jnp.sign, kinks=[0]).kinks == (0.0,)


def test_finite_differences_across_a_relu_kink_are_left_out_not_failed():
    # Zero biases and narrow layers: some example's whole layer is dead, so Z^(l+1) = b = 0
    # sits exactly on the kink and b's central differences measure (0 + 1) / 2 slopes.
    net = fnann.MLP([3, 5, 5, 5, 5, 5, 2], hidden="relu", output="identity")
    k_init, k_x, k_y = jax.random.split(jax.random.key(0), 3)
    params = fnann.init(k_init, net)
    x, y = jax.random.normal(k_x, (32, 3)), jax.random.normal(k_y, (32, 2))
    report = fnann.check_grads(net, "mse", params, x, y)
    assert report.passed and report.n_kink > 0, str(report)
    assert report.max_autodiff_rel < 1e-12
    assert all(r.n_fd + r.n_kink == min(32, int(np.prod(r.shape))) for r in report.rows)
    assert f"{report.n_kink} left out" in report.summary()


def test_a_wrong_relu_slope_is_still_caught_beside_kinks():
    wrong = fnann.elementwise("relu_wrong", lambda z: jnp.where(z > 0, z, 0.0),
                              lambda z: jnp.where(z > 0, 1.001, 0.0), kinks=(0.0,))
    net = fnann.MLP([3, 5, 5, 2], hidden=wrong, output="identity")
    params, x, y = problem(net, "mse", 16, 3)
    report = fnann.check_grads(net, "mse", params, x, y)
    assert not report.passed
    assert all(r.fd_rel > 1e-4 for r in report.rows[:2] if r.n_fd)


def test_a_kink_the_activation_does_not_declare_is_not_forgiven():
    # The same ReLU without its kinks: the crossing differences count, and fail.
    blind = fnann.get_activation("relu")._replace(name="relu_blind", kinks=())
    net = fnann.MLP([3, 5, 5, 5, 5, 5, 2], hidden=blind, output="identity")
    k_init, k_x, k_y = jax.random.split(jax.random.key(0), 3)
    params = fnann.init(k_init, net)
    x, y = jax.random.normal(k_x, (32, 3)), jax.random.normal(k_y, (32, 2))
    report = fnann.check_grads(net, "mse", params, x, y)
    assert report.n_kink == 0 and not report.passed
