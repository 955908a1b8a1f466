"""Per-layer activations: ``MLP(sizes, hidden=[σ^(1), ..., σ^(L-1)])``, through the math, the
initialization, checkpoints and the command line."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnann
from fnann.app import cli
from strategies import HEADS, max_rel_error, problem

ELEMENTWISE = ("relu", "tanh", "sigmoid", "identity", "gelu", "leaky_relu(0.2)", "elu", "softplus", "silu")
NEW = ("leaky_relu", "leaky_relu(0.2)", "elu", "softplus", "silu")


@st.composite
def mixed_networks(draw):
    depth = draw(st.integers(2, 4))
    output, loss = draw(st.sampled_from(HEADS))
    sizes = [draw(st.integers(1, 7)) for _ in range(depth)] + [draw(st.integers(2, 4))]
    hidden = [draw(st.sampled_from(ELEMENTWISE)) for _ in range(depth - 1)]
    return fnann.MLP(sizes, hidden=hidden, output=output), loss


@settings(max_examples=8, deadline=None)
@given(case=mixed_networks(), batch=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_the_delta_recursion_of_mixed_activations_equals_autodiff_and_numpy(case, batch, seed):
    net, loss = case
    with jax.enable_x64(True):
        params, x, y = problem(net, loss, batch, seed, jnp.float64)
        value, manual = fnann.loss_and_grad(net, loss, "manual")(params, x, y)
        _, auto = fnann.loss_and_grad(net, loss, "autodiff")(params, x, y)
        assert max_rel_error(manual, auto) < 1e-9
        a = np.asarray(x)
        for layer, act in zip(params, net.activations):  # the forward pass, layer by layer in numpy
            z = a @ np.asarray(layer.W).T + np.asarray(layer.b)
            a = np.asarray(act.fn(jnp.asarray(z)))
        np.testing.assert_allclose(np.asarray(fnann.forward(net, params, x)), a, rtol=1e-12, atol=1e-14)


def test_each_layer_is_initialized_by_its_own_activation_s_rule():
    mixed = fnann.MLP([6, 5, 4, 3], hidden=["relu", "tanh"])
    key = jax.random.key(3)
    p_mixed, p_relu, p_tanh = (fnann.init(key, n) for n in (mixed, fnann.MLP([6, 5, 4, 3], "relu"),
                                                           fnann.MLP([6, 5, 4, 3], "tanh")))
    np.testing.assert_array_equal(p_mixed[0].W, p_relu[0].W)  # He: 2 / n_in
    np.testing.assert_array_equal(p_mixed[1].W, p_tanh[1].W)  # Glorot: 2 / (n_in + n_out)
    assert not np.array_equal(p_relu[1].W, p_tanh[1].W)


def test_one_activation_repeated_is_that_activation():
    assert fnann.MLP([3, 4, 4, 2], hidden=("tanh", "tanh")) == fnann.MLP([3, 4, 4, 2], "tanh")
    assert hash(fnann.MLP([3, 4, 4, 2], hidden=["relu", "tanh"])) == hash(fnann.MLP([3, 4, 4, 2], ("relu", "tanh")))
    assert fnann.MLP([3, 4, 4, 2], hidden=["relu", "tanh"]) != fnann.MLP([3, 4, 4, 2], hidden=["tanh", "relu"])
    net = fnann.MLP([3, 4, 4, 2], hidden=["relu", fnann.tanh])
    assert [a.name for a in net.activations] == ["relu", "tanh", "softmax"] and net.hidden_name == "relu,tanh"
    assert repr(net) == "MLP(sizes=(3, 4, 4, 2), hidden=('relu', 'tanh'), output='softmax')"


@pytest.mark.parametrize("hidden, error, message", [
    (["relu"], ValueError, "1 activations given for 2 hidden layers"),
    (["relu", "tanh", "relu"], ValueError, "3 activations given for 2 hidden layers"),
    (["relu", "nope"], ValueError, r"hidden\[1\]: unknown activation 'nope'"),
    (["relu", 3], TypeError, r"hidden\[1\] must be an activation name"),
    (5, TypeError, "hidden must be an activation"),
])
def test_a_wrong_list_of_activations_is_an_error_naming_it(hidden, error, message):
    with pytest.raises(error, match=message):
        fnann.MLP([3, 4, 4, 2], hidden=hidden)


def test_a_mixed_network_round_trips_through_a_checkpoint_and_a_crafted_one_is_refused(tmp_path):
    net = fnann.MLP([3, 4, 4, 2], hidden=["relu", "tanh"])
    params = fnann.init(jax.random.key(0), net)
    fnann.save(tmp_path / "c.npz", net, params)
    back = fnann.load(tmp_path / "c.npz")
    assert back.net == net and all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(back.params),
                                                                          jax.tree.leaves(params)))
    fnann.save(tmp_path / "u.npz", fnann.MLP([3, 4, 4, 2], "tanh"), params)  # one name: saved as before
    assert fnann.load(tmp_path / "u.npz").net == fnann.MLP([3, 4, 4, 2], "tanh")


def test_the_command_line_takes_one_activation_per_hidden_layer(tmp_path, capsys):
    args = ["--data", "xor", "--hidden-sizes", "8,4", "--epochs", "2", "--no-gradcheck", "--no-plot",
            "--no-progress", "--no-cache", "--out", str(tmp_path)]
    assert cli.main(["train", *args, "--hidden", "relu,tanh"]) == 0
    assert "2-8-4-2 relu,tanh/softmax" in capsys.readouterr().out
    ck = fnann.load(tmp_path / "checkpoint.npz")
    assert ck.net == fnann.MLP([2, 8, 4, 2], hidden=["relu", "tanh"]) and ck.meta["run"]["hidden"] == "relu,tanh"
    assert cli.main(["train", "--resume", "--epochs", "1", *args[args.index("--no-gradcheck"):]]) == 0
    assert cli.main(["train", "--resume", "--epochs", "1", "--hidden", "tanh,relu",
                     *args[args.index("--no-gradcheck"):]]) == 2
    assert "--hidden tanh,relu (recorded: relu,tanh)" in capsys.readouterr().err
    assert cli.main(["train", *args, "--overwrite", "--hidden", "relu,tanh,relu"]) == 2
    assert "3 activations given for 2 hidden layers" in capsys.readouterr().err
    assert cli.main(["gradcheck", "--sizes", "3,5,4,2", "--hidden", "tanh,sigmoid"]) == 0


@pytest.mark.parametrize("name", NEW)
def test_every_new_activation_passes_the_gradient_check_and_is_explained(name, capsys):
    assert cli.main(["gradcheck", "--sizes", "3,6,5,2", "--hidden", f"{name},tanh"]) == 0
    assert "gradient check passed" in capsys.readouterr().out
    assert cli.main(["explain", "--sizes", "2,3,2", "--hidden", name, "--no-cache"]) == 0
    assert fnann.activations.get_activation(name).derivative in capsys.readouterr().out
