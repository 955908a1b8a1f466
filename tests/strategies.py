"""Hypothesis strategies shared by the tests: architectures, batches and seeds.

Arrays are drawn from a hypothesis-drawn *seed* rather than element by element, so
shrinking stays cheap and values stay in a sane range.
"""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

import fnann

HIDDEN = ("sigmoid", "tanh", "relu")
# (output activation, loss): the pairs the foundation issue names.
HEADS = (
    ("softmax", "cross_entropy"),
    ("sigmoid", "binary_cross_entropy"),
    ("identity", "mse"),
    ("sigmoid", "mse"),
    ("tanh", "mse"),
)

seeds = st.integers(0, 2**31 - 1)


@st.composite
def architectures(draw, max_depth=4, max_width=33):
    """An MLP of depth 1..max_depth with widths 1..max_width, a hidden activation and a head."""
    depth = draw(st.integers(1, max_depth))
    output, loss = draw(st.sampled_from(HEADS))
    n_out_min = 2 if output == "softmax" else 1
    sizes = [draw(st.integers(1, max_width)) for _ in range(depth)]
    sizes.append(draw(st.integers(n_out_min, max(n_out_min, min(max_width, 10)))))
    hidden = draw(st.sampled_from(HIDDEN))
    return fnann.MLP(sizes, hidden=hidden, output=output), loss


def problem(net, loss, batch, seed, dtype=jnp.float32, bias_scale=0.1):
    """Random params (with non-zero biases, so no unit sits exactly on a ReLU kink), x and y.

    W comes from ``fnann.init`` (one compiled program); biases, x and y are drawn on the host
    with numpy and moved with ``device_put``, so a new shape compiles no eager random ops.
    """
    rng = np.random.default_rng(seed)
    params = tuple(_layer(p, rng, dtype, bias_scale) for p in fnann.init(jax.random.key(seed), net, dtype))
    x = _device(rng.standard_normal((batch, net.n_in)), dtype)
    y = targets(rng, loss, batch, net.n_out, dtype)
    return params, x, y


def _layer(p, rng, dtype, bias_scale):
    """Dense: b drawn; Normed (a normalized layer): γ = 1 + 0.3 N(0, 1) and β = bias_scale N(0, 1)."""
    if isinstance(p, fnann.Normed):
        return fnann.Normed(p.W, _device(1 + 0.3 * rng.standard_normal(p.gamma.shape), dtype),
                            _device(bias_scale * rng.standard_normal(p.beta.shape), dtype))
    return fnann.Dense(p.W, _device(bias_scale * rng.standard_normal(p.b.shape), dtype))


def _device(a, dtype):
    return jax.device_put(np.asarray(a, np.dtype(dtype)))


def targets(rng, loss, batch, n_out, dtype=jnp.float32):
    """Integer labels for cross-entropy, {0, 1} for binary cross-entropy, reals for MSE."""
    if loss == "cross_entropy":
        return _device(rng.integers(0, n_out, batch), np.int32)
    if loss == "binary_cross_entropy":
        return _device(rng.random((batch, n_out)) < 0.5, dtype)
    return _device(rng.standard_normal((batch, n_out)), dtype)


def max_rel_error(a_tree, b_tree):
    """max |a - b| / max |b| over the whole tree (the gradient's scale)."""
    a = np.concatenate([np.ravel(np.asarray(l, np.float64)) for l in jax.tree.leaves(a_tree)])
    b = np.concatenate([np.ravel(np.asarray(l, np.float64)) for l in jax.tree.leaves(b_tree)])
    scale = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else float(np.max(np.abs(a - b)))


def training_pass(net, loss):
    """One jitted program for a drawn net's training pass: ``(params, x, y, key) -> (ŷ, trace,
    manual grads, deltas, L, jax.grad's grads, jax.grad's ∂L/∂Z^(l))``, the last by shifts s^(l)
    added to each Z^(l) (at 0) with the trace's dropout masks fixed."""
    loss_ = fnann.get_loss(loss)

    @jax.jit
    def everything(params, x, y, key):
        y_hat, trace = fnann.forward_trace(net, params, x, key=key)
        grads, deltas = fnann.backward_trace(net, params, trace, y, loss_)
        value, auto = fnann.loss_and_grad(net, loss_, "autodiff")(params, x, y, key)
        shifts = tuple(jnp.zeros_like(z) for z in trace.Z)
        dZ = jax.grad(lambda s: fnann.backprop.loss_value(
            net, loss_, *fnann.mlp.feedforward(net, params, x, s, masks=trace.M), y))(shifts)
        return y_hat, trace, grads, deltas, value, auto, dZ

    return everything
