"""Tests for fnann.schedules: each schedule against its numpy formula, under jit with traced
int32 steps, and inside the optimizers (update k uses schedule(k))."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_optim import np_adam, np_momentum, random_tree

from fnann import schedules
from fnann.optim import adam, apply_updates, momentum, sgd
from fnann.optim.schedules import (
    constant,
    cosine_decay,
    exponential_decay,
    join_schedules,
    linear_warmup,
    warmup_cosine_decay,
)

values = st.floats(0.0, 10.0)
step_counts = st.integers(1, 50)

# ---------------------------------------------------------------------------------------
# numpy formulas, in float64, of a Python int step k.
# ---------------------------------------------------------------------------------------


def np_exponential(k, init_value, decay_rate, transition_steps, staircase=False):
    p = k / transition_steps
    return init_value * decay_rate ** (math.floor(p) if staircase else p)


def np_cosine(k, init_value, decay_steps, alpha=0.0):
    t = min(k, decay_steps)
    return init_value * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t / decay_steps)) + alpha)


def np_warmup(k, init_value, end_value, warmup_steps):
    return init_value + (end_value - init_value) * min(k, warmup_steps) / warmup_steps


def np_warmup_cosine(k, peak_value, warmup_steps, decay_steps, init_value=0.0, end_value=0.0):
    if k < warmup_steps:
        return np_warmup(k, init_value, peak_value, warmup_steps)
    alpha = end_value / peak_value
    return np_cosine(k - warmup_steps, peak_value, decay_steps - warmup_steps, alpha)


def check(schedule, formula, n, rtol=1e-6, atol=1e-7):
    """schedule(k) == formula(k) for k = 0..n-1: traced int32 steps under jit, and Python ints.

    atol is relative to the schedule's largest value (a float32 cosine near the end of its
    decay is exact only to the rounding of its argument)."""
    k = jnp.arange(n, dtype=jnp.int32)
    want = np.array([formula(i) for i in range(n)])
    atol = atol * max(1.0, np.max(np.abs(want)))
    np.testing.assert_allclose(jax.jit(jax.vmap(schedule))(k), want, rtol, atol)
    np.testing.assert_allclose(jax.jit(schedule)(k), want, rtol, atol)  # a batch of steps
    for i in (0, n // 2, n - 1):
        np.testing.assert_allclose(schedule(i), want[i], rtol, atol)


@given(value=values)
def test_constant(value):
    check(constant(value), lambda k: value, 5)


@given(init=values, rate=st.floats(0.01, 2.0), steps=step_counts, staircase=st.booleans())
def test_exponential_decay(init, rate, steps, staircase):
    check(
        exponential_decay(init, rate, steps, staircase=staircase),
        lambda k: np_exponential(k, init, rate, steps, staircase),
        3 * steps + 1,
        rtol=1e-5,  # rate ** p in float32 for p up to 3
    )


@given(init=values, steps=step_counts, alpha=st.floats(0.0, 1.0))
def test_cosine_decay_is_clamped_after_decay_steps(init, steps, alpha):
    check(cosine_decay(init, steps, alpha), lambda k: np_cosine(k, init, steps, alpha), 2 * steps)
    np.testing.assert_allclose(cosine_decay(init, steps, alpha)(10**6), alpha * init, atol=1e-6)


@given(init=values, end=values, steps=step_counts)
def test_linear_warmup_is_clamped(init, end, steps):
    check(linear_warmup(init, end, steps), lambda k: np_warmup(k, init, end, steps), 2 * steps)


@given(b1=st.integers(0, 20), gap=st.integers(1, 20))
def test_join_schedules_restarts_the_count_at_each_boundary(b1, gap):
    b2 = b1 + gap
    parts = [constant(3.0), linear_warmup(0.0, 1.0, 10), cosine_decay(2.0, 5)]
    joined = join_schedules(parts, [b1, b2])

    def formula(k):
        if k < b1:
            return 3.0
        if k < b2:
            return np_warmup(k - b1, 0.0, 1.0, 10)
        return np_cosine(k - b2, 2.0, 5)

    check(joined, formula, b2 + 10)


@given(
    peak=st.floats(1e-3, 10.0),
    warmup=st.integers(0, 20),
    decay=st.integers(1, 40),
    init_frac=st.floats(0.0, 1.0),
    end_frac=st.floats(0.0, 1.0),
)
def test_warmup_cosine_decay(peak, warmup, decay, init_frac, end_frac):
    init, end, total = init_frac * peak, end_frac * peak, warmup + decay
    sched = warmup_cosine_decay(peak, warmup, total, init_value=init, end_value=end)
    check(sched, lambda k: np_warmup_cosine(k, peak, warmup, total, init, end), total + 5)
    atol = 1e-7 * peak
    np.testing.assert_allclose(sched(0), init if warmup else peak, rtol=1e-6, atol=atol)
    np.testing.assert_allclose(sched(warmup), peak, rtol=1e-6, atol=atol)
    np.testing.assert_allclose(sched(total), end, rtol=1e-6, atol=atol)


def test_schedules_in_float64():
    with jax.enable_x64(True):
        sched = warmup_cosine_decay(0.3, 7, 40, init_value=0.01, end_value=0.003)
        assert sched(jnp.int32(3)).dtype == jnp.float64
        check(sched, lambda k: np_warmup_cosine(k, 0.3, 7, 40, 0.01, 0.003), 45, 1e-12, 1e-15)
        sched = exponential_decay(0.1, 0.9, 7)
        check(sched, lambda k: np_exponential(k, 0.1, 0.9, 7), 30, 1e-12, 1e-15)


# ---------------------------------------------------------------------------------------
# Schedules inside the optimizers.
# ---------------------------------------------------------------------------------------

SCHEDULES = {
    "constant": constant(0.1),
    "exponential": exponential_decay(0.5, 0.8, 3, staircase=True),
    "cosine": cosine_decay(0.5, 8, alpha=0.1),
    "warmup": linear_warmup(0.0, 1.0, 5),
    "warmup_cosine": warmup_cosine_decay(1.0, 3, 10, init_value=0.1, end_value=0.05),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_update_k_uses_schedule_of_k(name):
    sched, steps = SCHEDULES[name], 12
    opt = sgd(sched)
    params = {"w": jnp.zeros(3)}

    def body(state, _):
        updates, state = opt.update({"w": jnp.ones(3)}, state, params)
        return state, updates["w"]

    state, updates = jax.jit(lambda s: jax.lax.scan(body, s, length=steps))(opt.init(params))
    want = np.array([float(sched(k)) for k in range(steps)])
    np.testing.assert_allclose(updates, -np.repeat(want[:, None], 3, axis=1), rtol=1e-6)
    assert int(state.step) == steps


@pytest.mark.parametrize("factory, reference", [(adam, np_adam), (momentum, np_momentum)])
def test_optimizer_with_a_schedule_matches_numpy_float64(factory, reference):
    steps = 60
    with jax.enable_x64(True):
        sched = warmup_cosine_decay(0.05, 10, 50, init_value=0.001, end_value=0.002)
        np_sched = lambda k: np_warmup_cosine(k, 0.05, 10, 50, 0.001, 0.002)  # noqa: E731
        opt = factory(sched)
        params = random_tree(0, jnp.float64)
        grads = [random_tree(k + 1, jnp.float64) for k in range(steps)]
        state, step = opt.init(params), jax.jit(opt.update)
        got = []
        for g in grads:
            updates, state = step(g, state, params)
            params = apply_updates(params, updates)
            got.append([np.asarray(u) for u in jax.tree.leaves(updates)])
        stream = [[np.asarray(x) for x in jax.tree.leaves(g)] for g in grads]
        want = reference(stream, np_sched)
        for k in range(steps):
            for u, w in zip(got[k], want[k]):
                np.testing.assert_allclose(u, w, rtol=1e-12, atol=1e-15)


def test_momentum_keeps_each_gradient_at_the_rate_it_arrived_with():
    # lr 1 at update 0, then 0: v0 = 1 * g0 = 1; v1 = 0.5 * 1 + 0 * g1 = 0.5. (With the rate
    # outside the buffer, as in optax/PyTorch, update 1 would be 0 * (0.5 + 1) = 0.)
    opt = momentum(join_schedules([constant(1.0), constant(0.0)], [1]), gamma=0.5)
    state = opt.init({"w": jnp.zeros(1)})
    _, state = opt.update({"w": jnp.ones(1)}, state)
    updates, _ = opt.update({"w": jnp.ones(1)}, state)
    np.testing.assert_allclose(updates["w"], [-0.5])


# ---------------------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: constant(-1.0), ValueError, "value"),
        (lambda: constant(float("nan")), ValueError, "value"),
        (lambda: constant("0.1"), TypeError, "value"),
        (lambda: exponential_decay(-0.1, 0.5, 10), ValueError, "init_value"),
        (lambda: exponential_decay(0.1, 0.0, 10), ValueError, "decay_rate"),
        (lambda: exponential_decay(0.1, -0.5, 10), ValueError, "decay_rate"),
        (lambda: exponential_decay(0.1, 0.5, 0), ValueError, "transition_steps"),
        (lambda: exponential_decay(0.1, 0.5, 2.5), TypeError, "transition_steps"),
        (lambda: cosine_decay(0.1, 0), ValueError, "decay_steps"),
        (lambda: cosine_decay(0.1, 10, alpha=1.5), ValueError, "alpha"),
        (lambda: cosine_decay(float("inf"), 10), ValueError, "init_value"),
        (lambda: linear_warmup(0.0, -1.0, 10), ValueError, "end_value"),
        (lambda: linear_warmup(0.0, 1.0, 0), ValueError, "warmup_steps"),
        (lambda: linear_warmup(0.0, 1.0, True), TypeError, "warmup_steps"),
        (lambda: join_schedules([], []), TypeError, "schedules"),
        (lambda: join_schedules([constant(1.0), 0.1], [5]), TypeError, "schedules"),
        (lambda: join_schedules([constant(1.0)] * 2, []), ValueError, "boundaries"),
        (lambda: join_schedules([constant(1.0)] * 3, [5, 5]), ValueError, "boundaries"),
        (lambda: join_schedules([constant(1.0)] * 2, [-1]), ValueError, "boundaries"),
        (lambda: warmup_cosine_decay(0.0, 5, 10), ValueError, "peak_value"),
        (lambda: warmup_cosine_decay(1.0, 10, 10), ValueError, "decay_steps"),
        (lambda: warmup_cosine_decay(1.0, -1, 10), ValueError, "warmup_steps"),
        (lambda: warmup_cosine_decay(1.0, 2, 10, end_value=2.0), ValueError, "end_value"),
        (lambda: warmup_cosine_decay(1.0, 2, 10, init_value=-1.0), ValueError, "init_value"),
    ],
)
def test_bad_arguments_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_module_exports():
    assert set(schedules.__all__) >= {
        "constant",
        "exponential_decay",
        "cosine_decay",
        "linear_warmup",
        "join_schedules",
        "warmup_cosine_decay",
    }
