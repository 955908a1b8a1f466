"""Extension in one file: GELU (activations module only) and Nesterov momentum (optimizers
module only) work everywhere without further edits, each checked against an independent
reference; a user-defined activation registered from outside the package trains, explains,
diagnoses, saves and loads."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fnann
from fnann.app import cli
from fnann.optim import conventions

# --- GELU -----------------------------------------------------------------------------------


def gelu_reference(z):
    """An independent GELU: jax.nn.gelu(approximate=False), z Φ(z) through erf."""
    return jax.nn.gelu(z, approximate=False)


@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 4.0]))
def test_gelu_and_its_derivative_against_jax_nn_and_finite_differences(seed, scale):
    with jax.enable_x64(True):
        z = scale * jax.random.normal(jax.random.key(seed), (5, 7), jnp.float64)
        np.testing.assert_allclose(fnann.gelu.fn(z), gelu_reference(z), rtol=1e-13, atol=1e-15)
        ones = jnp.ones_like(z)
        slope = fnann.gelu.backward(z, ones)
        auto = jax.vjp(gelu_reference, z)[1](ones)[0]  # jax.grad of the independent GELU
        np.testing.assert_allclose(slope, auto, rtol=1e-12, atol=1e-14)
        eps = 1e-6
        fd = (gelu_reference(z + eps) - gelu_reference(z - eps)) / (2 * eps)
        np.testing.assert_allclose(slope, fd, rtol=1e-7, atol=1e-9)


def test_gelu_left_tail_keeps_its_relative_precision_in_float32():
    """Φ(z) by erfc: at z = -5, 1 + erf(z/√2) in float32 has lost every digit; erfc has not."""
    z = jnp.array([-5.0, -8.0, -12.0], jnp.float32)
    with jax.enable_x64(True):
        want = np.asarray(jax.nn.gelu(jnp.asarray(z, jnp.float64), approximate=False))
    np.testing.assert_allclose(np.asarray(fnann.gelu.fn(z), np.float64), want, rtol=1e-5)
    assert float(fnann.gelu.fn(jnp.array(-5.0))) != 0.0


def test_gelu_initializes_as_he_and_checks_its_gradients():
    net = fnann.MLP([400, 300, 10], hidden="gelu")
    W = np.asarray(fnann.init(jax.random.key(0), net)[0].W)
    assert fnann.gelu.init == "he"
    assert abs(W.std() - math.sqrt(2 / 400)) < 0.02 * math.sqrt(2 / 400)  # He, not Glorot (0.054)
    small = fnann.MLP([5, 6, 6, 3], hidden="gelu")
    params = fnann.init(jax.random.key(1), small)
    x = jax.random.normal(jax.random.key(2), (9, 5))
    report = fnann.check_grads(small, "cross_entropy", params, x, jnp.arange(9) % 3, n_fd=None)
    assert report.passed, str(report)


def test_gelu_everywhere_fit_summary_diagnostics_save_load(tmp_path):
    net = fnann.MLP([2, 8, 2], hidden="gelu")
    x = jax.random.normal(jax.random.key(0), (32, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(jnp.int32)
    params, history = fnann.fit(net, "ce", fnann.adam(1e-2), fnann.init(jax.random.key(1), net), x, y,
                                key=jax.random.key(2), epochs=3, batch_size=8)
    assert all(map(math.isfinite, history["loss"]))
    assert fnann.summary(net).layers[0].activation == "gelu"
    d = fnann.diagnostics.diagnose(net, params, x, y, "ce")
    assert np.isnan(d.dead_fraction[0]) and np.isfinite(d.dW_norm).all()
    fnann.save(tmp_path / "g.npz", net, params)
    assert fnann.load(tmp_path / "g.npz").net == net


def test_gelu_on_the_command_line(tmp_path, capsys):
    assert cli.main(["train", "--data", "xor", "--hidden", "gelu", "--epochs", "2", "--out", str(tmp_path / "r"),
                     "--no-cache", "--no-plot", "--no-progress"]) == 0
    assert fnann.load(tmp_path / "r" / "checkpoint.npz").net.hidden is fnann.gelu
    assert cli.main(["explain", "--hidden", "gelu", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "gelu'(z) = Φ(z) + z φ(z)" in out and "A^(1) = gelu(Z^(1))" in out


# --- Nesterov -------------------------------------------------------------------------------

A = np.array([[3.0, 0.5], [0.5, 1.0]])
B = np.array([1.0, -2.0])


def textbook_nesterov(theta, lrs, gamma):
    """The textbook form, float64 numpy: v = γ v + η ∇L(θ - γ v); θ = θ - v, on the quadratic
    L = ½ θᵀAθ - bᵀθ; returns the look-ahead points φ = θ - γ v that the update-only form holds."""
    v, out = np.zeros_like(theta), []
    for eta in lrs:
        v = gamma * v + eta * (A @ (theta - gamma * v) - B)
        theta = theta - v
        out.append(theta - gamma * v)
    return np.array(out)


def run(opt, theta, steps):
    params, state, out = jnp.asarray(theta), opt.init(jnp.asarray(theta)), []
    for _ in range(steps):
        updates, state = opt.update(A @ params - B, state, params)
        params = fnann.apply_updates(params, updates)
        out.append(np.asarray(params))
    return np.array(out)


@pytest.mark.parametrize("schedule", [False, True])
def test_nesterov_is_the_textbook_recursion(schedule):
    with jax.enable_x64(True):
        lr = fnann.schedules.exponential_decay(0.1, 0.5, 40) if schedule else 0.1
        lrs = [float(lr(k)) if schedule else lr for k in range(40)]
        got = run(fnann.optim.nesterov(lr, gamma=0.8), np.array([2.0, -1.0]), 40)
        np.testing.assert_allclose(got, textbook_nesterov(np.array([2.0, -1.0]), lrs, 0.8), rtol=1e-12, atol=1e-14)


def test_nesterov_equals_torch_sgd_nesterov_through_the_conventions():
    with jax.enable_x64(True):
        theta = np.array([2.0, -1.0])
        ours = run(fnann.optim.nesterov(0.05, gamma=0.9), theta, 100)
        torch_preset = run(conventions.torch_sgd(0.05, momentum=0.9, nesterov=True), theta, 100)
        np.testing.assert_allclose(ours, torch_preset, rtol=1e-13, atol=1e-15)


def test_nesterov_trajectory_equals_torch_optim_sgd():
    torch = pytest.importorskip("torch")
    p = torch.tensor([2.0, -1.0], dtype=torch.float64, requires_grad=True)
    sgd = torch.optim.SGD([p], lr=0.05, momentum=0.9, nesterov=True)
    At, Bt, want = torch.tensor(A), torch.tensor(B), []
    for _ in range(100):
        sgd.zero_grad()
        (0.5 * p @ At @ p - Bt @ p).backward()
        sgd.step()
        want.append(p.detach().numpy().copy())
    with jax.enable_x64(True):
        np.testing.assert_allclose(run(fnann.optim.nesterov(0.05, gamma=0.9), np.array([2.0, -1.0]), 100),
                                   np.array(want), rtol=1e-13, atol=1e-15)


def test_nesterov_everywhere_fit_fit_many_save_load_explain_train(tmp_path, capsys):
    net = fnann.MLP([2, 6, 2])
    x = jax.random.normal(jax.random.key(0), (24, 2))
    y = (x[:, 0] > 0).astype(jnp.int32)
    params0 = fnann.init(jax.random.key(1), net)
    opt = fnann.optim.nesterov(0.05)
    params, _, state = fnann.fit(net, "ce", opt, params0, x, y, key=jax.random.key(2), epochs=2, batch_size=8,
                                 return_state=True)
    many = fnann.fit_many(net, "ce", fnann.optim.nesterov, params0, x, y, key=jax.random.key(2), epochs=2,
                          batch_size=8, hyperparams={"lr": [0.05, 0.05]})
    np.testing.assert_allclose(many.model(0)[0].W, params[0].W, rtol=1e-5, atol=1e-6)
    fnann.save(tmp_path / "n.npz", net, params, state.opt_state, epoch=state.epoch, key=state.key)
    back = fnann.load(tmp_path / "n.npz")  # no opt=: MomentumState is registered where it is defined
    assert jax.tree.structure(back.opt_state) == jax.tree.structure(state.opt_state)
    assert "nesterov" in fnann.optim.OPTIMIZERS
    assert cli.main(["explain", "--optimizer", "nesterov", "--no-cache"]) == 0
    assert "θ ← θ - (γ v + η ∂L/∂θ)" in capsys.readouterr().out
    assert cli.main(["train", "--data", "xor", "--optimizer", "nesterov", "--epochs", "2", "--out",
                     str(tmp_path / "r"), "--no-cache", "--no-plot", "--no-progress"]) == 0
    assert fnann.load(tmp_path / "r" / "checkpoint.npz").meta["run"]["optimizer"] == "nesterov"


# --- a user-defined activation, from outside the package --------------------------------------


def test_a_user_defined_activation_trains_explains_diagnoses_and_round_trips(tmp_path):
    softsign = fnann.elementwise(
        "softsign_test", lambda z: z / (1 + jnp.abs(z)), lambda z: 1 / jnp.square(1 + jnp.abs(z)),
        formula="softsign(z) = z / (1 + |z|)", derivative="softsign'(z) = 1 / (1 + |z|)²",
        init=lambda n_in, n_out: 1.0 / n_in, saturates=True)
    fnann.activations.register_activation(softsign)
    try:
        net = fnann.MLP([3, 5, 2], hidden="softsign_test")  # by name, once registered
        assert net.hidden is softsign
        params = fnann.init(jax.random.key(0), net)
        wide = fnann.MLP([500, 400, 2], hidden=softsign)
        assert abs(float(jnp.std(fnann.init(jax.random.key(0), wide)[0].W)) - math.sqrt(1 / 500)) < 1e-3
        x = jax.random.normal(jax.random.key(1), (12, 3))
        y = jnp.arange(12) % 2
        assert fnann.check_grads(net, "ce", params, x, y).passed
        params, history = fnann.fit(net, "ce", fnann.sgd(0.1), params, x, y, key=jax.random.key(2), epochs=2)
        assert history["loss"][-1] < history["loss"][0] * 1.5
        from fnann.app.explain import explain

        text = explain(net, "ce", params, x[0], 1, fnann.sgd(0.1))
        assert "softsign'(z) = 1 / (1 + |z|)²" in text and "A^(1) = softsign_test(Z^(1))" in text
        d = fnann.diagnostics.diagnose(net, params, x, y, "ce")
        assert 0.0 <= float(d.saturated_fraction[0]) <= 1.0 and np.isnan(d.dead_fraction[0])
        fnann.save(tmp_path / "s.npz", net, params)
        assert fnann.load(tmp_path / "s.npz").net == net
        with pytest.raises(ValueError, match="already registered"):
            fnann.activations.register_activation(fnann.elementwise("softsign_test", jnp.tanh, jnp.tanh))
    finally:
        fnann.activations.unregister_activation("softsign_test")
    with pytest.raises(ValueError, match="unknown activation 'softsign_test'"):
        fnann.MLP([3, 5, 2], hidden="softsign_test")
