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
    """Random params (with non-zero biases, so no unit sits exactly on a ReLU kink), x and y."""
    k_init, k_b, k_x, k_y = jax.random.split(jax.random.key(seed), 4)
    params = fnann.init(k_init, net, dtype)
    bkeys = jax.random.split(k_b, len(params))
    params = tuple(
        fnann.Dense(p.W, bias_scale * jax.random.normal(k, p.b.shape, dtype))
        for p, k in zip(params, bkeys)
    )
    x = jax.random.normal(k_x, (batch, net.n_in), dtype)
    y = targets(k_y, loss, batch, net.n_out, dtype)
    return params, x, y


def targets(key, loss, batch, n_out, dtype=jnp.float32):
    """Integer labels for cross-entropy, {0, 1} for binary cross-entropy, reals for MSE."""
    if loss == "cross_entropy":
        return jax.random.randint(key, (batch,), 0, n_out)
    if loss == "binary_cross_entropy":
        return jax.random.bernoulli(key, 0.5, (batch, n_out)).astype(dtype)
    return jax.random.normal(key, (batch, n_out), dtype)


def max_rel_error(a_tree, b_tree):
    """max |a - b| / max |b| over the whole tree (the gradient's scale)."""
    a = np.concatenate([np.ravel(np.asarray(l, np.float64)) for l in jax.tree.leaves(a_tree)])
    b = np.concatenate([np.ravel(np.asarray(l, np.float64)) for l in jax.tree.leaves(b_tree)])
    scale = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else float(np.max(np.abs(a - b)))
