"""The forward pass against a plain numpy forward; shapes, init statistics, dtypes, MLP spec."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnann
from strategies import architectures, problem, seeds

NP_ACT = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "identity": lambda z: z,
    "softmax": lambda z: (lambda e: e / e.sum(-1, keepdims=True))(np.exp(z - z.max(-1, keepdims=True))),
}


def numpy_forward(net, params, x):
    a = np.asarray(x, np.float64)
    Z, A = [], [a]
    for l, p in enumerate(params):
        z = a @ np.asarray(p.W, np.float64).T + np.asarray(p.b, np.float64)  # Z = W A + b, rows
        a = NP_ACT[net.activations[l].name](z)
        Z.append(z)
        A.append(a)
    return a, Z, A


@given(arch=architectures(), batch=st.integers(1, 17), seed=seeds)
def test_forward_trace_matches_numpy(arch, batch, seed):
    net, loss = arch
    with jax.enable_x64(True):
        params, x, _ = problem(net, loss, batch, seed, jnp.float64)
        y_hat, trace = jax.jit(fnann.forward_trace, static_argnums=0)(net, params, x)
    want, Z, A = numpy_forward(net, params, x)
    np.testing.assert_allclose(y_hat, want, rtol=1e-12, atol=1e-14)
    assert len(trace.Z) == net.n_layers and len(trace.A) == net.n_layers + 1
    for l in range(net.n_layers):
        np.testing.assert_allclose(trace.Z[l], Z[l], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(trace.A[l + 1], A[l + 1], rtol=1e-12, atol=1e-14)
        assert trace.Z[l].shape == (batch, net.sizes[l + 1])


@pytest.mark.usefixtures("exact_matmuls")  # float32 against a reference at 1e-5: full products
def test_forward_float32_matches_numpy_and_keeps_dtype():
    net = fnann.MLP([6, 9, 4], hidden="sigmoid")
    params, x, _ = problem(net, "cross_entropy", 5, 0)
    y_hat = fnann.forward(net, params, x)
    assert y_hat.dtype == jnp.float32 and y_hat.shape == (5, 4)
    np.testing.assert_allclose(y_hat, numpy_forward(net, params, x)[0], rtol=1e-5, atol=1e-6)


def test_batch_independence():
    net = fnann.MLP([3, 7, 5, 2], hidden="relu", output="softmax")
    params, x, _ = problem(net, "cross_entropy", 6, 1)
    full = jax.jit(fnann.forward, static_argnums=0)(net, params, x)
    for i in range(6):
        np.testing.assert_allclose(full[i], fnann.forward(net, params, x[i:i + 1])[0], rtol=1e-5, atol=1e-7)


def test_float64_end_to_end():
    net = fnann.MLP([3, 4, 2])
    with jax.enable_x64(True):
        params = fnann.init(jax.random.key(0), net, jnp.float64)
        assert all(p.W.dtype == jnp.float64 for p in params)
        y_hat = fnann.forward(net, params, jnp.ones((2, 3), jnp.float64))
        _, grads = fnann.loss_and_grad(net, "cross_entropy")(params, jnp.ones((2, 3)), jnp.array([0, 1]))
        assert y_hat.dtype == jnp.float64 and grads[0].W.dtype == jnp.float64


@pytest.mark.parametrize("hidden,expect", [("relu", "he"), ("tanh", "glorot"), ("sigmoid", "glorot")])
def test_init_statistics(hidden, expect):
    net = fnann.MLP([400, 300, 200], hidden=hidden, output="softmax")
    params = fnann.init(jax.random.key(0), net)
    W1, W2 = (np.asarray(p.W, np.float64) for p in params)
    assert W1.shape == (300, 400) and W2.shape == (200, 300)
    assert all(np.all(np.asarray(p.b) == 0) for p in params)
    var1 = 2 / 400 if expect == "he" else 2 / (400 + 300)
    var2 = 2 / (300 + 200)  # the softmax output layer is always Glorot
    # 120k and 60k draws: the sample variance is within ~1% of the truth.
    assert W1.var() == pytest.approx(var1, rel=0.03) and abs(W1.mean()) < 0.01 * np.sqrt(var1) * 10
    assert W2.var() == pytest.approx(var2, rel=0.03)


@settings(max_examples=6)
@given(arch=architectures(), seed=seeds)
def test_init_is_one_normal_draw_cut_into_the_layers_in_order(arch, seed):
    """The transcription: N = normal(key, (sum n_out n_in,)); W^(l) = sqrt(var_l) N[l-th slice]."""
    net, _ = arch
    key = jax.random.key(seed)
    params = fnann.init(key, net)
    sizes = list(zip(net.sizes[1:], net.sizes[:-1]))
    N = np.asarray(jax.random.normal(key, (sum(o * i for o, i in sizes),)))
    start = 0
    for p, (n_out, n_in), act in zip(params, sizes, net.activations):
        var = 2.0 / n_in if act.name == "relu" else 2.0 / (n_in + n_out)
        want = np.float32(np.sqrt(var)) * N[start:start + n_out * n_in].reshape(n_out, n_in)
        np.testing.assert_allclose(np.asarray(p.W), want, rtol=1e-6, atol=0)
        np.testing.assert_array_equal(np.asarray(p.b), np.zeros(n_out, np.float32))
        start += n_out * n_in


def test_init_is_deterministic_and_key_dependent():
    net = fnann.MLP([3, 4, 2])
    a, b = fnann.init(jax.random.key(1), net), fnann.init(jax.random.key(1), net)
    c = fnann.init(jax.random.key(2), net)
    np.testing.assert_array_equal(a[0].W, b[0].W)
    assert not np.array_equal(a[0].W, c[0].W)


def test_mlp_spec_is_hashable_and_static():
    a = fnann.MLP([4, 8, 3], hidden="relu", output="softmax")
    b = fnann.MLP((4, 8, 3), hidden=fnann.relu, output="softmax")
    assert a == b and hash(a) == hash(b)
    assert a != fnann.MLP([4, 8, 3], hidden="tanh")
    assert {a: 1}[b] == 1
    with pytest.raises(Exception):
        a.sizes = (1, 2)
    traces = []

    @jax.jit
    def f(params, x):
        traces.append(1)
        return fnann.forward(a, params, x)

    params = fnann.init(jax.random.key(0), a)
    f(params, jnp.ones((2, 4)))
    f(params, jnp.ones((2, 4)))
    assert len(traces) == 1
    g = jax.jit(fnann.forward, static_argnums=0)
    np.testing.assert_allclose(g(a, params, jnp.ones((2, 4))), g(b, params, jnp.ones((2, 4))))


def test_custom_activation_uses_its_own_derivative():
    # A deliberately "wrong" derivative must be what backward uses: the net trusts the bundle.
    fake = fnann.Activation("fake", jnp.tanh, lambda z, da: 2.0 * da)
    net = fnann.MLP([2, 3, 1], hidden=fake, output="identity")
    params, x, y = problem(net, "mse", 4, 0)
    _, trace = fnann.forward_trace(net, params, x)
    g = fnann.backward(net, params, trace, y, "mse")
    delta2 = 2 * (trace.A[2] - y) / 4
    np.testing.assert_allclose(g[0].W, (2.0 * (delta2 @ params[1].W)).T @ x, rtol=1e-5)
