"""Mixed precision: float32 params ("master weights"), bfloat16 compute, float32 loss.

The gradients are checked against float64 ones to the bfloat16 rounding bound: every one of
the O(L) roundings of a term of an entry costs at most u = 2^-8 of that term's magnitude, so
|g_mixed - g| <= c (L + 1) u T, T the entry's sum of |terms| (``fnann.gradcheck``'s float64
magnitudes). Smooth activations only: at a ReLU kink a bfloat16 Z may fall on the other side
and flip a whole term (not a rounding error).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnann
from fnann.app import cli
from fnann.backprop import value_and_grad
from fnann.gradcheck import _magnitudes
from fnann.mlp import feedforward
from strategies import HEADS, problem

U = 2.0**-8  # bfloat16's unit round-off
C = 6


def float64_reference(net, loss, params, x, y):
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)
        x64 = jnp.asarray(np.asarray(x, np.float64))
        value, grads, T = jax.jit(lambda p, x: reference(net, loss, p, x, y))(p64, x64)
        return float(value), [np.asarray(g) for g in jax.tree.leaves(grads)], [np.asarray(t) for t in jax.tree.leaves(T)]


def reference(net, loss, p, x, y):
    value, grads = value_and_grad(net, loss, "manual")(p, x, y)
    return value, grads, _magnitudes(net, loss, p, feedforward(net, p, x)[1], y, value)[0]


def excess(grads, ref, T, L):
    """max over entries of |g - ref| / (C (L + 1) u T): <= 1 within the bound."""
    return max(float(np.max(np.abs(np.asarray(g, np.float64) - r) / (C * (L + 1) * U * t + 1e-300)))
               for g, r, t in zip(jax.tree.leaves(grads), ref, T, strict=True))


@settings(max_examples=5, deadline=None)
@given(depth=st.integers(1, 3), width=st.integers(2, 24), head=st.sampled_from(HEADS), batch=st.integers(1, 16),
       hidden=st.sampled_from(["tanh", "sigmoid", "elu", "silu"]), seed=st.integers(0, 2**31 - 1))
def test_mixed_gradients_equal_float64_ones_to_the_bfloat16_bound(depth, width, head, batch, hidden, seed):
    output, loss_name = head
    net = fnann.MLP([5, *([width] * depth), 3], hidden=hidden, output=output)
    loss = fnann.get_loss(loss_name)
    params, x, y = problem(net, loss_name, batch, seed)
    value, ref, T = float64_reference(net, loss, params, x, y)
    for method in ("manual", "autodiff"):
        v, grads = jax.jit(value_and_grad(net, loss, method, "bfloat16"))(params, x, y)
        assert v.dtype == jnp.float32 and all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))
        assert excess(grads, ref, T, net.n_layers) <= 1, method
        assert abs(float(v) - value) <= C * (net.n_layers + 1) * U * max(abs(value), 1e-3)
    wrong = (grads[0]._replace(W=-grads[0].W), *grads[1:])  # a sign flip is far outside the bound
    assert np.max(np.abs(ref[0])) == 0 or excess(wrong, ref, T, net.n_layers) > 1


def test_a_bfloat16_digits_run_reaches_the_float32_accuracy_and_keeps_float32_state():
    from fnann.app.datasets import load

    d = load("digits", seed=0)
    net = fnann.MLP([64, 128, 64, 10])
    accuracy, states = {}, {}
    for cd in (None, "bfloat16"):
        params, _, state = fnann.fit(net, "cross_entropy", fnann.adam(1e-3), fnann.init(jax.random.key(0), net),
                                     d.x_train, d.y_train, key=jax.random.key(1), epochs=20, compute_dtype=cd,
                                     return_state=True)
        accuracy[cd] = float(np.mean(np.argmax(np.asarray(fnann.predict(net, params, d.x_test)), 1) == d.y_test))
        states[cd] = state
    assert accuracy["bfloat16"] >= accuracy[None] - 0.01, accuracy
    assert all(l.dtype == jnp.float32 for l in jax.tree.leaves((states["bfloat16"].params,
                                                                 states["bfloat16"].opt_state.m)))


def test_mixed_fit_resumes_bit_for_bit_and_train_step_is_sgd_on_the_cast_params():
    net = fnann.MLP([4, 8, 3], hidden="tanh")
    params, x, y = problem(net, "cross_entropy", 24, 3)
    kw = dict(key=jax.random.key(0), batch_size=8, compute_dtype="bfloat16")
    whole, _ = fnann.fit(net, "cross_entropy", fnann.adam(0.01), params, x, y, epochs=3, **kw)
    half, _, s = fnann.fit(net, "cross_entropy", fnann.adam(0.01), params, x, y, epochs=2, return_state=True, **kw)
    rest, _ = fnann.fit(net, "cross_entropy", fnann.adam(0.01), half, x, y, epochs=1, initial_epoch=2,
                        opt_state=s.opt_state, **kw)
    for a, b in zip(jax.tree.leaves(rest), jax.tree.leaves(whole)):
        np.testing.assert_array_equal(a, b)
    opt = fnann.sgd(0.5)
    new, _, _ = jax.jit(fnann.train_step(net, "cross_entropy", opt, compute_dtype="bfloat16"))(
        params, opt.init(params), x, y)
    low = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)  # autodiff of the same scalar on cast(θ)
    g = jax.grad(lambda p: fnann.backprop.objective_value(net, fnann.cross_entropy, p, x.astype(jnp.bfloat16), y))(low)
    want = jax.tree.map(lambda p, g: p - 0.5 * g.astype(jnp.float32), params, g)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(want)):
        assert a.dtype == jnp.float32
        np.testing.assert_allclose(a, b, rtol=0, atol=0.5 * float(jnp.max(jnp.abs(b))) * 2 * U)


def test_fit_many_in_mixed_precision_trains_each_model_as_its_fit():
    net = fnann.MLP([4, 8, 3], hidden="tanh")
    params, x, y = problem(net, "cross_entropy", 32, 4)
    stacked = jax.tree.map(lambda a: jnp.stack([a, a]), params)
    keys = jax.random.split(jax.random.key(9), 2)
    result = fnann.fit_many(net, "cross_entropy", fnann.adam, stacked, x, y, key=keys, epochs=2, batch_size=16,
                            hyperparams={"lr": [0.01, 0.03]}, compute_dtype="bfloat16")
    for k, lr in enumerate((0.01, 0.03)):
        alone, _ = fnann.fit(net, "cross_entropy", fnann.adam(lr), params, x, y, key=keys[k], epochs=2,
                             batch_size=16, compute_dtype="bfloat16")
        for a, b in zip(jax.tree.leaves(result.model(k)), jax.tree.leaves(alone)):
            np.testing.assert_allclose(a, b, rtol=0, atol=4 * U * float(jnp.max(jnp.abs(b))))


@pytest.mark.parametrize("compute_dtype, dtype, error, message", [
    ("float16", jnp.bfloat16, ValueError, "not narrower than the params' bfloat16"),
    ("int8", jnp.float32, TypeError, "compute_dtype must be a floating dtype"),
    ("float32", jnp.bfloat16, ValueError, "not narrower than the params' bfloat16"),
    ("float64", jnp.float32, ValueError, "not narrower than the params' float32"),
    ("float32", jnp.float64, ValueError, "compute_dtype must be one of"),
])
def test_a_compute_dtype_that_cannot_be_is_an_error_naming_it(compute_dtype, dtype, error, message):
    net = fnann.MLP([2, 3, 2])
    with jax.enable_x64(dtype == jnp.float64):
        params = fnann.init(jax.random.key(0), net, dtype=dtype)
        with pytest.raises(error, match=message):
            fnann.fit(net, "cross_entropy", fnann.sgd(0.1), params, np.ones((4, 2)), np.array([0, 1, 0, 1]),
                      key=jax.random.key(0), epochs=1, compute_dtype=compute_dtype)


def test_the_params_own_dtype_as_compute_dtype_is_plain_precision():
    net = fnann.MLP([2, 3, 2])
    params = fnann.init(jax.random.key(0), net)
    x, y = np.ones((4, 2), np.float32), np.array([0, 1, 0, 1])
    kw = dict(key=jax.random.key(0), epochs=2, batch_size=2)
    a, _ = fnann.fit(net, "cross_entropy", fnann.sgd(0.1), params, x, y, **kw)
    b, _ = fnann.fit(net, "cross_entropy", fnann.sgd(0.1), params, x, y, compute_dtype="float32", **kw)
    for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(p, q)


def test_the_command_line_trains_in_mixed_precision_and_records_it(tmp_path, capsys):
    args = ["--data", "xor", "--epochs", "2", "--no-gradcheck", "--no-plot", "--no-progress", "--no-cache",
            "--out", str(tmp_path)]
    assert cli.main(["train", *args, "--compute-dtype", "bfloat16"]) == 0
    assert "float32 params, bfloat16 compute" in capsys.readouterr().out
    ck = fnann.load(tmp_path / "checkpoint.npz")
    assert ck.meta["run"]["compute_dtype"] == "bfloat16" and ck.params[0].W.dtype == jnp.float32
    assert cli.main(["train", "--resume", "--epochs", "1", *args[args.index("--no-gradcheck"):]]) == 0
    assert "bfloat16 compute, from epoch 2" in capsys.readouterr().out
