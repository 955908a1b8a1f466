"""optax in: fit and train_step take optax's transforms (any object with init/update) and
train exactly as the fnann equivalent, in float64. optax is an optional test dependency."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from fnann.optim import weights_only

optax = pytest.importorskip("optax")


def problem(seed=0):
    net = fnann.MLP([5, 8, 3], hidden="tanh", output="softmax")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 5))
    y = np.argmax(x @ rng.normal(size=(5, 3)), axis=1)
    params = tuple(fnann.Dense(jnp.asarray(rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)), jnp.zeros(n_out))
                   for n_in, n_out in zip(net.sizes[:-1], net.sizes[1:]))
    return net, params, x, y


def assert_trees_close(a, b, rtol=1e-12):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=rtol * np.max(np.abs(v)))


def test_train_step_with_optax_adam_equals_fnann_adam():
    with jax.enable_x64(True):
        net, params, x, y = problem()
        ours = fnann.train_step(net, "cross_entropy", fnann.adam(1e-2, b1=0.8))
        theirs = fnann.train_step(net, "cross_entropy", optax.adam(1e-2, b1=0.8))

        @jax.jit
        def both(p, s, q, r, x, y):
            return ours(p, s, x, y), theirs(q, r, x, y)

        p, s = params, fnann.adam(1e-2).init(params)
        q, r = params, optax.adam(1e-2).init(params)
        for k in range(20):
            batch = slice(8 * (k % 5), 8 * (k % 5) + 8)
            (p, s, loss_p), (q, r, loss_q) = both(p, s, q, r, x[batch], y[batch])
            np.testing.assert_allclose(float(loss_p), float(loss_q), rtol=1e-12)
        assert_trees_close(p, q)
        assert float(loss_p) < 0.9 * float(both(params, s, params, r, x[:8], y[:8])[0][2])


def test_fit_with_an_optax_chain_equals_the_fnann_chain_and_resumes():
    with jax.enable_x64(True):
        net, params, x, y = problem(1)
        key = jax.random.key(2)
        ours = fnann.chain(fnann.clip_by_global_norm(1.0),
                           fnann.add_decayed_weights(1e-3, mask=weights_only), fnann.adam(1e-2))
        theirs = optax.chain(optax.clip_by_global_norm(1.0),
                             optax.add_decayed_weights(1e-3, mask=weights_only), optax.adam(1e-2))
        fit = dict(key=key, batch_size=16)
        p, history = fnann.fit(net, "cross_entropy", ours, params, x, y, epochs=4, **fit)
        q, their_history, state = fnann.fit(net, "cross_entropy", theirs, params, x, y, epochs=2,
                                            return_state=True, **fit)
        q, rest = fnann.fit(net, "cross_entropy", theirs, q, x, y, epochs=2, opt_state=state.opt_state,
                            initial_epoch=state.epoch, **fit)
        assert_trees_close(p, q)
        np.testing.assert_allclose(history["loss"], their_history["loss"] + rest["loss"], rtol=1e-12)
        assert history["loss"][-1] < history["loss"][0]
