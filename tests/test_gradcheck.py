"""check_grads: it passes correct gradients, catches wrong ones, and leaves x64 as it was."""

import jax
import jax.numpy as jnp
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
