"""Residual connections A^(l) = A^(l-1) + σ^(l)(Z^(l)): the forward pass against numpy, the
skip's path in the delta recursion against jax.grad and finite differences, and every entry
point that takes an MLP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnann
from fnann.app import cli
from fnann.mlp import feedforward
from strategies import HEADS, max_rel_error, problem


@st.composite
def residual_networks(draw):
    width = draw(st.integers(1, 6))
    depth = draw(st.integers(2, 4))  # hidden layers, all of one width: skips at 2..depth
    output, loss = draw(st.sampled_from(HEADS))
    hidden = [draw(st.sampled_from(["relu", "tanh", "sigmoid", "elu", "silu"])) for _ in range(depth)]
    sizes = [draw(st.integers(1, 5)), *([width] * depth), draw(st.integers(2, 3))]
    skips = draw(st.lists(st.sampled_from(range(2, depth + 1)), min_size=1, unique=True))
    return fnann.MLP(sizes, hidden=hidden, output=output, residual=skips), loss


@settings(max_examples=8, deadline=None)
@given(case=residual_networks(), batch=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_the_skip_path_in_the_delta_recursion_equals_autodiff(case, batch, seed):
    net, loss = case
    with jax.enable_x64(True):
        params, x, y = problem(net, loss, batch, seed, jnp.float64)
        y_hat, trace = fnann.forward_trace(net, params, x)
        grads, deltas = fnann.backward_trace(net, params, trace, y, loss)
        _, auto = fnann.loss_and_grad(net, loss, "autodiff")(params, x, y)
        assert max_rel_error(grads, auto) < 1e-9
        loss_ = fnann.get_loss(loss)
        shifts = tuple(jnp.zeros_like(z) for z in trace.Z)
        dZ = jax.grad(lambda s: fnann.backprop.loss_value(net, loss_, *feedforward(net, params, x, s), y))(shifts)
        for l, (d, ref) in enumerate(zip(deltas, dZ), 1):  # δ^(l) = ∂L/∂Z^(l), the skip's path included
            assert max_rel_error(d, ref) < 1e-9, l
        a = np.asarray(x)  # the forward pass in numpy
        for l, (layer, act) in enumerate(zip(params, net.activations), 1):
            new = np.asarray(act.fn(jnp.asarray(a @ np.asarray(layer.W).T + np.asarray(layer.b))))
            a = a + new if l in net.residual else new
        np.testing.assert_allclose(np.asarray(y_hat), a, rtol=1e-12, atol=1e-14)
        report = fnann.check_grads(net, loss, params, x, y, n_fd=6, seed=seed)
        assert report.passed, report


def test_residual_true_takes_every_hidden_layer_as_wide_as_its_input():
    assert fnann.MLP([40, 100, 100, 10], residual=True).residual == (2,)  # MNIST-1D's baseline
    assert fnann.MLP([4, 8, 8, 6, 6, 3], residual=True).residual == (2, 4)
    assert fnann.MLP([4, 8, 8, 3], residual=[2, 2]).residual == (2,)
    assert fnann.MLP([4, 8, 3], residual=False) == fnann.MLP([4, 8, 3]) and fnann.MLP([4, 8, 3]).residual == ()
    assert repr(fnann.MLP([4, 8, 3])) == "MLP(sizes=(4, 8, 3), hidden='relu', output='softmax')"
    assert "residual=(2,)" in repr(fnann.MLP([4, 8, 8, 3], residual=True))
    assert fnann.MLP([4, 8, 8, 3], residual=True) != fnann.MLP([4, 8, 8, 3])


@pytest.mark.parametrize("residual, error, message", [
    (True, ValueError, "no hidden layer l >= 2"),
    ([1], ValueError, "layer 1 cannot have a skip.*only hidden layers 2..2"),
    ([3], ValueError, "layer 3 cannot have a skip"),
    ("2", TypeError, "residual must be True, False or a sequence"),
    ([True], TypeError, "layer numbers are ints"),
])
def test_a_skip_that_cannot_be_is_an_error_naming_residual(residual, error, message):
    with pytest.raises(error, match=message):
        fnann.MLP([4, 8, 5, 3], residual=residual)
    with pytest.raises(ValueError, match="A\\^\\(1\\) has 8 units and A\\^\\(2\\) 5"):
        fnann.MLP([4, 8, 5, 3], residual=[2])


def test_a_residual_network_round_trips_and_its_summary_counts_the_skip(tmp_path):
    net = fnann.MLP([3, 4, 4, 2], residual=True)
    params = fnann.init(jax.random.key(0), net)
    fnann.save(tmp_path / "c.npz", net, params)
    assert fnann.load(tmp_path / "c.npz").net == net
    s = fnann.summary(net)
    assert s.layers[1].activation == "relu + skip" and s.layers[1].flops == 2 * 16 + 4 + 4
    assert s.flops == fnann.summary(fnann.MLP([3, 4, 4, 2])).flops + 4


def test_the_command_line_builds_records_and_explains_the_skip(tmp_path, capsys):
    args = ["--data", "xor", "--hidden-sizes", "8,8", "--epochs", "2", "--no-gradcheck", "--no-plot", "--no-progress",
            "--no-cache", "--out", str(tmp_path)]
    assert cli.main(["train", *args, "--residual"]) == 0
    assert "2-8-8-2 relu/softmax, skips at layers 2" in capsys.readouterr().out
    ck = fnann.load(tmp_path / "checkpoint.npz")
    assert ck.net.residual == (2,) and ck.meta["run"]["residual"] is True
    assert cli.main(["train", "--resume", "--epochs", "1", *args[args.index("--no-gradcheck"):]]) == 0
    assert fnann.load(tmp_path / "checkpoint.npz").net.residual == (2,)
    assert cli.main(["explain", "--sizes", "2,3,3,2", "--residual", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "A^(2) = A^(1) + sigmoid(Z^(2))" in out and "(W^(2))ᵀ δ^(2) + ∂L/∂A^(2) = ∂L/∂A^(1)" in out
    assert cli.main(["gradcheck", "--sizes", "3,5,5,2", "--residual"]) == 0
