"""train_step and fit: exactness against independent references, no recompilation,
no dropped examples, determinism, early stopping and divergence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fnann
from fnann.app import datasets
from fnann.train import epoch_order
from strategies import max_rel_error, problem


def xor_data():
    x, y = datasets.xor(n_samples=200, noise=0.1, seed=0)
    return jnp.asarray(x), jnp.asarray(y)


def reference_grad(net, loss, params, x, y):
    """jax.grad of the loss written independently (softmax cross-entropy / mse)."""
    def L(p):
        a = x
        for l, layer in enumerate(p):
            z = a @ layer.W.T + layer.b
            a = jnp.tanh(z) if l < len(p) - 1 else z
        if loss == "cross_entropy":
            return -jnp.mean(jnp.sum(jax.nn.one_hot(y, z.shape[-1]) * jax.nn.log_softmax(z), -1))
        return jnp.mean((z - y) ** 2)
    return jax.grad(L)(params)


@pytest.mark.usefixtures("exact_matmuls")  # float32 against a reference at 1e-5: full products
def test_train_step_manual_and_autodiff_agree_after_20_steps():
    net = fnann.MLP([2, 16, 16, 2], hidden="relu")
    x, y = xor_data()
    opt = fnann.adam(1e-2)
    out = {}
    for method in ("manual", "autodiff"):
        step = jax.jit(fnann.train_step(net, "cross_entropy", opt, method))
        params = fnann.init(jax.random.key(0), net)
        state = opt.init(params)
        for _ in range(20):
            params, state, _ = step(params, state, x, y)
        out[method] = params
    for a, b in zip(jax.tree.leaves(out["manual"]), jax.tree.leaves(out["autodiff"])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_train_step_loss_is_at_the_params_that_went_in_and_donation_works():
    net = fnann.MLP([2, 4, 2])
    x, y = xor_data()
    opt = fnann.sgd(0.1)
    params = fnann.init(jax.random.key(0), net)
    expect = fnann.evaluate(net, params, x, y, "cross_entropy")["loss"]
    step = jax.jit(fnann.train_step(net, "cross_entropy", opt), donate_argnums=(0, 1))
    params2, _, value = step(jax.tree.map(jnp.copy, params), opt.init(params), x, y)
    assert float(value) == pytest.approx(expect, rel=1e-5)
    assert all(bool(jnp.all(jnp.isfinite(l))) for l in jax.tree.leaves(params2))


@pytest.mark.usefixtures("exact_matmuls")  # float32 against a reference at 1e-5: full products
def test_full_batch_epoch_with_sgd_is_one_gradient_step():
    net = fnann.MLP([2, 5, 2], hidden="tanh", output="softmax")
    x, y = xor_data()
    params = fnann.init(jax.random.key(0), net)
    lr = 0.5
    got, _ = fnann.fit(net, "cross_entropy", fnann.sgd(lr), params, x, y, key=jax.random.key(3),
                       epochs=1, batch_size=None)
    g = reference_grad(net, "cross_entropy", params, x, y)
    want = jax.tree.map(lambda p, d: p - lr * d, params, g)
    assert max_rel_error(got, want) <= 1e-5


@pytest.mark.usefixtures("exact_matmuls")  # float32 against a reference at 1e-5: full products
def test_batch_size_one_is_n_sequential_single_example_steps_in_shuffled_order():
    net = fnann.MLP([3, 4, 1], hidden="tanh", output="identity")
    params, x, y = problem(net, "mse", 9, 1)
    key, lr = jax.random.key(5), 0.05
    got, _ = fnann.fit(net, "mse", fnann.sgd(lr), params, x, y, key=key, epochs=1, batch_size=1)
    order = np.asarray(epoch_order(key, 0, 9))
    want = params
    for i in order:
        g = reference_grad(net, "mse", want, x[i:i + 1], y[i:i + 1])
        want = jax.tree.map(lambda p, d: p - lr * d, want, g)
    assert max_rel_error(got, want) <= 1e-5


@pytest.mark.usefixtures("exact_matmuls")  # float32 against a reference at 1e-5: full products
def test_minibatches_and_the_partial_last_batch():
    net = fnann.MLP([3, 4, 1], hidden="tanh", output="identity")
    params, x, y = problem(net, "mse", 10, 2)
    key, lr, b = jax.random.key(7), 0.1, 4  # batches of 4, 4 and the last 2
    got, hist = fnann.fit(net, "mse", fnann.sgd(lr), params, x, y, key=key, epochs=1, batch_size=b)
    order = np.asarray(epoch_order(key, 0, 10))
    want, losses = params, []
    for start in range(0, 10, b):
        idx = order[start:start + b]
        losses.append(fnann.evaluate(net, want, x[idx], y[idx], "mse")["loss"])
        g = reference_grad(net, "mse", want, x[idx], y[idx])  # the mean over the batch's own size
        want = jax.tree.map(lambda p, d: p - lr * d, want, g)
    assert max_rel_error(got, want) <= 1e-5
    assert hist["loss"][0] == pytest.approx(np.mean(losses), rel=1e-5)
    # Perturbing the label of an example that falls in the last (partial) batch matters.
    y2 = y.at[int(order[-1])].add(5.0)
    got2, _ = fnann.fit(net, "mse", fnann.sgd(lr), params, x, y2, key=key, epochs=1, batch_size=b)
    assert not np.allclose(got2[-1].b, got[-1].b)


@pytest.mark.parametrize("opt", [fnann.sgd(0.5), fnann.momentum(0.1), fnann.rmsprop(1e-2),
                                 fnann.adam(1e-2)], ids=["sgd", "momentum", "rmsprop", "adam"])
def test_each_optimizer_learns_xor(opt):
    net = fnann.MLP([2, 16, 2], hidden="tanh")
    x, y = xor_data()
    params = fnann.init(jax.random.key(0), net)
    params, hist = fnann.fit(net, "cross_entropy", opt, params, x, y, key=jax.random.key(1),
                             epochs=60, batch_size=16)
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert fnann.accuracy(net, params, x, y) >= 0.95


def test_same_key_is_bit_identical_and_another_key_differs():
    net = fnann.MLP([2, 8, 2])
    x, y = xor_data()
    p0 = fnann.init(jax.random.key(0), net)
    run = lambda k: fnann.fit(net, "cross_entropy", fnann.adam(1e-2), p0, x, y,
                              key=jax.random.key(k), epochs=3, batch_size=16)[0]
    a, b, c = run(1), run(1), run(2)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0].W, c[0].W)


def test_no_recompilation_across_epochs_and_fit_calls():
    traces = []

    def counted_mse(y_hat, y):
        traces.append(1)  # runs only when JAX traces, i.e. compiles
        return fnann.mse.fn(y_hat, y)

    loss = fnann.Loss("counted_mse", counted_mse, fnann.mse.grad)
    net = fnann.MLP([3, 4, 1], output="identity")
    params, x, y = problem(net, "mse", 20, 0)
    opt = fnann.adam(1e-2)
    fnann.fit(net, loss, opt, params, x, y, key=jax.random.key(0), epochs=3, batch_size=8)
    first = len(traces)
    assert first >= 1
    p2 = fnann.init(jax.random.key(9), net)
    fnann.fit(net, loss, opt, p2, x + 1.0, y, key=jax.random.key(1), epochs=4, batch_size=8)
    assert len(traces) == first


def test_validation_history_and_plain_data():
    net = fnann.MLP([2, 8, 2])
    x, y = xor_data()
    _, hist = fnann.fit(net, "cross_entropy", fnann.adam(1e-2), fnann.init(jax.random.key(0), net),
                        x[:150], y[:150], key=jax.random.key(0), epochs=4, batch_size=32,
                        validation_data=(x[150:], y[150:]))
    assert set(hist) == {"epoch", "loss", "val_loss", "val_accuracy"}
    assert hist["epoch"] == [0, 1, 2, 3]
    assert all(isinstance(v, float) for v in hist["val_loss"] + hist["val_accuracy"] + hist["loss"])


def test_early_stopping_returns_the_best_params():
    net = fnann.MLP([2, 8, 2])
    x, y = xor_data()
    seen = []

    def callback(epoch, logs):
        seen.append((epoch, logs["val_loss"]))

    params0 = fnann.init(jax.random.key(0), net)
    # A huge learning rate makes validation loss bounce: training must stop and restore.
    best, hist = fnann.fit(net, "cross_entropy", fnann.sgd(30.0), params0, x, y,
                           key=jax.random.key(0), epochs=50, batch_size=8,
                           validation_data=(x, y), patience=2, callback=callback)
    assert len(hist["loss"]) < 50 and len(seen) == len(hist["loss"])
    best_val = min(hist["val_loss"])
    assert fnann.evaluate(net, best, x, y, "cross_entropy")["loss"] == pytest.approx(best_val, rel=1e-5)


def test_callback_can_stop_training():
    net = fnann.MLP([2, 4, 2])
    x, y = xor_data()
    _, hist = fnann.fit(net, "cross_entropy", fnann.sgd(0.1), fnann.init(jax.random.key(0), net), x, y,
                        key=jax.random.key(0), epochs=10, batch_size=50, callback=lambda e, logs: e == 2)
    assert hist["epoch"] == [0, 1, 2]


def test_divergence_stops_with_the_epoch_and_keeps_finite_params():
    net = fnann.MLP([3, 8, 1], hidden="relu", output="identity")
    params, x, y = problem(net, "mse", 32, 0)
    y = y * 1e3
    with pytest.raises(fnann.TrainingDivergedError, match=r"diverged in epoch \d+") as e:
        fnann.fit(net, "mse", fnann.sgd(10.0), params, x, y, key=jax.random.key(0), epochs=50,
                  batch_size=8)
    assert all(bool(jnp.all(jnp.isfinite(l))) for l in jax.tree.leaves(e.value.params))
    assert len(e.value.history["loss"]) == e.value.epoch


def test_resume_with_state_is_bit_identical():
    net = fnann.MLP([2, 8, 2])
    x, y = xor_data()
    p0 = fnann.init(jax.random.key(0), net)
    opt, key = fnann.adam(1e-2), jax.random.key(4)
    kw = dict(key=key, batch_size=24)
    straight, _ = fnann.fit(net, "cross_entropy", opt, p0, x, y, epochs=5, **kw)
    p, _, state = fnann.fit(net, "cross_entropy", opt, p0, x, y, epochs=2, return_state=True, **kw)
    assert state.epoch == 2
    resumed, _ = fnann.fit(net, "cross_entropy", opt, p, x, y, epochs=3, opt_state=state.opt_state,
                           initial_epoch=state.epoch, **kw)
    for u, v in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    (dict(batch_size=-3), ValueError, "batch_size must be >= 1"),
    (dict(batch_size=2.5), TypeError, "batch_size must be a positive int"),
    (dict(epochs=-1), ValueError, "epochs must be >= 0"),
    (dict(monitor="acc"), ValueError, "monitor must be one of"),
    (dict(patience=2), ValueError, "needs validation_data"),
])
def test_bad_arguments(kwargs, err, match):
    net = fnann.MLP([2, 4, 2])
    x, y = xor_data()
    args = dict(key=jax.random.key(0), epochs=1, batch_size=8) | kwargs
    with pytest.raises(err, match=match):
        fnann.fit(net, "cross_entropy", fnann.sgd(0.1), fnann.init(jax.random.key(0), net), x, y, **args)


@pytest.mark.parametrize("mutate,match", [
    (lambda x, y: (x[:-1], y), "x has 199 rows but y has 200"),
    (lambda x, y: (x.at[3, 1].set(jnp.nan), y), r"x contains NaN or inf at index \(3, 1\)"),
    (lambda x, y: (x.at[0, 0].set(jnp.inf), y), "x contains NaN or inf"),
    (lambda x, y: (x, y.at[5].set(7)), r"labels must lie in \[0, 1\]"),
    (lambda x, y: (x, jax.nn.one_hot(y, 3)), "y has 3 columns but the network has 2 outputs"),
    (lambda x, y: (x[:, :1], y), "x has 1 features"),
])
def test_bad_data_is_caught_before_compiling(mutate, match):
    net = fnann.MLP([2, 4, 2])
    x, y = mutate(*xor_data())
    with pytest.raises(ValueError, match=match):
        fnann.fit(net, "cross_entropy", fnann.sgd(0.1), fnann.init(jax.random.key(0), net), x, y,
                  key=jax.random.key(0), epochs=1, batch_size=8)


def test_nan_in_regression_targets_and_validation_data():
    net = fnann.MLP([3, 4, 1], output="identity")
    params, x, y = problem(net, "mse", 8, 0)
    with pytest.raises(ValueError, match="y contains NaN"):
        fnann.fit(net, "mse", fnann.sgd(0.1), params, x, y.at[2, 0].set(jnp.nan),
                  key=jax.random.key(0), epochs=1, batch_size=4)
    with pytest.raises(ValueError, match="x_val contains NaN"):
        fnann.fit(net, "mse", fnann.sgd(0.1), params, x, y, key=jax.random.key(0), epochs=1,
                  batch_size=4, validation_data=(x.at[0, 0].set(jnp.nan), y))


def test_predict_and_evaluate_in_chunks_match_one_shot():
    net = fnann.MLP([3, 6, 4], hidden="sigmoid")
    params, x, y = problem(net, "cross_entropy", 37, 0)
    full = fnann.forward(net, params, x)
    np.testing.assert_allclose(fnann.predict(net, params, x, chunk_size=8), full, rtol=1e-6)
    ev = fnann.evaluate(net, params, x, y, "cross_entropy", chunk_size=5)
    L, _ = fnann.loss_and_grad(net, "cross_entropy")(params, x, y)
    assert ev["loss"] == pytest.approx(float(L), rel=1e-5)
    want_acc = float(np.mean(np.argmax(full, 1) == np.asarray(y)))
    assert ev["accuracy"] == pytest.approx(want_acc) == fnann.accuracy(net, params, x, y, chunk_size=6)
    with pytest.raises(ValueError, match="accuracy needs a classifier"):
        reg = fnann.MLP([3, 2], output="identity")
        fnann.accuracy(reg, fnann.init(jax.random.key(0), reg), x, jnp.zeros((37, 2)))


@given(n=st.integers(1, 300), seed=st.integers(0, 2**31 - 1), epoch=st.integers(0, 1000))
def test_epoch_order_is_a_permutation_that_depends_only_on_key_and_epoch(n, seed, epoch):
    key = jax.random.key(seed)
    perm = np.asarray(epoch_order(key, epoch, n))
    np.testing.assert_array_equal(np.sort(perm), np.arange(n))
    np.testing.assert_array_equal(perm, np.asarray(epoch_order(key, epoch, n)))
    np.testing.assert_array_equal(perm, np.asarray(epoch_order(jax.random.PRNGKey(seed), epoch, n)))
    if n >= 20:
        assert not np.array_equal(perm, np.asarray(epoch_order(key, epoch + 1, n)))
        assert not np.array_equal(perm, np.asarray(epoch_order(jax.random.key(seed + 1), epoch, n)))


def test_evaluate_and_accuracy_bad_input():
    net = fnann.MLP([2, 4, 2])
    params = fnann.init(jax.random.key(0), net)
    x, y = xor_data()
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        fnann.evaluate(net, params, x, y, "cross_entropy", chunk_size=0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        fnann.accuracy(net, params, x, y.at[0].set(2))
    with pytest.raises(ValueError, match="x has 200 rows but y has 199"):
        fnann.accuracy(net, params, x, y[1:])
    with pytest.raises(ValueError, match="x has 3 features"):
        fnann.evaluate(net, params, jnp.ones((4, 3)), y[:4], "cross_entropy")


def test_validation_targets_are_named_in_errors():
    net = fnann.MLP([2, 4, 2])
    x, y = xor_data()
    with pytest.raises(ValueError, match=r"y_val holds class labels in \[0, 5\]"):
        fnann.fit(net, "cross_entropy", fnann.sgd(0.1), fnann.init(jax.random.key(0), net), x, y,
                  key=jax.random.key(0), epochs=1, validation_data=(x, y.at[0].set(5)))
    with pytest.raises(ValueError, match="x_val has 200 rows but y_val has 10"):
        fnann.fit(net, "cross_entropy", fnann.sgd(0.1), fnann.init(jax.random.key(0), net), x, y,
                  key=jax.random.key(0), epochs=1, validation_data=(x, y[:10]))
