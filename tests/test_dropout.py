"""Inverted dropout on hidden activations, A^(l) = σ(Z^(l)) ⊙ M^(l) / (1 - p_l): p = 0 is the
textbook net bit for bit; the masked delta recursion against jax.grad (the same masks) and
central finite differences (the mask fixed); the masks' statistics; evaluation untouched; the
keys of train_step, fit, fit_many and fit(mesh=...) (same key, same run; resume exact); bad
rates; save/load and the command line."""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import fnann
from fnann.app import cli
from fnann.backprop import objective_value
from early import Early, selected, two_devices
from fnann.mlp import dropout_masks
from strategies import HEADS, max_rel_error, problem, training_pass

KEY = jax.random.key(7)


def _data(n=20, n_in=4, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n_in)).astype(np.float32), rng.integers(0, n_classes, n).astype(np.int32)


def _equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_zero_dropout_is_the_textbook_net_bit_for_bit():
    plain = fnann.MLP([4, 8, 8, 3])
    for zero in (0.0, 0, [0.0, 0.0], (0, 0.0)):
        net = fnann.MLP([4, 8, 8, 3], dropout=zero)
        assert net == plain and hash(net) == hash(plain) and repr(net) == repr(plain)
        assert net.dropout == 0.0 and not net.has_dropout
    assert repr(plain) == "MLP(sizes=(4, 8, 8, 3), hidden='relu', output='softmax')"
    assert fnann.MLP([4, 8, 8, 3], dropout=0.5) != plain
    x, y = _data()
    params = fnann.init(jax.random.key(0), plain)
    opt = fnann.adam(1e-2)
    p_plain, h_plain = fnann.fit(plain, "cross_entropy", opt, params, x, y, key=KEY, epochs=2, batch_size=6)
    p_zero, h_zero = fnann.fit(fnann.MLP([4, 8, 8, 3], dropout=[0, 0]), "cross_entropy", opt, params, x, y,
                               key=KEY, epochs=2, batch_size=6)
    assert _equal(p_plain, p_zero) and h_plain == h_zero
    step = jax.jit(fnann.train_step(plain, "cross_entropy", opt))  # a key is ignored without dropout
    state = opt.init(params)
    assert _equal(step(params, state, x, y), step(params, state, x, y, KEY))


@st.composite
def dropout_networks(draw):
    depth = draw(st.integers(1, 3))
    width = draw(st.integers(1, 6))
    output, loss = draw(st.sampled_from(HEADS))
    hidden = [draw(st.sampled_from(["relu", "tanh", "sigmoid", "silu"])) for _ in range(depth)]
    sizes = [draw(st.integers(1, 4)), *([width] * depth), draw(st.integers(2, 3))]
    rates = [draw(st.sampled_from([0.0, 0.2, 0.5, 0.9])) for _ in range(depth)]
    rates[draw(st.integers(0, depth - 1))] = draw(st.sampled_from([0.3, 0.6]))  # at least one layer drops
    residual = draw(st.booleans()) and depth >= 2
    return fnann.MLP(sizes, hidden=hidden, output=output, dropout=rates, residual=residual), loss


@settings(max_examples=5, deadline=None)
@given(case=dropout_networks(), batch=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_the_masked_delta_recursion_equals_autodiff_with_the_same_masks(case, batch, seed):
    net, loss = case
    key = jax.random.key(seed)
    with jax.enable_x64(True):
        params, x, y = problem(net, loss, batch, seed, jnp.float64)
        y_hat, trace, grads, deltas, value, auto, dZ = training_pass(net, loss)(params, x, y, key)
        loss_ = fnann.get_loss(loss)
        assert len(trace.M) == net.n_layers - 1
        assert max_rel_error(grads, auto) < 1e-9
        want = fnann.backprop.loss_value(net, loss_, y_hat, trace, y)  # the loss of the same dropped-out pass
        assert abs(float(value) - float(want)) <= 1e-12 * max(1.0, abs(float(value)))
        for l, (d, ref) in enumerate(zip(deltas, dZ), 1):  # δ^(l) = ∂L/∂Z^(l) through the mask
            assert max_rel_error(d, ref) < 1e-9, l
        a = np.asarray(x)  # the forward pass in numpy: σ(Z) ⊙ M / (1 - p), the skip not dropped
        for l, (layer, act) in enumerate(zip(params, net.activations), 1):
            new = np.asarray(act.fn(jnp.asarray(a @ np.asarray(layer.W).T + np.asarray(layer.b))))
            if l < net.n_layers and trace.M[l - 1] is not None:
                new = new * np.asarray(trace.M[l - 1]) / (1 - net.dropout_rates[l - 1])
            a = a + new if l in net.residual else new
        np.testing.assert_allclose(np.asarray(y_hat), a, rtol=1e-12, atol=1e-14)


def test_the_gradient_equals_central_differences_with_the_mask_fixed():
    net = fnann.MLP([3, 5, 5, 2], hidden=["tanh", "sigmoid"], output="softmax", dropout=[0.4, 0.25],
                    residual=True)
    loss = fnann.get_loss("cross_entropy")
    eps, idx = 1e-6, np.random.default_rng(0).choice(63, 12, replace=False)  # 63 parameters

    @jax.jit
    def manual_and_differences(params, x, y):
        _, trace = fnann.forward_trace(net, params, x, key=KEY)
        grads = fnann.backward(net, params, trace, y, loss)
        theta, unravel = ravel_pytree(params)
        f = lambda t: objective_value(net, loss, unravel(t), x, y, trace.M)  # noqa: E731 - the mask fixed
        basis = jnp.eye(theta.size, dtype=theta.dtype)[idx]
        fd = jax.vmap(lambda e: (f(theta + eps * e) - f(theta - eps * e)) / (2 * eps))(basis)
        return trace.M, ravel_pytree(grads)[0][idx], fd

    with jax.enable_x64(True):
        params, x, y = problem(net, "cross_entropy", 6, 3, jnp.float64)
        masks, g, fd = manual_and_differences(params, x, y)
        assert all(m is not None and 0 < float(jnp.sum(m)) < m.size for m in masks)
        np.testing.assert_allclose(np.asarray(fd), np.asarray(g), rtol=1e-6, atol=1e-9)


def test_check_grads_checks_the_training_pass_and_catches_a_backward_without_the_mask(monkeypatch):
    net = fnann.MLP([3, 6, 6, 2], hidden="tanh", dropout=[0.5, 0.3], residual=True)
    with jax.enable_x64(True):
        params, x, y = problem(net, "cross_entropy", 5, 11, jnp.float64)
    report = fnann.check_grads(net, "cross_entropy", params, x, y, key=KEY, n_fd=8)
    assert report.passed, report
    wrong = fnann.MLP([3, 6, 6, 2], hidden="tanh", dropout=[0.5, 0.35], residual=True)  # not compiled yet
    monkeypatch.setattr(fnann.backprop, "dropout_backward", lambda da, mask, p: da)  # forgets M / (1 - p)
    assert not fnann.check_grads(wrong, "cross_entropy", params, x, y, key=KEY, n_fd=8).passed


def test_the_mask_keeps_a_fraction_1_minus_p_within_five_sigma():
    net = fnann.MLP([3, 400, 300, 2], dropout=[0.3, 0.75])
    masks = dropout_masks(net, KEY, 250)
    for m, p in zip(masks, net.dropout_rates):
        n = m.size
        assert set(np.unique(np.asarray(m)).tolist()) <= {0.0, 1.0}
        assert abs(float(jnp.mean(m)) - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    assert dropout_masks(fnann.MLP([3, 4, 4, 2], dropout=[0.0, 0.5]), KEY, 2)[0] is None
    a = jnp.ones((250, 400))  # E[σ ⊙ M / (1 - p)] = σ: the inverted scaling
    kept = fnann.mlp.dropout_forward(a, masks[0], 0.3)
    assert abs(float(jnp.mean(kept)) - 1.0) < 5 * np.sqrt(0.3 / 0.7 / a.size)


def test_evaluation_is_deterministic_and_drops_nothing():
    net, plain = fnann.MLP([4, 8, 8, 3], dropout=0.5), fnann.MLP([4, 8, 8, 3])
    params = fnann.init(jax.random.key(0), net)
    x, y = _data()
    out = fnann.forward(net, params, x)
    assert np.array_equal(out, fnann.forward(plain, params, x)) and np.array_equal(out, fnann.forward(net, params, x))
    assert np.array_equal(fnann.predict(net, params, x), fnann.predict(plain, params, x))
    assert fnann.evaluate(net, params, x, y, "cross_entropy") == fnann.evaluate(plain, params, x, y, "cross_entropy")
    assert fnann.forward_trace(net, params, x)[1].M == ()
    assert not np.array_equal(fnann.forward_trace(net, params, x, key=KEY)[0], out)


def test_train_step_needs_a_key_and_a_new_key_does_not_compile_again():
    net = fnann.MLP([4, 8, 3], dropout=0.5)
    opt = fnann.sgd(0.1)
    params = fnann.init(jax.random.key(0), net)
    x, y = _data()
    step = jax.jit(fnann.train_step(net, "cross_entropy", opt))
    with pytest.raises(ValueError, match="has dropout: its training step needs a key"):
        step(params, opt.init(params), x, y)
    a = step(params, opt.init(params), x, y, jax.random.key(1))
    compiled = step._cache_size()
    b = step(params, opt.init(params), x, y, jax.random.key(2))
    assert step._cache_size() == compiled and not _equal(a[0], b[0])
    assert _equal(a, step(params, opt.init(params), x, y, jax.random.key(1)))
    auto = jax.jit(fnann.train_step(net, "cross_entropy", opt, method="autodiff"))(
        params, opt.init(params), x, y, jax.random.key(1))
    assert max_rel_error(auto[0], a[0]) < 1e-5  # the same masks for both methods


def test_fit_is_bit_identical_for_one_key_and_resume_is_exact():
    net = fnann.MLP([4, 8, 8, 3], dropout=[0.2, 0.5], residual=True)
    opt = fnann.adam(1e-2)
    params = fnann.init(jax.random.key(0), net)
    x, y = _data(n=22)  # 22 = 3 * 6 + 4: the scan's steps and the last one
    run = dict(key=KEY, batch_size=6)
    p1, h1 = fnann.fit(net, "cross_entropy", opt, params, x, y, epochs=3, **run)
    p2, h2 = fnann.fit(net, "cross_entropy", opt, params, x, y, epochs=3, **run)
    assert _equal(p1, p2) and h1 == h2
    p3, _ = fnann.fit(net, "cross_entropy", opt, params, x, y, epochs=3, key=jax.random.key(8), batch_size=6)
    assert not _equal(p1, p3)
    pa, _, state = fnann.fit(net, "cross_entropy", opt, params, x, y, epochs=1, return_state=True, **run)
    pb, hb = fnann.fit(net, "cross_entropy", opt, pa, x, y, epochs=2, opt_state=state.opt_state,
                       initial_epoch=1, **run)
    assert _equal(pb, p1) and hb["loss"] == h1["loss"][1:]
    keys = jax.random.split(KEY, 2)  # fit_many's model k is fit with key[k], masks included
    many = fnann.fit_many(net, "cross_entropy", opt, params, x, y, key=keys, epochs=2, batch_size=None)
    for k in range(2):
        pk, hk = fnann.fit(net, "cross_entropy", opt, params, x, y, key=keys[k], epochs=2, batch_size=None)
        assert max_rel_error(many.model(k), pk) < 1e-6 and np.allclose(many.histories[k]["loss"], hk["loss"])
    fnann.compile_fit(net, "cross_entropy", opt, params, x, y, batch_size=6, key=KEY)  # fit's programs


MESH_SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    from jax.sharding import Mesh
    import fnann
    net = fnann.MLP([4, 6, 3], hidden="tanh", dropout=0.5)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((15, 4)).astype(np.float32), rng.integers(0, 3, 15).astype(np.int32)
    params = tuple(fnann.Dense(rng.standard_normal((o, i)).astype(np.float32) * 0.5, np.zeros(o, np.float32))
                   for i, o in ((4, 6), (6, 3)))
    run = dict(key=np.array([0, 5], np.uint32), epochs=2, batch_size=4)
    one, h1 = fnann.fit(net, "cross_entropy", fnann.sgd(0.1), params, x, y, **run)
    mesh = Mesh(np.array(jax.devices()), ("data",))
    two, h2 = fnann.fit(net, "cross_entropy", fnann.sgd(0.1), params, x, y, mesh=mesh, **run)
    err = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in
              zip(jax.tree.leaves(one), jax.tree.leaves(two)))
    print(len(jax.devices()), err, max(abs(a - b) for a, b in zip(h1["loss"], h2["loss"])))
""")


MESH = Early(lambda: two_devices(MESH_SCRIPT))


def start_early(items):
    """The two-device run runs beside the session (tests/early.py)."""
    return selected(items, {"test_a_mesh_fit_draws_the_one_device_masks": MESH})


def test_a_mesh_fit_draws_the_one_device_masks():
    out = MESH.result(timeout=120)
    assert out.returncode == 0, out.stderr
    devices, err, loss_err = out.stdout.split()
    assert devices == "2" and float(err) < 1e-5 and float(loss_err) < 1e-5  # float32, summed in another order


@pytest.mark.parametrize("dropout, error", [
    (-0.1, ValueError), (1.0, ValueError), (1.5, ValueError), (float("nan"), ValueError),
    ([0.1], ValueError), ([0.1, 0.2, 0.3], ValueError), ([0.1, 1.0], ValueError),
    (True, TypeError), ("0.1", TypeError), (None, TypeError),
])
def test_a_bad_rate_is_one_clear_error_naming_dropout(dropout, error):
    with pytest.raises(error, match="dropout"):
        fnann.MLP([4, 8, 8, 3], dropout=dropout)


def test_a_net_without_hidden_layers_cannot_drop():
    with pytest.raises(ValueError, match="dropout.*no hidden layer"):
        fnann.MLP([4, 3], dropout=0.5)
    assert fnann.MLP([4, 3], dropout=0.0) == fnann.MLP([4, 3])


def test_a_dropout_net_round_trips_and_trains_from_the_command_line(tmp_path, capsys):
    for net in (fnann.MLP([3, 4, 4, 2], dropout=0.25), fnann.MLP([3, 4, 4, 2], dropout=[0.5, 0.0])):
        params = fnann.init(jax.random.key(0), net)
        fnann.save(tmp_path / "c.npz", net, params)
        ck = fnann.load(tmp_path / "c.npz")
        assert ck.net == net and ck.net.dropout_rates == net.dropout_rates and _equal(ck.params, params)
    args = ["--data", "xor", "--hidden-sizes", "8,8", "--epochs", "2", "--no-gradcheck", "--no-plot",
            "--no-progress", "--no-cache", "--out", str(tmp_path / "run")]
    assert cli.main(["train", *args, "--dropout", "0.1"]) == 0
    assert "2-8-8-2 relu/softmax, dropout 0.1,0.1" in capsys.readouterr().out
    ck = fnann.load(tmp_path / "run" / "checkpoint.npz")
    assert ck.net.dropout == 0.1 and ck.meta["run"]["dropout"] == 0.1
    resume = ["train", "--resume", "--epochs", "1", *args[args.index("--no-gradcheck"):]]
    assert cli.main([*resume, "--dropout", "0.2"]) == 2  # recorded with the run, checked by --resume
    assert "--dropout 0.2 (recorded: 0.1)" in capsys.readouterr().err
    assert cli.main(["explain", "--sizes", "2,3,3,2", "--residual", "--dropout", "0.5", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "M^(1) ~ Bernoulli(1 - 0.5)" in out and "A^(2) = A^(1) + sigmoid(Z^(2)) ⊙ M^(2) / (1 - 0.5)" in out
    assert "∂L/∂σ^(2) = ∂L/∂A^(2) ⊙ M^(2) / (1 - 0.5)" in out and "δ^(1) = ∂L/∂σ^(1) ⊙ σ'(Z^(1))" in out
    assert float(out.split("over every δ and gradient: ")[1].split()[0]) < 1e-12
    s = fnann.summary(fnann.MLP([4, 8, 8, 3], dropout=[0.5, 0.0], residual=True))
    assert [layer.activation for layer in s.layers] == ["relu + dropout 0.5", "relu + skip", "softmax"]
    assert s.flops == fnann.summary(fnann.MLP([4, 8, 8, 3], residual=True)).flops  # evaluation: no mask
