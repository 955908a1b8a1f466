"""Batch norm's running statistics through fit, fit_many and the inference entry points, and
layer norm (no state) through the same APIs.

The references are numpy transcriptions of the textbook equations: the training pass
normalizes by the batch's μ_B, σ²_B, evaluation by the running ones, and every step updates
μ_run <- (1 - m) μ_run + m μ_B, σ²_run <- (1 - m) σ²_run + m n/(n - 1) σ²_B.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from fnann.train import epoch_order

BN = fnann.MLP([3, 6, 5, 2], norm=fnann.BatchNorm(momentum=0.2))  # two batch-norm layers
LN = fnann.MLP([3, 6, 2], norm="layer")
PLAIN = fnann.MLP([3, 6, 2])
OPT = fnann.sgd(0.1)
N, BATCH, EPOCHS = 22, 8, 3  # batches of 8, 8 and 6 rows
KEY = jax.random.key(1)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3)).astype(np.float32) * 2 + 1  # far from the initial μ_run = 0, σ²_run = 1
    y = (x[:, 0] + x[:, 1] > 2).astype(np.int32)
    return x, y


@pytest.fixture(scope="module")
def bn_params():
    return fnann.init(jax.random.key(0), BN)


def train(net, params, x, y, **kw):
    kw = dict(key=KEY, epochs=EPOCHS, batch_size=BATCH) | kw
    return fnann.fit(net, "cross_entropy", OPT, params, x, y, **kw)


@pytest.fixture(scope="module")
def bn_run(data, bn_params):
    """(params, stats, history, state) after EPOCHS epochs."""
    return train(BN, bn_params, *data, validation_data=data, return_state=True)


def np_forward(net, params, x, stats=None):
    """ŷ and each batch-norm layer's (μ_B, biased σ²_B): numpy, in float64. ``stats`` given:
    evaluation, Ẑ = (Z - μ_run) / √(σ²_run + ε); else the training pass (the batch's μ, σ²)."""
    a, batch_stats, running = np.asarray(x, np.float64), [], iter(stats or ())
    for l, (layer, norm) in enumerate(zip(params, (*net.norms, None)), start=1):
        W = np.asarray(layer.W, np.float64)
        if norm is None:
            z = a @ W.T + np.asarray(layer.b, np.float64)
        else:
            z = a @ W.T
            if norm.name == "layer":
                mu, var = z.mean(1, keepdims=True), z.var(1, keepdims=True)
            elif stats is None:
                mu, var = z.mean(0), z.var(0)
                batch_stats.append((mu, var))
            else:
                s = next(running)
                mu, var = np.asarray(s.mean, np.float64), np.asarray(s.var, np.float64)
            z = np.asarray(layer.gamma, np.float64) * (z - mu) / np.sqrt(var + norm.eps) + np.asarray(
                layer.beta, np.float64)
        if l < net.n_layers:
            a = np.maximum(z, 0)  # relu
        else:
            e = np.exp(z - z.max(1, keepdims=True))
            a = e / e.sum(1, keepdims=True)
    return a, batch_stats


def np_update(net, stats, batch_stats, n):
    """μ_run <- (1 - m) μ_run + m μ_B;  σ²_run <- (1 - m) σ²_run + m n/(n - 1) σ²_B."""
    m = [net.norms[l - 1].momentum for l in net.batch_norm_layers]
    return [((1 - m_l) * mu_r + m_l * mu_b, (1 - m_l) * var_r + m_l * n / (n - 1) * var_b)
            for m_l, (mu_r, var_r), (mu_b, var_b) in zip(m, stats, batch_stats)]


def assert_same(a, b):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_running_statistics_after_fit_equal_a_numpy_transcription(data, bn_params, bn_run):
    x, y = data
    params, stats, history, state = bn_run
    step = jax.jit(fnann.train_step(BN, "cross_entropy", OPT))
    p, s, opt_state = bn_params, fnann.init_stats(BN), OPT.init(bn_params)
    np_stats = [(np.zeros(n), np.ones(n)) for n in (6, 5)]
    for e in range(EPOCHS):
        order = np.asarray(epoch_order(KEY, e, N))
        for i in range(0, N, BATCH):
            xb, yb = x[order[i:i + BATCH]], y[order[i:i + BATCH]]
            _, batch_stats = np_forward(BN, p, xb)  # the batch's μ_B, σ²_B at the params going in
            np_stats = np_update(BN, np_stats, batch_stats, len(xb))
            p, opt_state, _, s = step(p, opt_state, xb, yb, stats=s)
    for got, (mu, var) in zip(stats, np_stats):
        np.testing.assert_allclose(got.mean, mu, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got.var, var, rtol=1e-4, atol=1e-5)
    for got, want in zip(jax.tree.leaves((params, stats)), jax.tree.leaves((p, s))):  # fit = the steps
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert state.stats is stats and state.epoch == EPOCHS
    assert len(history["val_loss"]) == EPOCHS


def test_resume_with_the_returned_state_is_bit_exact(data, bn_params, bn_run):
    x, y = data
    p, s, h, state = train(BN, bn_params, x, y, epochs=2, validation_data=data, return_state=True)
    p, s, h2 = train(BN, p, x, y, epochs=EPOCHS - 2, initial_epoch=state.epoch, opt_state=state.opt_state,
                     stats=state.stats, validation_data=data)
    assert_same((p, s), bn_run[:2])
    assert h["loss"] + h2["loss"] == bn_run[2]["loss"]
    assert h["val_loss"] + h2["val_loss"] == bn_run[2]["val_loss"]


def test_evaluation_uses_the_running_statistics(data, bn_run):
    x, y = data
    params, stats, history, _ = bn_run
    want, _ = np_forward(BN, params, x, stats)
    got = fnann.predict(BN, params, x, chunk_size=5, stats=stats)  # chunks of 5, the last of 2 rows
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    one_by_one = fnann.predict(BN, params, x, chunk_size=1, stats=stats)  # a row's output is its own
    np.testing.assert_allclose(one_by_one, got, rtol=1e-6, atol=1e-7)
    train_pass, _ = np_forward(BN, params, x)  # the batch's statistics: another function of x
    np.testing.assert_allclose(fnann.forward_trace(BN, params, x)[0], train_pass, rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(train_pass - want)) > 1e-3
    nll = -np.mean(np.log(want[np.arange(N), y]))
    metrics = fnann.evaluate(BN, params, x, y, "cross_entropy", chunk_size=5, stats=stats)
    assert metrics["loss"] == pytest.approx(nll, rel=1e-5)
    assert metrics["accuracy"] == pytest.approx(np.mean(want.argmax(1) == y))
    assert fnann.accuracy(BN, params, x, y, stats=stats) == metrics["accuracy"]
    assert history["val_loss"][-1] == pytest.approx(nll, rel=1e-5)  # fit validates by the running stats
    fnann.compile_inference(BN, params, x, y, "cross_entropy", stats=stats)
    fnann.compile_fit(BN, "cross_entropy", OPT, params, x, y, batch_size=BATCH, validation_data=data, key=KEY,
                      stats=stats)


@pytest.mark.parametrize("rows, batch_size", [(N, 1), (N, N - 1), (1, None), (1, 32)])
def test_a_batch_of_one_row_is_refused_at_the_door(data, bn_params, rows, batch_size):
    x, y = data
    with pytest.raises(ValueError, match="batch_size" if rows > 1 else "x has 1 row") as e:
        train(BN, bn_params, x[:rows], y[:rows], batch_size=batch_size)
    assert "2 rows or more" in str(e.value)
    with pytest.raises(ValueError, match="2 rows or more"):
        fnann.fit_many(BN, "cross_entropy", OPT, bn_params, x[:rows], y[:rows], key=jax.random.split(KEY, 2),
                       epochs=1, batch_size=batch_size)
    with pytest.raises(ValueError, match="2 rows or more"):
        fnann.compile_fit(BN, "cross_entropy", OPT, bn_params, x[:rows], y[:rows], batch_size=batch_size)


def test_a_net_without_norm_is_trained_as_before(data):
    x, y = data
    params = fnann.init(jax.random.key(0), PLAIN)
    p, h, state = train(PLAIN, params, x, y, validation_data=data, return_state=True)
    p2, h2 = train(fnann.MLP([3, 6, 2], norm=None), params, x, y, validation_data=data)
    assert_same(p, p2)
    assert h == h2
    assert state.stats == () and isinstance(p, tuple) and isinstance(p[0], fnann.Dense)
    step = jax.jit(fnann.train_step(PLAIN, "cross_entropy", OPT))  # the steps by hand
    q, opt_state = params, OPT.init(params)
    for e in range(EPOCHS):
        order = np.asarray(epoch_order(KEY, e, N))
        for i in range(0, N, BATCH):
            q, opt_state, _ = step(q, opt_state, x[order[i:i + BATCH]], y[order[i:i + BATCH]])
    for got, want in zip(jax.tree.leaves(p), jax.tree.leaves(q)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert fnann.predict(PLAIN, p, x, stats=None).shape == (N, 2)
    with pytest.raises(ValueError, match="stats"):
        train(PLAIN, params, x, y, stats=fnann.init_stats(BN))


def test_layer_norm_keeps_no_state(data):
    x, y = data
    params = fnann.init(jax.random.key(0), LN)
    p, h = train(LN, params, x, y, epochs=2, validation_data=data)
    assert isinstance(p[0], fnann.Normed) and np.all(np.isfinite(h["loss"]))
    want, _ = np_forward(LN, p, x)
    np.testing.assert_allclose(fnann.predict(LN, p, x, chunk_size=7), want, rtol=1e-5, atol=1e-6)
    assert fnann.evaluate(LN, p, x, y, "cross_entropy")["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-6)


def test_batch_norm_with_dropout_and_skips_and_in_bfloat16(data):
    x, y = data
    net = fnann.MLP([3, 6, 6, 2], norm="batch", dropout=0.2, residual=True)
    p, s, h = train(net, fnann.init(jax.random.key(0), net), x, y, epochs=2, validation_data=data)
    assert np.all(np.isfinite(h["loss"] + h["val_loss"])) and len(s) == 2
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(s))
    p, s, h = train(BN, fnann.init(jax.random.key(0), BN), x, y, epochs=2, compute_dtype="bfloat16")
    assert all(a.dtype == jnp.float32 and np.all(np.isfinite(a)) for a in jax.tree.leaves(s))
    assert not np.allclose(s[0].mean, 0)


def test_restore_best_restores_the_statistics_of_the_best_epoch(data, bn_params):
    x, y = data
    seen = []
    # min_delta huge: only epoch 0 improves on inf; patience 0 stops after epoch 1
    p, s, h = train(BN, bn_params, x, y, validation_data=data, patience=0, min_delta=1e9,
                    callback=lambda e, logs, state: seen.append(state))
    assert len(h["loss"]) == 2 and len(seen) == 2
    assert_same((p, s), (seen[0].params, seen[0].stats))
    assert not np.array_equal(seen[0].stats[0].mean, seen[1].stats[0].mean)


def test_fit_many_model_k_equals_fit_of_model_k(data):
    x, y = data
    keys = jax.random.split(KEY, 2)
    params = jax.vmap(lambda k: fnann.init(k, BN))(jax.random.split(jax.random.key(0), 2))
    r = fnann.fit_many(BN, "cross_entropy", fnann.sgd, params, x, y, key=keys, epochs=2, batch_size=BATCH,
                       hyperparams={"lr": [0.1, 0.05]}, validation_data=data)
    assert r.stats[0].mean.shape == (2, 6)
    many = lambda p, **kw: fnann.fit_many(BN, "cross_entropy", fnann.sgd, p, x, y, key=keys,  # noqa: E731
                                          batch_size=BATCH, hyperparams={"lr": [0.1, 0.05]}, **kw)
    first = many(params, epochs=1)
    again = many(first.params, epochs=1, initial_epoch=1, opt_state=first.opt_state, stats=first.stats)
    assert_same((again.params, again.stats), (r.params, r.stats))  # resumed from the stacked stats
    for k, lr in enumerate((0.1, 0.05)):
        p, s, h = fnann.fit(BN, "cross_entropy", fnann.sgd(lr), jax.tree.map(lambda a: a[k], params), x, y,
                            key=keys[k], epochs=2, batch_size=BATCH, validation_data=data)
        for got, want in zip(jax.tree.leaves((r.model(k), jax.tree.map(lambda a: a[k], r.stats))),
                             jax.tree.leaves((p, s))):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(r.histories[k]["val_loss"], h["val_loss"], rtol=1e-6)


def bad_stats():
    good = fnann.init_stats(BN)
    nan = good[0]._replace(mean=good[0].mean.at[1].set(jnp.nan))
    return {"too few layers": good[:1], "wrong shape": (good[1], good[0]), "NaN": (nan, good[1]),
            "not RunningStats": ((good[0].mean, good[0].var), good[1]), "not a tuple": good[0].mean}


@pytest.mark.parametrize("case", sorted(bad_stats()))
def test_bad_stats_are_refused_naming_stats(data, bn_params, case):
    x, y = data
    stats = bad_stats()[case]
    with pytest.raises((ValueError, TypeError), match="stats"):
        train(BN, bn_params, x, y, stats=stats)
    with pytest.raises((ValueError, TypeError), match="stats"):
        fnann.predict(BN, bn_params, x, stats=stats)


def test_bad_stacked_stats_are_refused_by_fit_many(data):
    """K models' stacked statistics are checked as a single model's are: one K for every
    layer, finite, no negative variance (it used to check only the shapes and NaN)."""
    x, y = data
    params = jax.vmap(lambda k: fnann.init(k, BN))(jax.random.split(jax.random.key(0), 2))
    good = jax.tree.map(lambda a: jnp.stack([a, a]), fnann.init_stats(BN))
    cases = {r"stats\[1\]\.mean has shape \(3, 5\).*must be \(2, 5\)":
             (good[0], fnann.RunningStats(jnp.zeros((3, 5)), jnp.ones((3, 5)))),
             r"stats\[0\]\.var holds a negative variance": (good[0]._replace(var=-good[0].var), good[1]),
             r"stats\[1\]\.var contains NaN": (good[0], good[1]._replace(var=good[1].var.at[1, 2].set(jnp.inf)))}
    for match, stats in cases.items():
        with pytest.raises(ValueError, match=match):
            fnann.fit_many(BN, "cross_entropy", OPT, params, x, y, key=jax.random.split(KEY, 2), epochs=1,
                           batch_size=BATCH, stats=stats)

def test_evaluating_a_batch_norm_net_needs_its_stats(data, bn_params):
    x, y = data
    for call in (lambda: fnann.predict(BN, bn_params, x), lambda: fnann.accuracy(BN, bn_params, x, y),
                 lambda: fnann.evaluate(BN, bn_params, x, y, "cross_entropy"),
                 lambda: fnann.compile_inference(BN, bn_params, x)):
        with pytest.raises(ValueError, match="stats=stats"):
            call()


def test_a_divergence_keeps_the_last_good_statistics(data, bn_run):
    x, y = data
    params, stats, _, _ = bn_run
    with pytest.raises(fnann.TrainingDivergedError) as e:
        fnann.fit(BN, "cross_entropy", fnann.sgd(1e30), params, x, y, key=KEY, epochs=2, batch_size=BATCH,
                  stats=stats)
    assert e.value.epoch == 0
    assert_same((e.value.params, e.value.stats), (params, stats))
