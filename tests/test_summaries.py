"""fnann.summary: parameter and FLOP counts against hand counts, the real params and XLA's
own cost analysis; the printed table; bad input."""

import jax
import jax.numpy as jnp
import pytest

import fnann
from fnann.summaries import summary


def test_counts_equal_hand_counts_for_the_digits_network():
    s = fnann.summary(fnann.MLP([64, 128, 64, 10]))
    # hand counts: params n_out n_in + n_out; FLOPs 2 n_in n_out + n_out
    assert [L.params for L in s.layers] == [64 * 128 + 128, 128 * 64 + 64, 64 * 10 + 10]
    assert [L.flops for L in s.layers] == [2 * 64 * 128 + 128, 2 * 128 * 64 + 64, 2 * 64 * 10 + 10]
    assert (s.params, s.flops, s.nbytes) == (17226, 34250, 4 * 17226)
    assert [L.activation for L in s.layers] == ["relu", "relu", "softmax"]
    assert [(L.W_shape, L.b_shape) for L in s.layers] == [((128, 64), (128,)), ((64, 128), (64,)),
                                                          ((10, 64), (10,))]


def test_counts_equal_the_params_and_xla_cost_analysis():
    net = fnann.MLP([5, 7, 3, 2], hidden="tanh", output="sigmoid")
    params = tuple(fnann.Dense(jnp.zeros((n_out, n_in), jnp.bfloat16), jnp.zeros(n_out, jnp.bfloat16))
                   for n_in, n_out in zip(net.sizes[:-1], net.sizes[1:]))
    s = summary(net, params)
    assert s.params == sum(x.size for x in jax.tree.leaves(params)) and s.dtype == jnp.bfloat16
    assert s.nbytes == sum(x.nbytes for x in jax.tree.leaves(params))
    for layer, p in zip(s.layers, params):  # XLA's count of Z = W a + b for one example
        cost = jax.jit(fnann.dense_forward).lower(p, jnp.ones((1, layer.n_in), p.W.dtype)).cost_analysis()
        assert layer.flops == cost["flops"]


def test_table_lists_every_layer_and_the_totals():
    text = str(fnann.summary(fnann.MLP([64, 128, 64, 10])))
    lines = text.splitlines()
    assert lines[0] == "MLP(sizes=(64, 128, 64, 10), hidden='relu', output='softmax')"
    assert lines[3].split() == ["1", "(batch,", "64)", "(batch,", "128)", "(128,", "64)", "(128,)",
                                "relu", "8,320", "16,512"]
    assert lines[-2].split() == ["total", "17,226", "34,250"]
    assert lines[-1] == "17,226 parameters (67.3 KiB in float32), 34,250 FLOPs per example forward"


def test_bad_input():
    net = fnann.MLP([3, 2])
    with pytest.raises(TypeError, match="net must be an fnann.MLP"):
        fnann.summary((3, 2))
    wrong = (fnann.Dense(jnp.zeros((2, 4)), jnp.zeros(2)),)
    with pytest.raises(ValueError):
        fnann.summary(net, wrong)
