"""Issue 19.16: check_grads catches every bug injected into the hand-derived backward pass,
however small its gradients, and passes the correct one on the same random networks.

Each mutant replaces one piece of ``fnann.backprop`` (or the activation's backward rule) for
the duration of a test; fnann's compiled-check cache is emptied around it so that the mutant
is what gets traced. Float64 throughout; a relative error of 1e-6 must be caught.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from fnann import backprop
from fnann.caches import clear_caches
from strategies import problem

# (sizes, hidden, output, loss); each has two equal square hidden layers (W^(2), W^(3)) so
# the transposed and swapped-layer mutants keep their shapes.
NETS = [
    ((3, 4, 4, 4, 2), "tanh", "softmax", "cross_entropy"),
    ((2, 5, 5, 5, 3), "sigmoid", "identity", "mse"),
    ((4, 3, 3, 3, 1), "relu", "sigmoid", "binary_cross_entropy"),
    ((3, 4, 4, 4, 2), "gelu", "identity", "mse"),
]
SEEDS = range(6)  # random networks per architecture (one compilation serves them all)
TINY = 1 + 1e-6
_PROBLEMS = {}


def _problem(k, seed):
    """(params, x, y) in float64 for NETS[k]; every third seed has W^(L) scaled by 1e-4, so
    every other layer's gradients are small (the scale at which a fixed atol hid bugs)."""
    if (k, seed) not in _PROBLEMS:
        sizes, hidden, output, loss = NETS[k]
        params, x, y = problem(fnann.MLP(sizes, hidden, output), loss, 8, 100 * k + seed,
                               dtype=jnp.float64, bias_scale=1e-3 if seed % 2 else 0.1)
        if seed % 3 == 2:
            params = (*params[:-1], params[-1]._replace(W=1e-4 * params[-1].W))
        _PROBLEMS[k, seed] = params, x, y
    return _PROBLEMS[k, seed]


def reports(which=range(len(NETS)), hidden_rule=None):
    """check_grads on NETS[k] for k in ``which``, every seed; ``hidden_rule(act)`` may replace
    the hidden activation by a mutant."""
    clear_caches(jax_caches=False)
    out = []
    with jax.enable_x64(True):
        for k in which:
            sizes, hidden, output, loss = NETS[k]
            act = fnann.get_activation(hidden)
            net = fnann.MLP(sizes, hidden=hidden_rule(act) if hidden_rule else act, output=output)
            for seed in SEEDS:
                params, x, y = _problem(k, seed)
                out.append((net, seed, fnann.check_grads(net, loss, params, x, y, n_fd=8, seed=seed)))
    clear_caches(jax_caches=False)
    return out


def pair(i):
    """Two of the architectures for mutant number i, in turn, so that every architecture meets
    many mutants at one compilation per mutant and architecture (the suite's time)."""
    return (i % len(NETS), (i + 1) % len(NETS))


def layer_counter(net_layers):
    """Calls to dense_backward during one trace run l = L, ..., 1: the layer of each call."""
    calls = [0]

    def layer():
        L = net_layers()
        l = L - calls[0] % L
        calls[0] += 1
        return l
    return layer


@pytest.fixture
def current_L(monkeypatch):
    """The depth of the network being traced (read by the dense_backward mutants)."""
    box = {}
    real = backprop.backpropagate

    def tracked(net, *args, **kwargs):
        box["L"] = net.n_layers
        return real(net, *args, **kwargs)
    monkeypatch.setattr(backprop, "backpropagate", tracked)
    return lambda: box["L"]


def dense_mutant(change):
    """A dense_backward whose (dW, db, da_prev) of layer l goes through change(l, dW, db, da)."""
    real = backprop.dense_backward

    def make(current_L):
        layer = layer_counter(current_L)

        def mutant(params, a_prev, delta, precision=None):
            g, da = real(params, a_prev, delta, precision)
            dW, db, da = change(layer(), g.W, g.b, da)
            return fnann.Dense(dW, db), da
        return mutant
    return make


def _square_T(W):
    return W.T if W.shape[0] == W.shape[1] else W


DENSE_MUTANTS = {
    # One layer's gradient 1e-6 off, the layer cycling with the network depth (l = 1 .. L).
    "dW of layer 1 x (1+1e-6)": lambda l, dW, db, da: (dW * TINY if l == 1 else dW, db, da),
    "dW of layer 3 x (1+1e-6)": lambda l, dW, db, da: (dW * TINY if l == 3 else dW, db, da),
    "db of layer 2 x (1+1e-6)": lambda l, dW, db, da: (dW, db * TINY if l == 2 else db, da),
    "db of layer 4 x (1+1e-6)": lambda l, dW, db, da: (dW, db * TINY if l == 4 else db, da),
    "delta^(1) x (1+1e-6)": lambda l, dW, db, da: (dW, db, da * TINY if l == 2 else da),
    "delta^(3) x (1+1e-6)": lambda l, dW, db, da: (dW, db, da * TINY if l == 4 else da),
    "dW of layer 2 transposed": lambda l, dW, db, da: (_square_T(dW) if l == 2 else dW, db, da),
    "db of layer 3 sign flipped": lambda l, dW, db, da: (dW, -db if l == 3 else db, da),
    "dW of layer 1 / batch size": lambda l, dW, db, da: (dW / 8 if l == 1 else dW, db, da),
}


@pytest.mark.parametrize("i, name", list(enumerate(DENSE_MUTANTS)))
def test_dense_backward_mutants_are_caught(i, name, monkeypatch, current_L):
    monkeypatch.setattr(backprop, "dense_backward", dense_mutant(DENSE_MUTANTS[name])(current_L))
    missed = [(net.sizes, seed) for net, seed, r in reports([i % len(NETS)]) if r.passed]
    assert not missed, f"{name} passed on {missed}"


def test_output_delta_1e6_off_is_caught(monkeypatch):
    real = backprop.output_delta
    monkeypatch.setattr(backprop, "output_delta", lambda *a, **k: real(*a, **k) * TINY)
    missed = [(net.sizes, seed) for net, seed, r in reports(pair(1)) if r.passed]
    assert not missed


def _off_by_one(net, params, trace, y, loss, fused=True):
    """The delta recursion with δ^(l) = (δ^(l+1) W^(l)) ⊙ σ'(Z^(l)): W of the wrong layer."""
    L, sigma, Z, A = net.n_layers, net.activations, trace.Z, trace.A
    delta = [None] * L
    delta[L - 1] = backprop.output_delta(sigma[L - 1], loss, Z[L - 1], A[L - 1 + 1], y, fused)
    for l in range(L - 2, -1, -1):
        W = params[l + 1].W if params[l].W.shape != params[l + 1].W.shape else params[l].W
        delta[l] = sigma[l].backward(Z[l], delta[l + 1] @ W)
    grads = tuple(fnann.Dense(d.T @ a, jnp.sum(d, axis=0)) for d, a in zip(delta, A))
    return grads, tuple(delta)


def test_delta_with_the_wrong_layers_W_is_caught(monkeypatch):
    monkeypatch.setattr(backprop, "backpropagate", _off_by_one)
    assert not any(r.passed for _, _, r in reports(pair(2)))


def test_gradients_of_two_layers_swapped_are_caught(monkeypatch):
    real = backprop.backpropagate

    def swapped(*args, **kwargs):
        grads, deltas = real(*args, **kwargs)
        return (grads[0], grads[2], grads[1], *grads[3:]), deltas
    monkeypatch.setattr(backprop, "backpropagate", swapped)
    assert not any(r.passed for _, _, r in reports(pair(3)))


def _wrong_rule(act, deriv):
    return act._replace(name=act.name + "_mutant", backward=lambda z, da: da * deriv(z))


@pytest.mark.parametrize("name, rule", [
    ("sigma' replaced by sigma", lambda act: _wrong_rule(act, act.fn)),
    ("sigma' of Z written as the formula in A (tanh: 1 - z^2, sigmoid: z (1 - z))",
     lambda act: _wrong_rule(act, {"tanh": lambda z: 1 - z ** 2, "sigmoid": lambda z: z * (1 - z)}[act.name])),
    ("sigma' sign flipped", lambda act: act._replace(name=act.name + "_mutant",
                                                     backward=lambda z, da: -act.backward(z, da))),
])
def test_wrong_activation_derivatives_are_caught(name, rule):
    which = {"formula": [k for k, n in enumerate(NETS) if n[1] in ("tanh", "sigmoid")],
             "flipped": pair(4)}.get(name.split()[-1] if "flipped" in name else "formula" * ("in A" in name),
                                     range(len(NETS)))
    missed = [(net.sizes, seed) for net, seed, r in reports(which, rule) if r.passed]
    assert not missed, f"{name} passed on {missed}"


def test_the_correct_backward_passes_on_the_same_networks():
    failed = [(net.sizes, seed, str(r)) for net, seed, r in reports() if not r.passed]
    assert not failed, failed[0][2] if failed else ""
