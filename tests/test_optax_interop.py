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


# --- the compiled-epoch cache keys an optax transform by what it computes (fingerprint) ---

def epoch_misses():
    return fnann.cache_info()["fnann.train.compiled_epoch"].misses


def fit_once(opt, seed=0):
    net, params, x, y = problem(seed)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    return fnann.fit(net, "cross_entropy", opt, params, x.astype(np.float32), y,
                     key=jax.random.key(0), epochs=2, batch_size=16)[0]


def test_a_fresh_equal_optax_transform_per_fit_compiles_once():
    fnann.clear_caches(jax_caches=False)
    for make in (lambda: optax.adam(1e-3),
                 lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3, mask=weights_only)),
                 lambda: optax.adam(optax.cosine_decay_schedule(1e-3, 100))):
        before = epoch_misses()
        for _ in range(3):
            fit_once(make())
        assert epoch_misses() - before == 1, make()


def test_different_optax_transforms_get_their_own_epoch_and_train_as_alone():
    makes = [lambda: optax.adam(1e-3), lambda: optax.adam(2e-3), lambda: optax.sgd(1e-3),
             lambda: optax.adam(optax.cosine_decay_schedule(1e-3, 3)), lambda: optax.sgd(1e-3, momentum=0.9),
             lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3)),
             lambda: optax.chain(optax.clip_by_global_norm(0.5), optax.adam(1e-3)),
             lambda: optax.adam(optax.cosine_decay_schedule(1e-3, 100))]
    keys = [fnann.optim.as_optimizer(make()) for make in makes]
    assert len(set(keys)) == len(makes) and len({hash(k) for k in keys}) == len(makes)
    fnann.clear_caches(jax_caches=False)
    trained = makes[:3]  # (compiling the others too would only take longer)
    together = [fit_once(make()) for make in trained]  # one cache, every transform in it
    assert epoch_misses() == len(trained)
    for make, params in zip(trained, together):
        fnann.clear_caches(jax_caches=False)
        assert_trees_close(fit_once(make()), params, rtol=1e-6)


def test_fingerprint_keys_by_value_only_what_cannot_change():
    from fnann.optim.base import fingerprint

    def closing_over(value):
        return lambda g: g * value

    def same(a, b):
        return fingerprint(closing_over(a)) == fingerprint(closing_over(b))

    assert same(1e-3, 1e-3) and same((1, "a"), (1, "a")) and same(jnp.arange(3.0), jnp.arange(3.0))
    assert not same(1e-3, 2e-3) and not same(1, 1.0) and not same(1, True)
    assert not same(jnp.arange(3.0), jnp.arange(3)) and not same(jnp.arange(3.0), jnp.arange(1.0, 4.0))
    frozen, also = np.arange(3.0), np.arange(3.0)
    frozen.flags.writeable = also.flags.writeable = False
    assert same(frozen, also) and not same(frozen, np.arange(3.0))  # read-only: by value
    # what can change after being keyed, or is unknown or large, is keyed by identity
    for value, equal in (([1], [1]), ({"a": 1}, {"a": 1}), (np.arange(3.0), np.arange(3.0)),
                         (object(), object()), (jnp.zeros(1 << 15), jnp.zeros(1 << 15))):
        assert same(value, value) and not same(value, equal)

    def recursive():
        def f(n):
            return f(n - 1) if n else 0
        return f
    assert fingerprint(recursive()) != fingerprint(recursive())  # a cycle: identity, and it ends
