"""backward_trace: every layer's delta^(l) is dL/dZ^(l), checked against jax.grad in float64.

The reference runs an independent forward pass (jax.nn, test_backward.reference_loss) with a
shift s^(l) added to each Z^(l); dL/ds^(l) at s = 0 is dL/dZ^(l) (a VJP through the forward
pass with respect to Z).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnann
from strategies import architectures, max_rel_error, seeds
from test_backward import reference_loss

HIGHEST = jax.lax.Precision.HIGHEST


def numpy_problem(net, loss, batch, seed, dtype=np.float64):
    """Random float64 params (non-zero biases), x and y drawn by numpy: no eager jax op, so
    a new shape costs one compile (of the jitted check) rather than one per operation."""
    rng = np.random.default_rng(seed)
    params = tuple(fnann.Dense(jnp.asarray(rng.normal(0, n_in ** -0.5, (n_out, n_in)), dtype),
                               jnp.asarray(rng.normal(0, 0.1, n_out), dtype))
                   for n_in, n_out in zip(net.sizes[:-1], net.sizes[1:]))
    x = jnp.asarray(rng.normal(size=(batch, net.n_in)), dtype)
    if loss == "cross_entropy":
        y = jnp.asarray(rng.integers(0, net.n_out, batch))
    elif loss == "binary_cross_entropy":
        y = jnp.asarray(rng.integers(0, 2, (batch, net.n_out)), dtype)
    else:
        y = jnp.asarray(rng.normal(size=(batch, net.n_out)), dtype)
    return params, x, y


def autodiff_deltas(net, loss, params, x, y):
    """jax.grad of test_backward's independent reference loss with respect to a shift s^(l)
    of every Z^(l) (a bias of shape (batch, n_l) adds s^(l) to Z^(l) row by row)."""
    zeros = tuple(jnp.zeros((x.shape[0], n), x.dtype) for n in net.sizes[1:])
    shifted = lambda s: tuple(fnann.Dense(p.W, p.b + s_l) for p, s_l in zip(params, s))
    return jax.grad(lambda s: reference_loss(net, loss, shifted(s), x, y))(zeros)


def manual_and_reference(net, loss, fused, params, x, y):
    """(grads, deltas) of backward_trace, backward's grads, and the autodiff deltas: one jit."""
    _, trace = fnann.forward_trace(net, params, x, HIGHEST)
    grads, deltas = fnann.backward_trace(net, params, trace, y, loss, HIGHEST, fused=fused)
    plain = fnann.backward(net, params, trace, y, loss, HIGHEST, fused=fused)
    return grads, deltas, plain, autodiff_deltas(net, loss, params, x, y)


@settings(max_examples=8)
@given(arch=architectures(max_depth=5, max_width=9), batch=st.integers(1, 6), seed=seeds,
       fused=st.booleans())
def test_every_delta_is_dL_dZ_by_autodiff_float64(arch, batch, seed, fused):
    net, loss = arch
    with jax.enable_x64(True):
        params, x, y = numpy_problem(net, loss, batch, seed)
        grads, deltas, plain, ref = jax.jit(manual_and_reference, static_argnums=(0, 1, 2))(
            net, loss, fused, params, x, y)
        assert len(deltas) == net.n_layers
        for l, (d, r) in enumerate(zip(deltas, ref), start=1):
            assert d.shape == r.shape == (batch, net.sizes[l]) and d.dtype == jnp.float64
            assert max_rel_error(d, r) <= 1e-10, f"delta^({l})"
        for g, h in zip(jax.tree.leaves(grads), jax.tree.leaves(plain)):
            np.testing.assert_array_equal(g, h)


@pytest.mark.usefixtures("exact_matmuls")  # float32 against a reference at 1e-5: full products
def test_deltas_cross_jit_and_give_the_gradients():
    net = fnann.MLP([3, 5, 4, 2], hidden="sigmoid", output="softmax")
    params, x, y = numpy_problem(net, "cross_entropy", 6, 0, np.float32)
    _, trace = jax.jit(fnann.forward_trace, static_argnums=0)(net, params, x)
    grads, deltas = jax.jit(fnann.backward_trace, static_argnums=(0, 4))(
        net, params, trace, y, fnann.cross_entropy)
    assert isinstance(deltas, tuple) and [d.shape for d in deltas] == [(6, 5), (6, 4), (6, 2)]
    # dL/dW^(l) = delta^(l) (A^(l-1))^T and dL/db^(l) = sum over the batch of delta^(l), in numpy
    for l, (g, d) in enumerate(zip(grads, deltas)):
        a_prev = np.asarray(trace.A[l], np.float64)
        np.testing.assert_allclose(g.W, np.asarray(d, np.float64).T @ a_prev, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(g.b, np.asarray(d).sum(axis=0), rtol=1e-5, atol=1e-7)
    # the fused output delta of softmax + cross-entropy is (A^(L) - y) / m
    y_onehot = np.eye(2)[np.asarray(y)]
    np.testing.assert_allclose(deltas[-1], (np.asarray(trace.A[-1]) - y_onehot) / 6, rtol=1e-5, atol=1e-7)
