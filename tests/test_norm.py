"""Layer and batch normalization of hidden pre-activations, derived by hand: Y = γ ⊙ Ẑ + β,
Ẑ = (Z - μ) / √(σ² + ε), and its backward dZ = (1/σ)(dẐ - mean(dẐ) - Ẑ ⊙ mean(dẐ ⊙ Ẑ)).

The delta recursion through the norm against jax.grad over random networks of the whole
space (depth, widths, per-layer activations, dropout, norm kind per layer, residual, every
head, batches of 1 and 2); δ^(l) = ∂L/∂Z^(l); the forward pass against numpy in training and
at evaluation; check_grads passes and catches a wrong norm backward; the running statistics
against a numpy transcription; a batch of 1 in training is a clear error; float16 and huge
values stay finite; bad options are one clear error naming the argument; no norm is the
textbook net bit for bit; where torch is installed, three training steps and the evaluation
equal its BatchNorm1d's and LayerNorm's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnann
from fnann import norms
from strategies import HEADS, problem, training_pass

KEY = jax.random.key(3)
normalize = jax.jit(norms.normalize, static_argnums=0)  # one program per shape, not one per eager op
norm_backward = jax.jit(norms.norm_backward, static_argnums=0)


def _equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _leafwise_rel(a_tree, b_tree) -> float:
    """max over leaves of max|a - b| / max|b| (each gradient to its own scale)."""
    worst = 0.0
    for a, b in zip(jax.tree.leaves(a_tree), jax.tree.leaves(b_tree)):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        scale = np.max(np.abs(b), initial=0.0)
        worst = max(worst, float(np.max(np.abs(a - b), initial=0.0) / scale) if scale > 0 else
                    float(np.max(np.abs(a - b), initial=0.0)))
    return worst


def numpy_forward(net, params, x, masks=(), stats=None):
    """The forward pass transcribed in numpy: training (batch statistics) or, given the running
    statistics, evaluation."""
    running = dict(zip(net.batch_norm_layers, stats)) if stats is not None else {}
    a = np.asarray(x, np.float64)
    for l, (layer, act, norm) in enumerate(zip(params, net.activations, (*net.norms, None)), 1):
        W = np.asarray(layer.W, np.float64)
        if norm is None:
            s = a @ W.T + np.asarray(layer.b)
        else:
            z = a @ W.T
            if l in running:
                mu, var = np.asarray(running[l].mean), np.asarray(running[l].var)
            else:
                mu = z.mean(axis=norm.axis, keepdims=True)
                var = ((z - mu) ** 2).mean(axis=norm.axis, keepdims=True)
            s = np.asarray(layer.gamma) * (z - mu) / np.sqrt(var + norm.eps) + np.asarray(layer.beta)
        new = np.asarray(act.fn(jnp.asarray(s)), np.float64)
        if masks and l < net.n_layers and masks[l - 1] is not None:
            new = new * np.asarray(masks[l - 1]) / (1 - net.dropout_rates[l - 1])
        a = a + new if l in net.residual else new
    return a


@st.composite
def norm_networks(draw):
    """A net from the whole space: depth, width, per-layer activations, dropout, a norm per
    hidden layer (at least one), residual, every head."""
    depth = draw(st.integers(1, 3))
    width = draw(st.integers(1, 6))
    output, loss = draw(st.sampled_from(HEADS))
    hidden = [draw(st.sampled_from(["relu", "tanh", "sigmoid", "silu", "elu"])) for _ in range(depth)]
    sizes = [draw(st.integers(1, 4)), *([width] * depth), draw(st.integers(2, 3))]
    kinds = [draw(st.sampled_from([None, "layer", "batch"])) for _ in range(depth)]
    kinds[draw(st.integers(0, depth - 1))] = draw(st.sampled_from(["layer", "batch"]))
    rates = [draw(st.sampled_from([0.0, 0.0, 0.3])) for _ in range(depth)]
    residual = draw(st.booleans()) and depth >= 2
    return fnann.MLP(sizes, hidden=hidden, output=output, norm=kinds, dropout=rates, residual=residual), loss


@settings(max_examples=8, deadline=None)
@given(case=norm_networks(), batch=st.sampled_from([1, 2, 3, 5]), seed=st.integers(0, 2**31 - 1))
def test_the_delta_recursion_through_the_norm_equals_autodiff_and_each_delta_is_dL_dZ(case, batch, seed):
    net, loss = case
    if net.has_batch_norm and batch == 1:
        batch = 2  # a batch of 1 is refused in training (its own test)
    key = jax.random.key(seed)
    with jax.enable_x64(True):
        params, x, y = problem(net, loss, batch, seed, jnp.float64)
        y_hat, trace, grads, deltas, _, auto, dZ = training_pass(net, loss)(params, x, y, key)
        assert _leafwise_rel(grads, auto) < 1e-9
        for l, (d, ref) in enumerate(zip(deltas, dZ), 1):  # δ^(l) = ∂L/∂Z^(l), Z before the norm
            assert _leafwise_rel(d, ref) < 1e-9, l
        for l, (n, norm) in enumerate(zip(trace.N, net.norms), 1):
            assert (n is None) == (norm is None), l
        np.testing.assert_allclose(np.asarray(y_hat), numpy_forward(net, params, x, trace.M), rtol=1e-10, atol=1e-12)
        for layer, norm in zip(grads, (*net.norms, None)):
            assert isinstance(layer, fnann.Normed if norm is not None else fnann.Dense)


@settings(max_examples=3, deadline=None)
@given(case=norm_networks(), batch=st.sampled_from([2, 4]), seed=st.integers(0, 2**31 - 1))
def test_check_grads_passes_over_the_whole_space(case, batch, seed):
    net, loss = case
    with jax.enable_x64(True):
        params, x, y = problem(net, loss, batch, seed, jnp.float64)
    report = fnann.check_grads(net, loss, params, x, y, key=jax.random.key(seed), n_fd=6)
    assert report.passed, report


@pytest.mark.parametrize("norm", [fnann.LayerNorm(), fnann.BatchNorm()])
@pytest.mark.parametrize("shape", [(2, 1), (2, 5), (7, 3)])
def test_the_norm_backward_is_the_vjp_of_the_norm(norm, shape):
    with jax.enable_x64(True):
        rng = np.random.default_rng(sum(shape))
        z, dy = (jnp.asarray(rng.standard_normal(shape) * 3 + 1) for _ in range(2))
        gamma, beta = (jnp.asarray(rng.standard_normal(shape[1])) for _ in range(2))
        y, trace = norms.normalize(norm, z, gamma, beta)
        _, vjp = jax.vjp(lambda z, g, b: norms.normalize(norm, z, g, b)[0], z, gamma, beta)
        for mine, ref in zip(norms.norm_backward(norm, trace, gamma, dy), vjp(dy)):
            np.testing.assert_allclose(np.asarray(mine), np.asarray(ref), rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def net_and_problem():
    net = fnann.MLP([3, 5, 5, 2], hidden=["tanh", "relu"], norm=["layer", "batch"], dropout=[0.0, 0.3],
                    residual=True)
    with jax.enable_x64(True):
        params, x, y = problem(net, "cross_entropy", 4, 5, jnp.float64)
    return net, params, x, y


def test_check_grads_passes_in_training_mode_and_catches_a_wrong_norm_backward(net_and_problem, monkeypatch):
    net, params, x, y = net_and_problem
    report = fnann.check_grads(net, "cross_entropy", params, x, y, key=KEY, n_fd=8)
    assert report.passed, report
    assert [(r.layer, r.param) for r in report.rows] == [
        (1, "W"), (1, "gamma"), (1, "beta"), (2, "W"), (2, "gamma"), (2, "beta"), (3, "W"), (3, "b")]
    two = fnann.MLP([3, 4, 2], norm="batch")  # a batch of 2, the smallest batch norm trains on
    with jax.enable_x64(True):
        p2, x2, y2 = problem(two, "mse", 2, 1, jnp.float64)
    assert fnann.check_grads(two, "mse", p2, x2, jnp.asarray(np.ones((2, 2))), n_fd=None).passed

    def without_the_variance_path(norm, trace, gamma, dy):  # drops -Ẑ ⊙ mean(dẐ ⊙ Ẑ)
        dz_hat = gamma * dy
        dz = trace.inv_sigma * (dz_hat - jnp.mean(dz_hat, axis=norm.axis, keepdims=True))
        return dz, jnp.sum(dy * trace.Z_hat, axis=0), jnp.sum(dy, axis=0)

    wrong = fnann.MLP([3, 5, 5, 2], hidden=["tanh", "relu"], norm=["layer", "batch"], dropout=[0.0, 0.35],
                      residual=True)  # not compiled yet
    monkeypatch.setattr(fnann.backprop, "norm_backward", without_the_variance_path)
    assert not fnann.check_grads(wrong, "cross_entropy", params, x, y, key=KEY, n_fd=8).passed


def test_running_statistics_follow_a_numpy_transcription_and_evaluation_uses_them():
    net = fnann.MLP([4, 6, 5, 3], norm="batch")
    params = fnann.init(jax.random.key(0), net)
    opt = fnann.sgd(0.1)
    step = jax.jit(fnann.train_step(net, "cross_entropy", opt))
    rng = np.random.default_rng(0)
    stats, state = fnann.init_stats(net), opt.init(params)
    forward_trace = jax.jit(fnann.forward_trace, static_argnums=0)
    mean = [np.zeros(6), np.zeros(5)]
    var = [np.ones(6), np.ones(5)]
    for i in range(4):
        x = (rng.standard_normal((8, 4)) * 2 + 1).astype(np.float32)
        y = rng.integers(0, 3, 8).astype(np.int32)
        _, trace = forward_trace(net, params, x)  # the batch statistics this step normalizes by
        for k, n in enumerate(trace.N):  # μ_run <- 0.9 μ_run + 0.1 μ_B;  σ²_run <- 0.9 σ²_run + 0.1 n/(n-1) σ²_B
            z = np.asarray(trace.Z[k], np.float64)
            mean[k] = 0.9 * mean[k] + 0.1 * z.mean(axis=0)
            var[k] = 0.9 * var[k] + 0.1 * z.var(axis=0, ddof=1)
            np.testing.assert_allclose(np.asarray(n.mean[0]), z.mean(axis=0), rtol=1e-5, atol=1e-6)
        params, state, _, stats = step(params, state, x, y, None, stats)
        for k in range(2):
            np.testing.assert_allclose(np.asarray(stats[k].mean), mean[k], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(np.asarray(stats[k].var), var[k], rtol=1e-5, atol=1e-6)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    forward = jax.jit(fnann.forward, static_argnums=0)
    evaluated = np.asarray(forward(net, params, x, stats=stats))
    np.testing.assert_allclose(evaluated, numpy_forward(net, params, x, stats=stats), rtol=1e-5, atol=1e-6)
    trained = np.asarray(forward_trace(net, params, x)[0])  # the training pass: this batch's statistics
    np.testing.assert_allclose(trained, numpy_forward(net, params, x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(evaluated, trained, atol=1e-3)
    row = np.asarray(forward(net, params, x[:1], stats=stats))  # evaluation of one row is fine
    np.testing.assert_allclose(row, evaluated[:1], rtol=1e-6, atol=1e-7)


def test_a_batch_of_one_in_training_is_a_clear_error_not_nan():
    net = fnann.MLP([3, 4, 2], norm="batch")
    params, opt = fnann.init(jax.random.key(0), net), fnann.sgd(0.1)
    x, y = np.ones((1, 3), np.float32), np.array([1], np.int32)
    step = fnann.train_step(net, "cross_entropy", opt)
    for call in (lambda: step(params, opt.init(params), x, y, None, fnann.init_stats(net)),
                 lambda: fnann.forward_trace(net, params, x),
                 lambda: fnann.check_grads(net, "cross_entropy", params, x, y)):
        with pytest.raises(ValueError, match="2 rows or more"):
            call()
    with pytest.raises(ValueError, match="running statistics"):
        fnann.forward(net, params, x)  # evaluation needs the stats
    with pytest.raises(ValueError, match="stats"):
        step(params, opt.init(params), np.ones((2, 3), np.float32), np.array([0, 1]))
    layer = fnann.MLP([3, 1, 2], norm="layer")  # layer norm over one unit: Ẑ = 0, finite
    assert np.all(np.isfinite(np.asarray(fnann.forward(layer, fnann.init(jax.random.key(0), layer), x))))


def test_the_statistics_are_float32_under_float16_and_huge_or_constant_values_stay_finite():
    for norm in (fnann.LayerNorm(), fnann.BatchNorm()):
        z = jnp.asarray(np.array([[300.0, -200.0, 250.0], [-280.0, 310.0, 0.0]]), jnp.float16)  # z² > 65504
        y, trace = normalize(norm, z, jnp.ones(3, jnp.float16), jnp.zeros(3, jnp.float16))
        ref, _ = normalize(norm, z.astype(jnp.float32), jnp.ones(3), jnp.zeros(3))
        assert y.dtype == jnp.float16 and trace.var.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(ref), rtol=2e-3, atol=2e-3)
        for z in (jnp.full((3, 4), 1e4), jnp.asarray(np.array([[1e30, -1e30], [3e30, 0.0]]), jnp.float32)):
            y, trace = normalize(norm, z, jnp.ones(z.shape[1]), jnp.zeros(z.shape[1]))
            dz = norm_backward(norm, trace, jnp.ones(z.shape[1]), jnp.ones_like(z))[0]
            assert np.all(np.isfinite(np.asarray(y))) and np.all(np.isfinite(np.asarray(dz)))
    net = fnann.MLP([3, 8, 2], norm="batch")  # bfloat16 compute: finite loss and stats, float32 state
    params, opt = fnann.init(jax.random.key(0), net), fnann.adam(1e-2)
    x = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    step = jax.jit(fnann.train_step(net, "cross_entropy", opt, compute_dtype="bfloat16"))
    new, _, value, stats = step(params, opt.init(params), x, y, None, fnann.init_stats(net))
    assert np.isfinite(float(value)) and stats[0].mean.dtype == jnp.float32 and new[0].gamma.dtype == jnp.float32
    scaled = fnann.loss_scaling(fnann.adam(1e-2), initial_scale=2.0**60)  # float16: the first step overflows
    step = jax.jit(fnann.train_step(net, "cross_entropy", scaled, compute_dtype="float16"))
    start = fnann.init_stats(net)
    kept, state, _, after = step(params, scaled.init(params), x, y, None, start)
    assert float(state.scale) == 2.0**59 and _equal(kept, params) and _equal(after, start)  # skipped: stats kept too


def test_no_norm_is_the_textbook_net_bit_for_bit():
    plain = fnann.MLP([4, 8, 8, 3])
    for none in (None, "none", [None, None], ("none", None)):
        net = fnann.MLP([4, 8, 8, 3], norm=none)
        assert net == plain and hash(net) == hash(plain) and repr(net) == repr(plain) and not net.has_norm
    assert fnann.init_stats(plain) == ()
    normed = fnann.MLP([4, 8, 8, 3], norm=["batch", None])
    p_plain, p_normed = fnann.init(KEY, plain), fnann.init(KEY, normed)
    assert all(np.array_equal(a.W, b.W) for a, b in zip(p_plain, p_normed))  # the same W drawn
    assert isinstance(p_normed[0], fnann.Normed) and np.all(np.asarray(p_normed[0].gamma) == 1)
    assert isinstance(p_normed[1], fnann.Dense) and normed.batch_norm_layers == (1,)
    assert [s.mean.shape for s in fnann.init_stats(normed)] == [(8,)]
    assert fnann.MLP([4, 8, 8, 3], norm=["layer", "layer"]).norm == fnann.LayerNorm()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"norm": "group"}, ValueError, "norm = 'group'"),
    ({"norm": 3}, TypeError, "norm must be"),
    ({"norm": ["layer"]}, ValueError, "1 normalizations given for 2 hidden layers"),
    ({"norm": ["layer", "bogus"]}, ValueError, r"norm\[1\]"),
    ({"norm": fnann.LayerNorm}, TypeError, "norm must be"),
])
def test_a_bad_norm_is_one_clear_error_naming_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        fnann.MLP([4, 8, 8, 3], **kwargs)


def test_bad_norm_settings_and_bad_params_are_clear_errors():
    for make, match in ((lambda: fnann.BatchNorm(momentum=1.5), "momentum"), (lambda: fnann.BatchNorm(eps=0), "eps"),
                        (lambda: fnann.LayerNorm(eps=float("nan")), "eps"), (lambda: fnann.BatchNorm(momentum="x"), "momentum")):
        with pytest.raises((ValueError, TypeError), match=match):
            make()
    with pytest.raises(ValueError, match="no hidden layer"):
        fnann.MLP([4, 3], norm="batch")
    net = fnann.MLP([3, 4, 2], norm="layer")
    plain = fnann.init(KEY, fnann.MLP([3, 4, 2]))
    with pytest.raises(TypeError, match=r"params\[0\] must be a Normed\(W, gamma, beta\)"):
        fnann.forward(net, plain, np.ones((2, 3), np.float32))
    batch = fnann.MLP([3, 4, 2], norm="batch")
    params = fnann.init(KEY, batch)
    stats = fnann.init_stats(batch)
    for bad, match in ((stats + stats, "one RunningStats"), ((fnann.RunningStats(jnp.zeros(3), jnp.ones(3)),), r"\(4,\)"),
                       ((fnann.RunningStats(jnp.zeros(4), -jnp.ones(4)),), "negative"),
                       ((fnann.RunningStats(jnp.full(4, jnp.nan), jnp.ones(4)),), "NaN")):
        with pytest.raises(ValueError, match=match):
            fnann.forward(batch, params, np.ones((2, 3), np.float32), stats=bad)



@pytest.mark.parametrize("kind", ["batch", "layer"])
def test_training_and_evaluation_equal_pytorchs_norm_layers(kind):
    """Three SGD steps of a normalized tanh net in float64 against torch's BatchNorm1d or
    LayerNorm (an independent implementation): the params, batch norm's running statistics
    (torch keeps the unbiased batch variance in them) and the evaluation outputs."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    widths = [(4, 6), (6, 5)]
    hidden = [(rng.standard_normal((o, i)) * 0.7, 1 + 0.2 * rng.standard_normal(o), 0.2 * rng.standard_normal(o))
              for i, o in widths]
    out = (rng.standard_normal((3, 5)) * 0.7, 0.1 * rng.standard_normal(3))
    batches = [(rng.standard_normal((8, 4)) * 2 + 1, rng.integers(0, 3, 8)) for _ in range(3)]
    x_eval = rng.standard_normal((5, 4))

    norm_layer = {"batch": torch.nn.BatchNorm1d, "layer": torch.nn.LayerNorm}[kind]
    linears = [torch.nn.Linear(i, o, bias=False).double() for i, o in widths]
    normed = [norm_layer(o, eps=1e-5).double() for _, o in widths]  # BatchNorm1d's momentum is 0.1
    last = torch.nn.Linear(5, 3).double()
    model = torch.nn.Sequential(linears[0], normed[0], torch.nn.Tanh(), linears[1], normed[1], torch.nn.Tanh(), last)
    with torch.no_grad():
        for (W, gamma, beta), linear, norm in zip(hidden, linears, normed):
            linear.weight.copy_(torch.from_numpy(W))
            norm.weight.copy_(torch.from_numpy(gamma))
            norm.bias.copy_(torch.from_numpy(beta))
        last.weight.copy_(torch.from_numpy(out[0]))
        last.bias.copy_(torch.from_numpy(out[1]))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for x, y in batches:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(x_eval)), -1).numpy()

    with jax.enable_x64(True):
        net = fnann.MLP([4, 6, 5, 3], hidden="tanh", output="softmax", norm=kind)
        params = (*(fnann.Normed(*map(jnp.asarray, layer)) for layer in hidden), fnann.Dense(*map(jnp.asarray, out)))
        sgd = fnann.sgd(0.1)
        step, state = fnann.train_step(net, "cross_entropy", sgd), sgd.init(params)
        stats = fnann.init_stats(net, jnp.float64) if kind == "batch" else None
        for x, y in batches:
            x, y = jnp.asarray(x), jnp.asarray(y, jnp.int32)
            if kind == "batch":
                params, state, _, stats = step(params, state, x, y, None, stats)
            else:
                params, state, _ = step(params, state, x, y)
        ours = np.asarray(fnann.forward(net, params, jnp.asarray(x_eval), stats=stats))

    def close(a, b):
        np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), rtol=1e-10, atol=1e-12)

    for layer, linear, norm in zip(params, linears, normed):
        close(layer.W, linear.weight), close(layer.gamma, norm.weight), close(layer.beta, norm.bias)
    close(params[2].W, last.weight), close(params[2].b, last.bias)
    if kind == "batch":
        for k, norm in enumerate(normed):
            close(stats[k].mean, norm.running_mean), close(stats[k].var, norm.running_var)
    np.testing.assert_allclose(ours, probs, rtol=1e-10, atol=1e-12)
