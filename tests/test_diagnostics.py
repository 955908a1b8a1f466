"""fnann.diagnostics against a numpy transcription of the forward pass, the delta recursion and
each statistic, on concrete float64 arrays; jit, vmap, the fit hook and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from fnann.diagnostics import Diagnostics, Recorder, diagnose, format_diagnostics

NP_ACT = {  # (sigma, sigma')
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.where(z > 0, z, 0.0), lambda z: (z > 0).astype(float)),
}
jit_diagnose = jax.jit(diagnose, static_argnums=(0, 4, 5), static_argnames="saturation")


def numpy_diagnostics(params, x, labels, hidden, update, saturation):
    """Softmax + cross-entropy network in numpy: Z, A, the deltas, dW, then every statistic."""
    sigma, deriv = NP_ACT[hidden]
    A, Z = [x], []
    for l, (W, b) in enumerate(params):
        z = A[-1] @ W.T + b
        if l == len(params) - 1:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            a = e / e.sum(axis=1, keepdims=True)
        else:
            a = sigma(z)
        Z.append(z)
        A.append(a)
    m = len(x)
    delta = (A[-1] - np.eye(A[-1].shape[1])[labels]) / m  # delta^(L) = (A^(L) - y) / m
    deltas, dWs = [None] * len(params), [None] * len(params)
    for l in reversed(range(len(params))):
        deltas[l], dWs[l] = delta, delta.T @ A[l]
        if l > 0:
            delta = (delta @ params[l][0]) * deriv(Z[l - 1])
    fro = np.linalg.norm
    L = len(params)
    return dict(
        W_norm=[fro(W) for W, _ in params], dW_norm=[fro(g) for g in dWs],
        delta_norm=[fro(d) for d in deltas],
        update_ratio=[fro(update(g)) / fro(W) for g, (W, _) in zip(dWs, params)],
        z_mean=[z.mean() for z in Z], z_std=[z.std() for z in Z],
        a_mean=[a.mean() for a in A[1:]], a_std=[a.std() for a in A[1:]],
        dead_fraction=[np.mean(np.all(A[l + 1] == 0, axis=0)) if hidden == "relu" and l < L - 1
                       else np.nan for l in range(L)],
        saturated_fraction=[np.mean(np.abs(deriv(Z[l])) < saturation) if hidden != "relu" and l < L - 1
                            else np.nan for l in range(L)],
    )


def numpy_params(sizes, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(scale * rng.normal(0, n_in ** -0.5, (n_out, n_in)), rng.normal(0, 0.3, n_out))
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def dense(params, dtype=jnp.float32):
    return tuple(fnann.Dense(jnp.asarray(W, dtype), jnp.asarray(b, dtype)) for W, b in params)


CASES = {  # hidden, weight scale, optimizer, numpy transcription of its first update of g
    "relu-sgd": ("relu", 1.0, lambda: fnann.sgd(0.1), lambda g: -0.1 * g),
    "sigmoid-adam": ("sigmoid", 6.0, lambda: fnann.adam(0.01), lambda g: -0.01 * g / (np.abs(g) + 1e-8)),
    "tanh-rmsprop": ("tanh", 3.0, lambda: fnann.rmsprop(0.01),  # E = (1 - 0.9) g^2
                     lambda g: -0.01 * g / np.sqrt(0.1 * g ** 2 + 1e-8)),
}


@pytest.mark.parametrize("case", CASES)
def test_every_statistic_matches_numpy(case):
    hidden, scale, make_opt, update = CASES[case]
    sizes = (4, 7, 6, 3)
    params = numpy_params(sizes, 0, scale)
    if hidden == "relu":  # two units of layer 1 that no example switches on: dead
        params[0][0][:2] = 0.0
        params[0][1][:2] = -1.0
    rng = np.random.default_rng(1)
    x, labels = rng.normal(size=(9, 4)), rng.integers(0, 3, 9)
    ref = numpy_diagnostics(params, x, labels, hidden, update, 0.05)
    net = fnann.MLP(sizes, hidden=hidden, output="softmax")
    with jax.enable_x64(True):
        p = tuple(fnann.Dense(jnp.asarray(W), jnp.asarray(b)) for W, b in params)
        d = jax.device_get(jit_diagnose(net, p, jnp.asarray(x), jnp.asarray(labels), "cross_entropy",
                                        make_opt(), saturation=0.05))
    assert isinstance(d, Diagnostics)
    for name, want in ref.items():
        got = np.asarray(getattr(d, name))
        assert got.shape == (3,) and got.dtype == np.float64, name
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14, err_msg=name)
    if hidden == "relu":
        assert d.dead_fraction[0] >= 2 / 7
    else:  # the large weights saturate some units, not all
        assert 0 < d.saturated_fraction[0] < 1


@pytest.mark.usefixtures("exact_matmuls")  # float32 against a reference at 1e-5: full products
def test_vmap_over_parameter_sets_matches_numpy_and_no_optimizer_gives_nan_ratios():
    net = fnann.MLP([3, 5, 2], hidden="tanh")
    sets = [numpy_params(net.sizes, seed) for seed in range(3)]
    stack = jax.tree.map(lambda *a: jnp.stack(a), *[dense(p) for p in sets])
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(6, 3)).astype(np.float32), np.arange(6) % 2
    many = jax.jit(jax.vmap(lambda p: diagnose(net, p, x, labels, "cross_entropy")))(stack)
    assert many.dW_norm.shape == (3, 2)
    for i, params in enumerate(sets):
        ref = numpy_diagnostics([(W.astype(np.float32), b.astype(np.float32)) for W, b in params],
                                x.astype(np.float64), labels, "tanh", lambda g: g * np.nan, 1e-2)
        for name, want in ref.items():
            np.testing.assert_allclose(getattr(many, name)[i], want, rtol=2e-5, atol=1e-7, err_msg=name)
    assert np.all(np.isnan(many.update_ratio)) and np.all(np.isnan(many.dead_fraction))


def test_low_precision_params_give_float32_statistics():
    net = fnann.MLP([3, 4, 2], hidden="relu")
    params = dense(numpy_params(net.sizes, 0), jnp.bfloat16)
    d = jit_diagnose(net, params, jnp.ones((2, 3)), jnp.array([0, 1]), "cross_entropy", fnann.adam())
    assert all(f.dtype == jnp.float32 for f in d)
    assert np.all(np.isfinite(d.dW_norm)) and np.all(np.isfinite(d.update_ratio))


def test_recorder_in_fit_records_every_k_epochs_and_leaves_training_unchanged():
    net, opt = fnann.MLP([2, 6, 2], hidden="sigmoid"), fnann.momentum(0.1)
    x = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    params = dense(numpy_params(net.sizes, 1))
    rec = Recorder(net, "cross_entropy", x[:8], y[:8], opt, every=2)
    rec.record(0, params)  # before training: the optimizer's first step
    kwargs = dict(key=jax.random.key(2), epochs=5, batch_size=4, return_state=True)
    plain, _, _ = fnann.fit(net, "cross_entropy", opt, params, x, y, **kwargs)
    final, _, state = fnann.fit(net, "cross_entropy", opt, params, x, y, params_callback=rec, **kwargs)
    for u, v in zip(jax.tree.leaves(plain), jax.tree.leaves(final)):
        np.testing.assert_array_equal(u, v)
    assert rec.epochs == [0, 2, 4]
    stacked = rec.stacked()
    assert stacked.W_norm.shape == (3, 2) and isinstance(stacked.W_norm, np.ndarray)
    # after epoch 4 of 5 the params are not the final ones; re-record at the end and compare
    last = rec.record(5, final, state.opt_state)
    direct = jit_diagnose(net, final, x[:8], y[:8], "cross_entropy", opt, state.opt_state)
    for f, g in zip(last, direct):
        np.testing.assert_allclose(f, g, rtol=1e-6)


def test_format_diagnostics_table():
    net = fnann.MLP([4, 7, 6, 3], hidden="relu")
    d = Diagnostics(*(np.array([1.0, 2.0, 3.0]) * (k + 1) for k in range(8)), np.array([0.25, 0.0, np.nan]),
                    np.full(3, np.nan))
    lines = format_diagnostics(d, net).splitlines()
    assert len(lines) == 2 + 3 and lines[0].split()[:3] == ["layer", "act", "shape"]
    row = lines[2].split()
    assert row[:3] == ["1", "relu", "7x4"] and [float(v) for v in row[3:11]] == [1.0 * (k + 1) for k in range(8)]
    assert row[-2:] == ["0.250", "-"] and lines[4].split()[-2:] == ["-", "-"]  # softmax: neither applies
    with pytest.raises(ValueError, match="one batch"):
        format_diagnostics(jax.tree.map(lambda f: f[None], d), net)
    with pytest.raises(ValueError, match="diag has 3 layers but net has 2"):
        format_diagnostics(d, fnann.MLP([2, 3, 2]))


def test_bad_input_is_named():
    net = fnann.MLP([3, 4, 2], hidden="relu")
    params = dense(numpy_params(net.sizes, 0))
    x, y = jnp.ones((4, 3)), jnp.array([0, 1, 1, 0])
    with pytest.raises(TypeError, match="opt must be"):
        diagnose(net, params, x, y, "cross_entropy", opt="adam")
    with pytest.raises(ValueError, match="saturation must be > 0"):
        diagnose(net, params, x, y, "cross_entropy", saturation=0.0)
    with pytest.raises(ValueError, match="x has 2 features"):
        diagnose(net, params, x[:, :2], y, "cross_entropy")
    with pytest.raises(ValueError, match="no rows"):
        diagnose(net, params, x[:0], y[:0], "cross_entropy")
    with pytest.raises(ValueError, match="x has 4 rows but y has 3"):
        diagnose(net, params, x, y[:3], "cross_entropy")
    with pytest.raises(ValueError, match="grads"):  # an optimizer state of another network
        other = dense(numpy_params((3, 5, 2), 0))
        jit_diagnose(net, params, x, y, "cross_entropy", fnann.adam(), fnann.adam().init(other))
    with pytest.raises(ValueError, match="every must be >= 1"):
        Recorder(net, "cross_entropy", x, y, every=0)
    with pytest.raises(ValueError, match="NaN"):
        Recorder(net, "cross_entropy", x.at[1, 1].set(jnp.nan), y)
    with pytest.raises(ValueError, match="label"):
        Recorder(net, "cross_entropy", x, jnp.array([0, 1, 2, 0]))
