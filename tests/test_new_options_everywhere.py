"""Every entry point that takes an MLP works with the new options of the network and the new
losses (per-layer activations, leaky ReLU/ELU/softplus/SiLU, skips, Huber/MAE/hinge): train_step,
fit and its resume, fit_many, a mesh of two (emulated) devices, save/load, predict/evaluate,
diagnostics and summary; each result against an independent computation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from early import Early, selected, two_devices
from strategies import max_rel_error

CASES = {
    "regression": (fnann.MLP([4, 6, 6, 2], hidden=["leaky_relu(0.2)", "silu"], output="identity", residual=True),
                   "huber(0.5)"),
    "mae": (fnann.MLP([4, 6, 6, 2], hidden=["softplus", "elu"], output="tanh", residual=[2]), "mae"),
    "hinge": (fnann.MLP([4, 6, 6, 3], hidden="elu", output="identity", residual=True), "hinge"),
}


def data(name, n=40):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    net, loss = CASES[name]
    y = rng.integers(0, net.n_out, n) if loss == "hinge" else rng.normal(size=(n, net.n_out)).astype(np.float32)
    return net, loss, x, y


@pytest.mark.parametrize("name", CASES)
def test_train_step_is_one_update_of_the_hand_derived_gradient(name):
    net, loss, x, y = data(name)
    opt = fnann.adam(0.01)
    params = fnann.init(jax.random.key(0), net)
    new, state, value = fnann.train_step(net, loss, opt)(params, opt.init(params), x[:8], y[:8])
    want_value, grads = fnann.loss_and_grad(net, loss, "autodiff")(params, x[:8], y[:8])
    updates, _ = opt.update(grads, opt.init(params), params)
    assert float(value) == pytest.approx(float(want_value), rel=1e-6)
    assert max_rel_error(new, fnann.apply_updates(params, updates)) < 1e-5


@pytest.mark.parametrize("name", CASES)
def test_fit_resumes_bit_for_bit_and_the_checkpoint_round_trips(name, tmp_path):
    net, loss, x, y = data(name)
    params, key, opt = fnann.init(jax.random.key(1), net), jax.random.key(2), fnann.adam(0.01)
    kw = dict(key=key, batch_size=16, validation_data=(x[:10], y[:10]))
    whole, hist = fnann.fit(net, loss, opt, params, x, y, epochs=3, **kw)
    assert hist["loss"][-1] < hist["loss"][0]
    half, _, state = fnann.fit(net, loss, opt, params, x, y, epochs=2, return_state=True, **kw)
    fnann.save(tmp_path / "c.npz", net, half, state.opt_state, epoch=state.epoch, key=state.key)
    ck = fnann.load(tmp_path / "c.npz")
    assert ck.net == net
    rest, _ = fnann.fit(net, loss, opt, ck.params, x, y, epochs=1, opt_state=ck.opt_state, initial_epoch=2, **kw)
    for a, b in zip(jax.tree.leaves(rest), jax.tree.leaves(whole), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    y_hat = np.asarray(fnann.predict(net, whole, x))
    np.testing.assert_allclose(y_hat, np.asarray(fnann.forward(net, whole, x)), rtol=1e-6, atol=1e-7)
    loss_ = fnann.get_loss(loss)
    assert fnann.evaluate(net, whole, x, y, loss)["loss"] == pytest.approx(float(loss_.fn(jnp.asarray(y_hat), y)),
                                                                           rel=1e-5)


@pytest.mark.parametrize("name", ["regression", "hinge"])
def test_fit_many_trains_each_model_as_its_own_fit(name):
    net, loss, x, y = data(name, 32)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *(fnann.init(jax.random.key(s), net) for s in (3, 4)))
    keys = jax.random.split(jax.random.key(5), 2)
    result = fnann.fit_many(net, loss, fnann.adam, stacked, x, y, key=keys, epochs=2, batch_size=16,
                            hyperparams={"lr": [0.01, 0.03]})
    for k, lr in enumerate((0.01, 0.03)):
        params, hist = fnann.fit(net, loss, fnann.adam(lr), jax.tree.map(lambda a: a[k], stacked), x, y,
                                 key=keys[k], epochs=2, batch_size=16)
        assert max_rel_error(result.model(k), params) <= 1e-5
        np.testing.assert_allclose(result.histories[k]["loss"], hist["loss"], rtol=1e-5)


def test_diagnostics_and_summary_cover_the_new_layers():
    net, loss, x, y = data("regression")
    params = fnann.init(jax.random.key(0), net)
    diag = fnann.diagnostics.diagnose(net, params, x, y, loss, fnann.sgd(0.1))
    table = fnann.diagnostics.format_diagnostics(diag, net)
    assert "leaky_relu(0.2)" in table and "silu" in table
    assert [l.activation for l in fnann.summary(net).layers] == ["leaky_relu(0.2)", "silu + skip", "identity"]


MESH = """
import jax, numpy as np, fnann
from jax.sharding import Mesh
net = fnann.MLP([4, 6, 6, 2], hidden=["leaky_relu(0.2)", "silu"], output="identity", residual=True)
rng = np.random.default_rng(0)
x, y = rng.normal(size=(32, 4)).astype(np.float32), rng.normal(size=(32, 2)).astype(np.float32)
params, key = fnann.init(jax.random.key(0), net), jax.random.key(1)
mesh = Mesh(np.array(jax.devices()[:2]), ("data",))
one, _ = fnann.fit(net, "huber(0.5)", fnann.adam(0.01), params, x, y, key=key, epochs=2, batch_size=16)
two, _ = fnann.fit(net, "huber(0.5)", fnann.adam(0.01), params, x, y, key=key, epochs=2, batch_size=16, mesh=mesh)
a, b = (np.concatenate([np.ravel(l) for l in jax.tree.leaves(p)]) for p in (one, two))
print(len(jax.devices()), float(np.max(np.abs(a - b)) / np.max(np.abs(a))))
"""


MESH_RUN = Early(lambda: two_devices(MESH))


def start_early(items):
    """The two-device run runs beside the session (tests/early.py)."""
    return selected(items, {"test_a_mesh_of_two_devices_equals_one_device": MESH_RUN})


def test_a_mesh_of_two_devices_equals_one_device():
    out = MESH_RUN.result(timeout=300)
    assert out.returncode == 0, out.stderr
    devices, error = out.stdout.split()
    assert devices == "2" and float(error) < 1e-5
