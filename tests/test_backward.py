"""The hand-derived backward pass against jax.grad of an independent reference and
against central finite differences (via check_grads), on random architectures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnann
from strategies import architectures, max_rel_error, problem, seeds

HIGHEST = jax.lax.Precision.HIGHEST

REF_ACT = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu,
           "identity": lambda z: z, "softmax": jax.nn.softmax}


def reference_loss(net, loss, params, x, y):
    """The network and loss written independently with jax.nn, for jax.grad to differentiate."""
    a = x
    for l, p in enumerate(params):
        z = jnp.matmul(a, p.W.T, precision=HIGHEST) + p.b
        a = REF_ACT[net.activations[l].name](z)
    if loss == "cross_entropy":
        return -jnp.mean(jnp.sum(jax.nn.one_hot(y, net.n_out) * jax.nn.log_softmax(z), axis=-1))
    if loss == "binary_cross_entropy":
        return -jnp.mean(y * jax.nn.log_sigmoid(z) + (1 - y) * jax.nn.log_sigmoid(-z))
    return jnp.mean((a - y.reshape(a.shape)) ** 2)


def manual_vs_reference(net, loss, params, x, y, variant):
    manual = variant(fnann.loss_and_grad(net, loss, "manual", precision=HIGHEST))
    value, grads = manual(params, x, y)
    ref_value, ref_grads = jax.jit(jax.value_and_grad(lambda p: reference_loss(net, loss, p, x, y)))(params)
    chex_structure_equal(grads, params)
    return float(value), float(ref_value), max_rel_error(grads, ref_grads)


def chex_structure_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert u.shape == v.shape and u.dtype == v.dtype


@settings(max_examples=8)  # each new shape compiles; backward_trace's test covers more architectures
@given(arch=architectures(), batch=st.integers(1, 17), seed=seeds)
def test_manual_equals_autodiff_float32(arch, batch, seed):
    net, loss = arch
    params, x, y = problem(net, loss, batch, seed)
    value, ref_value, err = manual_vs_reference(net, loss, params, x, y, jax.jit)
    assert err <= 1e-4
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)


@settings(max_examples=6)
@given(arch=architectures(), batch=st.integers(1, 17), seed=seeds)
def test_manual_equals_autodiff_and_finite_differences_float64(arch, batch, seed):
    net, loss = arch
    with jax.enable_x64(True):
        params, x, y = problem(net, loss, batch, seed, jnp.float64)
        value, ref_value, err = manual_vs_reference(net, loss, params, x, y, jax.jit)
        assert err <= 1e-10
        np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    report = fnann.check_grads(net, loss, params, x, y, n_fd=16, seed=seed)
    assert report.passed, str(report)


@pytest.mark.parametrize("hidden,head", [("sigmoid", ("softmax", "cross_entropy")),
                                         ("relu", ("identity", "mse"))])
def test_manual_equals_autodiff_eager(hidden, head):
    net = fnann.MLP([5, 6, 4, 3], hidden=hidden, output=head[0])
    params, x, y = problem(net, head[1], 7, 0)
    _, _, err = manual_vs_reference(net, head[1], params, x, y, lambda f: f)
    assert err <= 1e-4


@pytest.mark.parametrize("output,loss", [("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy")])
def test_unfused_textbook_chain_equals_fused(output, loss):
    net = fnann.MLP([4, 5, 3], hidden="tanh", output=output)
    with jax.enable_x64(True):
        params, x, y = problem(net, loss, 6, 1, jnp.float64)
        _, trace = fnann.forward_trace(net, params, x)
        fused = fnann.backward(net, params, trace, y, loss)
        chain = fnann.backward(net, params, trace, y, loss, fused=False)
        assert max_rel_error(chain, fused) <= 1e-12


@pytest.mark.usefixtures("exact_matmuls")  # float32 against a reference at 1e-5: full products
def test_autodiff_method_equals_manual():
    net = fnann.MLP([3, 8, 8, 4], hidden="relu")
    params, x, y = problem(net, "cross_entropy", 9, 3)
    v1, g1 = jax.jit(fnann.loss_and_grad(net, "cross_entropy", "manual"))(params, x, y)
    v2, g2 = jax.jit(fnann.loss_and_grad(net, "cross_entropy", "autodiff"))(params, x, y)
    assert max_rel_error(g1, g2) <= 1e-5
    np.testing.assert_allclose(v1, v2, rtol=1e-6)


def test_relu_with_zero_biases_and_dead_units_matches_autodiff():
    # z == 0 exactly: zero input rows and zero biases put every unit on the kink.
    net = fnann.MLP([3, 4, 2], hidden="relu", output="softmax")
    params = fnann.init(jax.random.key(0), net)
    x = jnp.zeros((2, 3))
    y = jnp.array([0, 1])
    _, _, err = manual_vs_reference(net, "cross_entropy", params, x, y, jax.jit)
    assert err <= 1e-6


def test_vmap_over_a_stack_of_parameter_sets():
    net = fnann.MLP([4, 6, 3], hidden="tanh")
    keys = jax.random.split(jax.random.key(0), 5)
    stack = jax.vmap(lambda k: fnann.init(k, net))(keys)
    x = jax.random.normal(jax.random.key(1), (8, 4))
    y = jnp.arange(8) % 3
    f = jax.jit(fnann.loss_and_grad(net, "cross_entropy", precision=HIGHEST))  # not TF32 on GPU
    values, grads = jax.jit(jax.vmap(f, in_axes=(0, None, None)))(stack, x, y)
    for i in range(5):
        p_i = jax.tree.map(lambda a: a[i], stack)
        v_i, g_i = f(p_i, x, y)
        np.testing.assert_allclose(values[i], v_i, rtol=1e-6)
        assert max_rel_error(jax.tree.map(lambda a: a[i], grads), g_i) <= 1e-6


@pytest.mark.usefixtures("exact_matmuls")  # float32 against a reference at 1e-5: full products
def test_vmap_over_examples_gives_per_example_gradients_whose_mean_is_the_batch_gradient():
    net = fnann.MLP([4, 5, 3], hidden="sigmoid")
    params, x, y = problem(net, "cross_entropy", 6, 2)
    f = fnann.loss_and_grad(net, "cross_entropy")
    # one program, not one eager program per operation
    per_example = jax.jit(jax.vmap(lambda xi, yi: f(params, xi[None], yi[None])[1]))(x, y)
    mean = jax.tree.map(lambda a: a.mean(axis=0), per_example)
    assert max_rel_error(mean, f(params, x, y)[1]) <= 1e-5


@pytest.mark.usefixtures("exact_matmuls")  # float32 against a reference at 1e-5: full products
def test_backward_under_jit_with_trace_crossing_the_boundary():
    net = fnann.MLP([3, 4, 2], hidden="relu", output="identity")
    params, x, y = problem(net, "mse", 5, 4)
    y_hat, trace = jax.jit(fnann.forward_trace, static_argnums=0)(net, params, x)
    grads = jax.jit(fnann.backward, static_argnums=(0, 4))(net, params, trace, y, fnann.mse)
    ref = jax.grad(lambda p: reference_loss(net, "mse", p, x, y))(params)
    assert max_rel_error(grads, ref) <= 1e-5


@given(seed=seeds, shape=st.sampled_from([(1, 1, 1), (5, 3, 4), (8, 7, 2)]))
def test_dense_backward_alone_is_the_vjp_of_dense_forward(seed, shape):
    batch, n_in, n_out = shape
    with jax.enable_x64(True):
        k1, k2, k3, k4 = jax.random.split(jax.random.key(seed), 4)
        layer = fnann.Dense(jax.random.normal(k1, (n_out, n_in), jnp.float64),
                            jax.random.normal(k2, (n_out,), jnp.float64))
        a_prev = jax.random.normal(k3, (batch, n_in), jnp.float64)
        delta = jax.random.normal(k4, (batch, n_out), jnp.float64)
        grads, da_prev = fnann.dense_backward(layer, a_prev, delta)
        _, vjp = jax.vjp(fnann.dense_forward, layer, a_prev)
        ref_grads, ref_da = vjp(delta)
        assert max_rel_error(grads, ref_grads) <= 1e-13
        np.testing.assert_allclose(da_prev, ref_da, rtol=1e-13, atol=1e-15)
