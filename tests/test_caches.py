"""fnann's caches of compiled functions: a fresh but equal optimizer reuses the compiled epoch,
the caches are bounded and listed, and ``clear_caches`` empties them."""

import jax
import jax.numpy as jnp
import numpy as np

import fnann


def _problem():
    net = fnann.MLP([3, 4, 2])
    x = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    return net, fnann.init(jax.random.key(0), net), x, y


def test_fresh_but_equal_optimizers_compile_the_epoch_once():
    """100 fit calls, each with a new chain(add_decayed_weights, adam) as the CLI builds it:
    one miss of the epoch cache and one trace of the epoch (counted by a tracing side effect)."""
    net, params, x, y = _problem()
    fnann.clear_caches(jax_caches=False)
    traces = []
    loss = fnann.Loss(*fnann.cross_entropy)  # an equal copy of the loss: hashed by its fields
    real = loss.fn_from_logits
    counting = loss._replace(fn_from_logits=lambda z, y: (traces.append(1), real(z, y))[1])
    for _ in range(100):
        opt = fnann.chain(fnann.add_decayed_weights(1e-3), fnann.adam(1e-3))
        fnann.fit(net, counting, opt, params, x, y, key=jax.random.key(1), epochs=1, batch_size=4)
    info = fnann.cache_info()["fnann.train.compiled_epoch"]
    assert info.misses == 1 and info.hits == 99
    assert 0 < len(traces) <= 3  # traced once per distinct step shape (full batches, remainder)


def test_caches_are_bounded_listed_and_cleared():
    net, params, x, y = _problem()
    info = fnann.cache_info()
    assert {"fnann.train.compiled_epoch", "fnann.inference._chunk_fns", "fnann.sweep.compiled_many"} <= set(info)
    assert all(i.maxsize is not None and i.maxsize <= 64 for i in info.values())
    fnann.predict(net, params, x)
    assert fnann.cache_info()["fnann.inference._chunk_fns"].currsize >= 1
    fnann.clear_caches()
    assert all(i.currsize == 0 for i in fnann.cache_info().values())
    np.testing.assert_allclose(fnann.predict(net, params, x), fnann.forward(net, params, jnp.asarray(x)),
                               rtol=1e-6)
