"""Tests for fnann.optim: each optimizer against a numpy transcription of DESIGN.md's formula,
by hand, under jit/vmap/scan, across dtypes, on a quadratic, and on bad input."""

import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fnann
from fnann import schedules
from fnann.optim import (
    AdamState,
    EmptyState,
    MomentumState,
    Optimizer,
    RMSPropState,
    SGDState,
    adam,
    apply_updates,
    chain,
    clip_by_global_norm,
    global_norm,
    momentum,
    rmsprop,
    sgd,
)

seeds = st.integers(0, 2**31 - 2)


class Layer(NamedTuple):
    W: Any
    b: Any


def make_tree(leaf):
    """A nested pytree: a dict holding a NamedTuple, a list and a scalar leaf."""
    return {"a": Layer(leaf((3, 4)), leaf((3,))), "b": [leaf((2,))], "c": leaf(())}


def random_tree(seed, dtype=jnp.float32, lead=()):
    rng = np.random.default_rng(seed)
    return make_tree(lambda shape: jnp.asarray(rng.normal(size=lead + shape), dtype))


# ---------------------------------------------------------------------------------------
# numpy transcriptions of DESIGN.md, on a list of leaves, fed a stream of gradients.
# stream[k] is the list of gradient leaves of update k; each returns the list of updates.
# ---------------------------------------------------------------------------------------


def _lr(lr, k):
    return lr(k) if callable(lr) else lr


def np_sgd(stream, lr):
    return [[-_lr(lr, k) * g for g in gs] for k, gs in enumerate(stream)]


def np_momentum(stream, lr, gamma=0.9):
    v, out = [0.0 * g for g in stream[0]], []
    for k, gs in enumerate(stream):
        v = [gamma * v_ + _lr(lr, k) * g for v_, g in zip(v, gs)]  # v_t = gamma v + eta g
        out.append([-v_ for v_ in v])  # theta <- theta - v_t
    return out


def np_rmsprop(stream, lr, beta=0.9, eps=1e-8):
    E, out = [0.0 * g for g in stream[0]], []
    for k, gs in enumerate(stream):
        E = [beta * e + (1 - beta) * g**2 for e, g in zip(E, gs)]
        out.append([-_lr(lr, k) * g / np.sqrt(e + eps) for e, g in zip(E, gs)])
    return out


def np_adam(stream, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    m, v, out = [0.0 * g for g in stream[0]], [0.0 * g for g in stream[0]], []
    for k, gs in enumerate(stream):
        t = k + 1
        m = [b1 * m_ + (1 - b1) * g for m_, g in zip(m, gs)]
        v = [b2 * v_ + (1 - b2) * g**2 for v_, g in zip(v, gs)]
        out.append(
            [
                -_lr(lr, k) * (m_ / (1 - b1**t)) / (np.sqrt(v_ / (1 - b2**t)) + eps)
                for m_, v_ in zip(m, v)
            ]
        )
    return out


def hyperparameters(name, width):
    """Keyword arguments for optimizer `name`, exactly representable as floats of `width` bits.

    For float32 the reference then sees the very gamma/beta the optimizer multiplies by:
    float32(0.99) is 1e-8 off 0.99, which momentum amplifies by 1/(1 - gamma)^2 ~ 1e4.
    """
    dtype = {32: np.float32, 64: np.float64}[width]
    floats = lambda lo, hi: st.floats(float(dtype(lo)), float(dtype(hi)), width=width)  # noqa: E731
    lr, decay, eps = floats(1e-3, 1.0), floats(0.0, 0.99), floats(1e-8, 1e-3)
    return st.fixed_dictionaries(
        {
            "sgd": {"lr": lr},
            "momentum": {"lr": lr, "gamma": decay},
            "rmsprop": {"lr": lr, "beta": decay, "eps": eps},
            "adam": {"lr": lr, "b1": decay, "b2": floats(0.0, 0.9999), "eps": eps},
        }[name]
    )


# name -> (factory, numpy reference)
OPTIMIZERS = {
    "sgd": (sgd, np_sgd),
    "momentum": (momentum, np_momentum),
    "rmsprop": (rmsprop, np_rmsprop),
    "adam": (adam, np_adam),
}
NAMES = list(OPTIMIZERS)
# One default instance of each, for the structural tests.
DEFAULTS = {
    "sgd": sgd(0.1),
    "momentum": momentum(0.1, gamma=0.9),
    "rmsprop": rmsprop(0.01),
    "adam": adam(0.01),
    "clip+adam": chain(clip_by_global_norm(1.0), adam(0.01)),
}


def run_scan(opt, params, grads_stack):
    """Apply opt to a stream of gradients (leading axis = step); return updates and params."""

    def body(carry, grads):
        params, state = carry
        updates, state = opt.update(grads, state, params)
        return (apply_updates(params, updates), state), updates

    (params, _), updates = jax.lax.scan(body, (params, opt.init(params)), grads_stack)
    return updates, params


def check_against_numpy(name, kwargs, seed, dtype, rtol, atol, steps=120):
    """Every update of `steps` equals the numpy reference fed the same gradients, within
    rtol and an atol relative to the leaf's largest update; so do the final params."""
    factory, reference = OPTIMIZERS[name]
    params = random_tree(seed, dtype)
    grads = random_tree(seed + 1, dtype, lead=(steps,))
    updates, final = jax.jit(lambda p, g: run_scan(factory(**kwargs), p, g))(params, grads)

    stream_leaves = [np.asarray(g, np.float64) for g in jax.tree.leaves(grads)]
    stream = [[g[k] for g in stream_leaves] for k in range(steps)]
    expected = reference(stream, **kwargs)
    for i, got in enumerate(jax.tree.leaves(updates)):
        want = np.stack([expected[k][i] for k in range(steps)])
        scale = np.max(np.abs(want))
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol, atol * scale)
    # The params are a running sum of `steps` rounded additions: 10x the atol, relative to
    # the largest value along the trajectory (the final value may be a cancellation).
    for i, (p0, p1) in enumerate(zip(jax.tree.leaves(params), jax.tree.leaves(final))):
        path = np.asarray(p0, np.float64) + np.cumsum([expected[k][i] for k in range(steps)], 0)
        scale = max(np.max(np.abs(path)), np.max(np.abs(np.asarray(p0))))
        np.testing.assert_allclose(np.asarray(p1, np.float64), path[-1], rtol, 10 * atol * scale)


@pytest.mark.parametrize("name", NAMES)
@given(seed=seeds, data=st.data())
def test_matches_numpy_float32(name, seed, data):
    kwargs = data.draw(hyperparameters(name, width=32), label="hyperparameters")
    check_against_numpy(name, kwargs, seed, jnp.float32, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
@given(seed=seeds, data=st.data())
def test_matches_numpy_float64(name, seed, data):
    kwargs = data.draw(hyperparameters(name, width=64), label="hyperparameters")
    with jax.enable_x64(True):
        check_against_numpy(name, kwargs, seed, jnp.float64, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------
# One step by hand.
# ---------------------------------------------------------------------------------------


def test_sgd_by_hand():
    params = {"w": jnp.array([1.0, 2.0])}
    opt = sgd(0.1)
    updates, state = opt.update({"w": jnp.array([0.5, -1.0])}, opt.init(params), params)
    # -0.1 * [0.5, -1] = [-0.05, 0.1]; params [0.95, 2.1]
    np.testing.assert_allclose(updates["w"], [-0.05, 0.1], rtol=1e-6)
    np.testing.assert_allclose(apply_updates(params, updates)["w"], [0.95, 2.1], rtol=1e-6)
    assert isinstance(state, SGDState) and int(state.step) == 1


def test_momentum_by_hand():
    opt = momentum(0.1, gamma=0.9)
    state = opt.init({"w": jnp.zeros(1)})
    u1, state = opt.update({"w": jnp.array([1.0])}, state)
    u2, state = opt.update({"w": jnp.array([2.0])}, state)
    # v1 = 0.9 * 0 + 0.1 * 1 = 0.1;  v2 = 0.9 * 0.1 + 0.1 * 2 = 0.29 (lr inside v)
    np.testing.assert_allclose(u1["w"], [-0.1], rtol=1e-6)
    np.testing.assert_allclose(u2["w"], [-0.29], rtol=1e-6)
    np.testing.assert_allclose(state.v["w"], [0.29], rtol=1e-6)
    assert isinstance(state, MomentumState) and int(state.step) == 2


def test_rmsprop_by_hand():
    opt = rmsprop(0.01, beta=0.9, eps=1e-8)
    updates, state = opt.update({"w": jnp.array([2.0])}, opt.init({"w": jnp.zeros(1)}))
    # E = 0.9 * 0 + 0.1 * 2^2 = 0.4;  update = -0.01 * 2 / sqrt(0.4 + 1e-8) = -0.0316227762
    np.testing.assert_allclose(state.E["w"], [0.4], rtol=1e-6)
    np.testing.assert_allclose(updates["w"], [-0.0316227762], rtol=1e-6)
    assert isinstance(state, RMSPropState) and int(state.step) == 1


def test_rmsprop_eps_is_inside_the_root():
    # beta = 0: E = g^2 = 1e-8 = eps, so g / sqrt(E + eps) = 1e-4 / sqrt(2e-8) = 1/sqrt(2);
    # eps outside the root would give 1e-4 / (1e-4 + 1e-8) = 0.9999.
    opt = rmsprop(1.0, beta=0.0, eps=1e-8)
    updates, _ = opt.update({"w": jnp.array([1e-4])}, opt.init({"w": jnp.zeros(1)}))
    np.testing.assert_allclose(updates["w"], [-1 / math.sqrt(2)], rtol=1e-6)


def test_adam_by_hand():
    opt = adam(lr=0.1, b1=0.9, b2=0.999, eps=1e-8)
    state = opt.init({"w": jnp.zeros(1)})
    u1, state = opt.update({"w": jnp.array([0.5])}, state)
    u2, state = opt.update({"w": jnp.array([-1.0])}, state)
    # t=1: m = 0.05, v = 0.00025, m_hat = 0.5, v_hat = 0.25,
    #      update = -0.1 * 0.5 / (0.5 + 1e-8) = -0.099999998
    # t=2: m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975,
    #      m_hat = -0.055 / 0.19 = -0.28947368, v_hat = 0.00124975 / 0.001999 = 0.62518759,
    #      update = -0.1 * -0.28947368 / (0.79068805 + 1e-8) = 0.036610352
    np.testing.assert_allclose(u1["w"], [-0.099999998], rtol=1e-6)
    np.testing.assert_allclose(u2["w"], [0.036610352], rtol=1e-6)
    np.testing.assert_allclose(state.m["w"], [-0.055], rtol=1e-6)
    np.testing.assert_allclose(state.v["w"], [0.00124975], rtol=1e-6)
    assert isinstance(state, AdamState) and int(state.step) == 2


def test_adam_eps_is_outside_the_root():
    # b1 = b2 = 0: m_hat = g, v_hat = g^2, so g / (|g| + eps) = 1e-4 / 2e-4 = 0.5;
    # eps inside the root would give 1e-4 / sqrt(1e-8 + 1e-4) = 0.00995.
    opt = adam(lr=1.0, b1=0.0, b2=0.0, eps=1e-4)
    updates, _ = opt.update({"w": jnp.array([1e-4])}, opt.init({"w": jnp.zeros(1)}))
    np.testing.assert_allclose(updates["w"], [-0.5], rtol=1e-6)


# ---------------------------------------------------------------------------------------
# Transformations: jit, vmap, scan; dtypes; purity; retracing.
# ---------------------------------------------------------------------------------------


def three_steps(opt, params, grads_list, update):
    state, out = opt.init(params), []
    for grads in grads_list:
        updates, state = update(grads, state, params)
        params = apply_updates(params, updates)
        out.append((updates, state, params))
    return out


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_jit_equals_eager(name):
    opt = DEFAULTS[name]
    params = random_tree(0)
    grads_list = [random_tree(k + 1) for k in range(3)]
    eager = three_steps(opt, params, grads_list, opt.update)
    jitted = three_steps(opt, params, grads_list, jax.jit(opt.update))
    chex.assert_trees_all_close(eager, jitted, rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_equal_structs(opt.init(params), eager[-1][1])
    chex.assert_trees_all_equal(jax.jit(opt.init)(params), opt.init(params))


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_vmap_over_a_stack_equals_a_loop(name):
    opt, n = DEFAULTS[name], 3
    params = random_tree(0, lead=(n,))
    grads = [random_tree(k + 1, lead=(n,)) for k in range(2)]
    state = jax.vmap(opt.init)(params)
    for g in grads:
        updates, state = jax.vmap(opt.update)(g, state, params)

    for i in range(n):
        item = lambda tree: jax.tree.map(lambda x: x[i], tree)  # noqa: E731
        state_i = opt.init(item(params))
        for g in grads:
            updates_i, state_i = opt.update(item(g), state_i, item(params))
        chex.assert_trees_all_close(item(updates), updates_i, rtol=1e-6, atol=1e-7)
        chex.assert_trees_all_close(item(state), state_i, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_scan_over_steps_equals_a_loop(name):
    opt, steps = DEFAULTS[name], 20
    params = random_tree(0)
    grads = random_tree(1, lead=(steps,))
    updates, final = jax.jit(lambda p, g: run_scan(opt, p, g))(params, grads)
    state, p = opt.init(params), params
    for k in range(steps):
        u, state = opt.update(jax.tree.map(lambda x: x[k], grads), state, p)
        p = apply_updates(p, u)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[-1], updates), u, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(final, p, rtol=1e-5, atol=1e-6)


def _check_dtypes(opt, dtype):
    params = random_tree(0, dtype)
    state = opt.init(params)
    step = jax.jit(lambda g, s, p: opt.update(g, s, p))
    for k in range(3):
        updates, state = step(random_tree(k + 1, dtype), state, params)
        params = apply_updates(params, updates)
    for tree in (params, updates):
        assert all(x.dtype == dtype for x in jax.tree.leaves(tree))
    moment = jnp.promote_types(dtype, jnp.float32)  # moments never below float32
    for x in jax.tree.leaves(state):  # step counts in int32
        assert x.dtype == (jnp.int32 if x.shape == () and x.dtype.kind == "i" else moment)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(params))


@pytest.mark.parametrize("lr", ["float", "schedule"])
@pytest.mark.parametrize("name", list(DEFAULTS))
def test_dtype_preserved_float32_float16_bfloat16(name, lr):
    opt = DEFAULTS[name]
    if lr == "schedule":  # a float32 schedule must not promote bfloat16 parameters
        factory = OPTIMIZERS[name.split("+")[-1]][0]
        opt = factory(schedules.exponential_decay(0.01, 0.5, 10))
    for dtype in (jnp.float32, jnp.float16, jnp.bfloat16):
        _check_dtypes(opt, dtype)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_low_precision_zero_gradient_entries_stay_finite(name, dtype):
    """float16 rounds eps=1e-8 to 0: in the param dtype, Adam's m/(sqrt(v)+eps) would be 0/0
    wherever a gradient entry is exactly 0 (an all-zero input column). Moments in float32
    keep it 0, and the other entries match a float32 run rounded to the param dtype."""
    opt = OPTIMIZERS[name][0](1e-3)
    g = jnp.array([0.0, 1e-3, -2.0, 0.0], dtype)
    params = jnp.ones(4, dtype)
    state = opt.init(params)
    ref_state = opt.init(params.astype(jnp.float32))
    for _ in range(3):
        u, state = opt.update(g, state, params)
        ref_u, ref_state = opt.update(g.astype(jnp.float32), ref_state)
    assert u.dtype == dtype and bool(jnp.all(jnp.isfinite(u)))
    assert float(u[0]) == 0.0 and float(u[3]) == 0.0
    np.testing.assert_array_equal(np.asarray(u), np.asarray(ref_u.astype(dtype)))


def test_equal_configurations_compare_and_hash_equal():
    """A fresh but equal optimizer is the same configuration (so compiled epochs are reused)."""
    from fnann.optim import chain, clip_by_global_norm, momentum

    for make in (lambda: adam(1e-3), lambda: adam(lr=0.001, b1=0.9),
                 lambda: chain(clip_by_global_norm(1.0), momentum(0.1)),
                 lambda: sgd(schedules.cosine_decay(0.1, 100))):
        a, b = make(), make()
        assert a is not b and a == b and hash(a) == hash(b)
    assert adam(1e-3) != adam(1e-2) and adam(1e-3) != rmsprop(1e-3)
    assert sgd(schedules.cosine_decay(0.1, 100)) != sgd(schedules.cosine_decay(0.1, 200))
    f = lambda step: 0.1  # noqa: E731  (a plain callable: equal only to itself)
    assert sgd(f) == sgd(f) and sgd(f) != sgd(lambda step: 0.1)
    init, update = adam(1e-3)  # unpacks like optax's GradientTransformation
    assert callable(init) and callable(update)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_dtype_preserved_float64(name):
    with jax.enable_x64(True):
        _check_dtypes(DEFAULTS[name], jnp.float64)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_inputs_are_not_modified(name):
    opt = DEFAULTS[name]
    params = jax.tree.map(np.array, random_tree(0))
    grads = jax.tree.map(np.array, random_tree(1))
    state = jax.tree.map(np.array, opt.update(grads, opt.init(params), params)[1])
    before = jax.tree.map(np.copy, (params, grads, state))
    updates, _ = opt.update(grads, state, params)
    apply_updates(params, updates)
    jax.tree.map(np.testing.assert_array_equal, (params, grads, state), before)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_no_retrace_on_second_jitted_call(name):
    opt = DEFAULTS[name]

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return apply_updates(params, updates), state

    params = random_tree(0)
    state = opt.init(params)
    params, state = step(params, state, random_tree(1))
    params, state = step(params, state, random_tree(2))  # would raise on a second trace
    chex.clear_trace_counter()


# ---------------------------------------------------------------------------------------
# Convergence on a convex quadratic f(x) = 0.5 x^T A x - b^T x, x split over a pytree.
# ---------------------------------------------------------------------------------------

rng = np.random.default_rng(0)
Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
A = jnp.asarray(Q @ np.diag([1.0, 2.0, 3.0, 5.0, 10.0]) @ Q.T, jnp.float32)  # SPD, L = 10
B = jnp.asarray(rng.normal(size=5), jnp.float32)
X_STAR = np.linalg.solve(np.asarray(A, np.float64), np.asarray(B, np.float64))


@pytest.mark.parametrize(
    "opt",
    [
        sgd(0.1),
        momentum(0.02, gamma=0.9),
        rmsprop(schedules.cosine_decay(0.02, 1000)),
        adam(schedules.cosine_decay(0.1, 1000)),
        chain(clip_by_global_norm(1.0), adam(schedules.cosine_decay(0.1, 1000))),
    ],
    ids=["sgd", "momentum", "rmsprop", "adam", "clip+adam"],
)
@pytest.mark.usefixtures("exact_matmuls")  # A x - b exactly: the optimiser is under test, not the product
def test_minimises_a_convex_quadratic(opt):
    def grad(params):  # A x - b, split back into the tree
        x = jnp.concatenate([params["x"][0], params["x"][1]])
        g = A @ x - B
        return {"x": (g[:3], g[3:])}

    @jax.jit
    def minimise(params):
        def body(carry, _):
            params, state = carry
            updates, state = opt.update(grad(params), state, params)
            return (apply_updates(params, updates), state), None

        return jax.lax.scan(body, (params, opt.init(params)), length=1000)[0][0]

    params = minimise({"x": (jnp.zeros(3), jnp.zeros(2))})
    x = np.concatenate([params["x"][0], params["x"][1]])
    np.testing.assert_allclose(x, X_STAR, atol=1e-3)


# ---------------------------------------------------------------------------------------
# clip_by_global_norm and chain.
# ---------------------------------------------------------------------------------------


@given(seed=seeds, scale=st.floats(1e-3, 1e3), max_norm=st.floats(1e-2, 1e2))
def test_clip_by_global_norm(seed, scale, max_norm):
    grads = jax.tree.map(lambda x: x * scale, random_tree(seed))
    norm = float(global_norm(grads))
    np.testing.assert_allclose(
        norm, np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree.leaves(grads))), rtol=1e-6
    )
    clip = clip_by_global_norm(max_norm)
    clipped, state = clip.update(grads, clip.init(grads), grads)
    assert state == EmptyState()
    if norm > max_norm:  # scaled onto the sphere of radius max_norm, direction kept
        np.testing.assert_allclose(float(global_norm(clipped)), max_norm, rtol=1e-5)
        chex.assert_trees_all_close(clipped, jax.tree.map(lambda g: g * max_norm / norm, grads),
                                    rtol=1e-5, atol=1e-9)
    else:  # let through unchanged
        chex.assert_trees_all_equal(clipped, grads)


def test_clip_by_global_norm_of_zero_grads_is_finite():
    clip = clip_by_global_norm(1.0)
    zeros = jax.tree.map(jnp.zeros_like, random_tree(0))
    clipped, _ = jax.jit(clip.update)(zeros, clip.init(zeros))
    chex.assert_trees_all_equal(clipped, zeros)
    unclipped, _ = clip_by_global_norm(math.inf).update(random_tree(1), EmptyState())
    chex.assert_trees_all_equal(unclipped, random_tree(1))


def test_chain_equals_sequential_application():
    clip, mom = clip_by_global_norm(0.5), momentum(0.1, gamma=0.8)
    opt = chain(clip, mom)
    assert isinstance(opt, Optimizer)
    params = random_tree(0)
    state, s_clip, s_mom = opt.init(params), clip.init(params), mom.init(params)
    chex.assert_trees_all_equal(state, (s_clip, s_mom))
    for k in range(5):
        grads = random_tree(k + 1)
        updates, state = jax.jit(opt.update)(grads, state, params)
        g, s_clip = clip.update(grads, s_clip, params)
        expected, s_mom = mom.update(g, s_mom, params)
        chex.assert_trees_all_close(updates, expected, rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_close(state, (s_clip, s_mom), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="at least one transform"):
        chain()  # an identity "optimizer" would add the raw gradients: gradient ascent


# ---------------------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: sgd(-0.1), ValueError, "lr"),
        (lambda: sgd(float("nan")), ValueError, "lr"),
        (lambda: sgd(float("inf")), ValueError, "lr"),
        (lambda: sgd("0.1"), TypeError, "lr"),
        (lambda: sgd(None), TypeError, "lr"),
        (lambda: adam(lr=[0.1]), TypeError, "lr"),
        (lambda: momentum(0.1, gamma=1.0), ValueError, "gamma"),
        (lambda: momentum(0.1, gamma=-0.1), ValueError, "gamma"),
        (lambda: momentum(-1.0), ValueError, "lr"),
        (lambda: rmsprop(0.1, beta=1.5), ValueError, "beta"),
        (lambda: rmsprop(0.1, beta=float("nan")), ValueError, "beta"),
        (lambda: rmsprop(0.1, eps=0.0), ValueError, "eps"),
        (lambda: rmsprop(0.1, eps=-1e-8), ValueError, "eps"),
        (lambda: rmsprop(0.1, eps=float("inf")), ValueError, "eps"),
        (lambda: adam(b1=1.0), ValueError, "b1"),
        (lambda: adam(b2=-0.5), ValueError, "b2"),
        (lambda: adam(b2="0.9"), TypeError, "b2"),
        (lambda: adam(eps=0.0), ValueError, "eps"),
        (lambda: adam(eps=float("nan")), ValueError, "eps"),
        (lambda: adam(lr=-1e-3), ValueError, "lr"),
        (lambda: clip_by_global_norm(0.0), ValueError, "max_norm"),
        (lambda: clip_by_global_norm(-1.0), ValueError, "max_norm"),
        (lambda: clip_by_global_norm(float("nan")), ValueError, "max_norm"),
        (lambda: chain(sgd(0.1), "adam"), TypeError, "chain argument 1"),
    ],
)
def test_bad_hyperparameters_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_valid_edge_hyperparameters_are_accepted():
    sgd(0.0), sgd(np.float32(0.1)), sgd(jnp.asarray(0.1)), momentum(0.1, gamma=0.0)
    adam(b1=0.0, b2=0.0), rmsprop(1, beta=0), clip_by_global_norm(math.inf)


def test_hyperparameters_may_be_traced():
    # A sweep over learning rates as one vmapped program: traced values skip the value check.
    params, grads = {"w": jnp.zeros(3)}, {"w": jnp.full(3, 2.0)}

    def first_update(lr, b1):
        opt = adam(lr, b1=b1)
        return opt.update(grads, opt.init(params), params)[0]["w"]

    got = jax.vmap(first_update)(jnp.array([0.1, 0.2]), jnp.array([0.5, 0.9]))
    np.testing.assert_allclose(got, [[-0.1] * 3, [-0.2] * 3], rtol=1e-6)  # -lr * sign(g)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", list(DEFAULTS))
def test_grads_with_another_structure_raise(name, jit):
    opt = DEFAULTS[name]
    params = {"W": jnp.ones((2, 3)), "b": jnp.ones(2)}
    state = opt.init(params)
    update = jax.jit(opt.update) if jit else opt.update
    grads = {"W": jnp.ones((2, 3))}
    with pytest.raises(ValueError, match="grads") as info:
        update(grads, state, params)
    assert str(jax.tree.structure(grads)) in str(info.value)
    assert str(jax.tree.structure(params)) in str(info.value)
    with pytest.raises(ValueError, match=r"grads\['W'\] has shape \(3, 2\)"):
        update({"W": jnp.ones((3, 2)), "b": jnp.ones(2)}, state, params)


def test_apply_updates_checks_structure_and_keeps_dtype():
    params = {"W": jnp.ones((2, 3), jnp.bfloat16)}
    out = apply_updates(params, {"W": jnp.full((2, 3), 0.5, jnp.float32)})
    assert out["W"].dtype == jnp.bfloat16 and float(out["W"][0, 0]) == 1.5
    with pytest.raises(ValueError, match="updates"):
        apply_updates(params, [jnp.ones((2, 3))])


def test_chain_rejects_a_state_of_another_length():
    opt = chain(clip_by_global_norm(1.0), adam(1e-3))
    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="2 entries"):
        opt.update(params, (EmptyState(),), params)
    with pytest.raises(ValueError, match="AdamState"):
        opt.update(params, adam(1e-3).init(params), params)


def test_add_decayed_weights_is_the_gradient_of_the_l2_penalty():
    params = {"W": jnp.array([[1.0, -2.0]]), "b": (jnp.array([0.5]),)}
    grads = jax.tree.map(jnp.ones_like, params)
    lam = 0.1
    wd = fnann.add_decayed_weights(lam)
    got, state = wd.update(grads, wd.init(params), params)
    penalty = lambda p: 0.5 * lam * sum(jnp.sum(x**2) for x in jax.tree.leaves(p))
    want = jax.tree.map(jnp.add, grads, jax.grad(penalty)(params))
    chex.assert_trees_all_close(got, want, rtol=1e-6)
    # In a chain before sgd: theta <- theta - lr (g + lam theta)
    opt = fnann.chain(fnann.add_decayed_weights(lam), fnann.sgd(0.5))
    updates, _ = opt.update(grads, opt.init(params), params)
    chex.assert_trees_all_close(updates, jax.tree.map(lambda w: -0.5 * w, want), rtol=1e-6)
    with pytest.raises(ValueError, match="weight_decay must be"):
        fnann.add_decayed_weights(-1.0)
    with pytest.raises(ValueError, match="needs params"):
        wd.update(grads, wd.init(params))
