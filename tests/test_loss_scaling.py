"""float16 mixed precision with dynamic loss scaling (``fnann.optim.loss_scale``).

The rule is checked against a numpy transcription of it over a crafted run of steps (skips,
halvings to the floor of 1, growth after N good steps); the float16 gradients of both methods
against float64 ones to the float16 rounding bound (u = 2^-11, as the bfloat16 tests do with
2^-8); then training, resuming through a checkpoint, and an overflow step that keeps θ.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from fnann.backprop import value_and_grad
from fnann.optim.loss_scale import LossScaleState
from fnann.train import state_step
from strategies import problem
from test_mixed_precision import C, float64_reference

U16 = 2.0**-11  # float16's unit round-off


def numpy_rule(S, k, g_S, N, up=2.0, down=0.5):
    """The loss-scale rule as the issue states it: ``(S', k', g or None if the step is skipped)``."""
    g = np.asarray(g_S, np.float32) / np.float32(S)
    if not np.all(np.isfinite(g)):
        return max(S * down, 1.0), 0, None
    k += 1
    return (S * up, 0, g) if k == N else (S, k, g)


def test_the_scale_follows_the_numpy_rule_through_skips_halvings_and_growth():
    opt = fnann.loss_scaling(fnann.sgd(0.5), initial_scale=4.0, growth_interval=3)
    theta = {"w": jnp.array([1.0, -2.0])}
    state = opt.init(theta)
    inf, nan = np.inf, np.nan
    sequence = [[1.0, 2.0], [inf, 0.0], [4.0, 4.0], [nan, 1.0], [inf, inf], [8.0, 0.0], [1.0, 1.0],
                [2.0, 2.0], [3.0, 1.0], [1.0, 5.0], [-inf, 1.0], [1.0, 1.0], [2.0, 2.0], [1.0, 2.0]]
    S, k, w, steps = 4.0, 0, np.array([1.0, -2.0], np.float32), 0
    update = jax.jit(opt.update)
    seen = set()
    for g_S in sequence:
        updates, state = update({"w": jnp.asarray(g_S, jnp.float32)}, state, theta)
        S, k, g = numpy_rule(S, k, g_S, 3)
        if g is not None:
            w, steps = w - np.float32(0.5) * g, steps + 1
        theta = fnann.apply_updates(theta, updates)
        assert (float(state.scale), int(state.good_steps), int(state.inner.step)) == (S, k, steps)
        np.testing.assert_array_equal(theta["w"], w)
        seen.add(S)
    assert {1.0, 2.0, 4.0} <= seen  # halved to the floor, held there, and grown back


@pytest.mark.parametrize("hidden, head", [("tanh", ("softmax", "cross_entropy")),
                                          ("silu", ("sigmoid", "binary_cross_entropy"))])
def test_float16_scaled_gradients_equal_float64_ones_to_the_float16_bound(hidden, head):
    output, loss_name = head
    net = fnann.MLP([5, 12, 12, 3], hidden=hidden, output=output)
    loss = fnann.get_loss(loss_name)
    params, x, y = problem(net, loss_name, 16, 7)
    value, ref, T = float64_reference(net, loss, params, x, y)
    S, bound = 2.0**12, C * (net.n_layers + 1) * U16  # |g_S / S - g| <= c (L + 1) u T entrywise
    for method in ("manual", "autodiff"):
        v, g_S = jax.jit(value_and_grad(net, loss, method, "float16"))(params, x, y, jnp.float32(S))
        assert v.dtype == jnp.float32 and all(g.dtype == jnp.float32 for g in jax.tree.leaves(g_S))
        for g, r, t in zip(jax.tree.leaves(g_S), ref, T, strict=True):
            np.testing.assert_array_less(np.abs(np.asarray(g, np.float64) / S - r), bound * t + 1e-300)
        assert abs(float(v) - value) <= bound * max(abs(value), 1e-3)


@pytest.mark.parametrize("method", ["manual", "autodiff"])
def test_an_overflowing_step_keeps_the_params_and_inner_state_and_halves_the_scale(method):
    net = fnann.MLP([4, 8, 3], hidden="tanh")
    params, x, y = problem(net, "cross_entropy", 16, 5)
    opt = fnann.loss_scaling(fnann.adam(0.01), initial_scale=2.0**100)  # S·δ^(L) overflows float16
    state = opt.init(params)
    step = jax.jit(fnann.train_step(net, "cross_entropy", opt, method, compute_dtype="float16"))
    new, new_state, value = step(params, state, x, y)
    for a, b in zip(jax.tree.leaves((new, new_state.inner)), jax.tree.leaves((params, state.inner))):
        np.testing.assert_array_equal(a, b)
    assert float(new_state.scale) == 2.0**99 and int(new_state.good_steps) == 0 and np.isfinite(float(value))
    with pytest.raises(ValueError, match="needs dynamic loss scaling"):
        fnann.train_step(net, "cross_entropy", fnann.adam(0.01), compute_dtype="float16")(
            params, fnann.adam(0.01).init(params), x, y)


def test_a_float16_run_trains_as_float32_does_and_keeps_float32_state():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 16)) * 2
    labels = rng.integers(0, 4, 512)
    x = (centres[labels] + rng.standard_normal((512, 16))).astype(np.float32)
    net = fnann.MLP([16, 32, 4])
    params = fnann.init(jax.random.key(0), net)
    final = {}
    for cd in (None, "float16"):
        _, history, state = fnann.fit(net, "cross_entropy", fnann.adam(3e-3), params, x, labels, key=jax.random.key(1),
                                      epochs=8, batch_size=64, compute_dtype=cd, return_state=True)
        final[cd] = history["loss"][-1]
    assert isinstance(state.opt_state, LossScaleState) and int(state.opt_state.inner.step) >= 60  # of 64 steps
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves((state.params, state.opt_state.inner.m)))
    assert final["float16"] < 0.5 * history["loss"][0]
    assert abs(final["float16"] - final[None]) <= 0.02 * final[None] + 1e-3, final


def test_a_float16_run_resumed_from_a_checkpoint_is_bit_identical_to_an_unbroken_one(tmp_path):
    net = fnann.MLP([4, 8, 3], hidden="tanh")
    params, x, y = problem(net, "cross_entropy", 24, 3)
    opt = fnann.loss_scaling(fnann.adam(0.01), initial_scale=2.0**22, growth_interval=2)  # skips, then growth
    kw = dict(key=jax.random.key(0), batch_size=4, compute_dtype="float16", return_state=True)
    whole, _, s_whole = fnann.fit(net, "cross_entropy", opt, params, x, y, epochs=3, **kw)
    half, _, s = fnann.fit(net, "cross_entropy", opt, params, x, y, epochs=2, **kw)
    fnann.save(tmp_path / "ck.npz", net, half, s.opt_state, epoch=2, key=s.key)
    ck = fnann.load(tmp_path / "ck.npz")
    assert isinstance(ck.opt_state, LossScaleState)
    rest, _, s_rest = fnann.fit(net, "cross_entropy", opt, ck.params, x, y, epochs=1, initial_epoch=2,
                                opt_state=ck.opt_state, **kw)
    for a, b in zip(jax.tree.leaves((rest, s_rest.opt_state)), jax.tree.leaves((whole, s_whole.opt_state))):
        np.testing.assert_array_equal(a, b)
    assert int(s_whole.opt_state.inner.step) < 18 and float(s_whole.opt_state.scale) != 2.0**22  # it skipped, it moved


@pytest.mark.parametrize("setting, value, message", [
    ("initial_scale", 0.5, "initial_scale must"), ("initial_scale", float("inf"), "initial_scale must"),
    ("growth_interval", 0, "growth_interval must"), ("growth_interval", 2.5, "growth_interval must"),
    ("growth_factor", 1.0, "growth_factor must"), ("backoff_factor", 1.0, "backoff_factor must"),
    ("backoff_factor", 0.0, "backoff_factor must"),
])
def test_a_bad_loss_scale_setting_is_an_error_naming_it(setting, value, message):
    with pytest.raises(ValueError, match=message):
        fnann.loss_scaling(fnann.sgd(0.1), **{setting: value})


def test_fit_many_and_the_command_line_train_in_float16_and_keep_the_scale(tmp_path, capsys):
    from fnann.app import cli

    net = fnann.MLP([4, 8, 3], hidden="tanh")
    params, x, y = problem(net, "cross_entropy", 32, 4)
    result = fnann.fit_many(net, "cross_entropy", fnann.adam, params, x, y, key=jax.random.key(9), epochs=2,
                            batch_size=16, hyperparams={"lr": [0.01, 0.03]}, compute_dtype="float16")
    assert isinstance(result.opt_state, LossScaleState) and result.opt_state.scale.shape == (2,)
    assert all(h["loss"][-1] < h["loss"][0] for h in result.histories)
    args = ["--data", "xor", "--epochs", "2", "--no-gradcheck", "--no-plot", "--no-progress", "--no-cache",
            "--out", str(tmp_path)]
    assert cli.main(["train", *args, "--compute-dtype", "float16"]) == 0
    assert "float32 params, float16 compute" in capsys.readouterr().out
    ck = fnann.load(tmp_path / "checkpoint.npz")
    assert ck.meta["run"]["compute_dtype"] == "float16" and isinstance(ck.opt_state, LossScaleState)
    assert cli.main(["train", "--resume", "--epochs", "1", *args[args.index("--no-gradcheck"):]]) == 0
    resumed = fnann.load(tmp_path / "checkpoint.npz").opt_state
    assert isinstance(resumed, LossScaleState) and state_step(resumed) > state_step(ck.opt_state)


def test_fit_continues_a_float32_state_in_float16_and_back():
    """fit converts a given opt_state across compute dtypes, as --resume does: a fresh scale
    around the moments for float16, the inner state for the others."""
    net = fnann.MLP([4, 6, 3])
    params = fnann.init(jax.random.key(0), net)
    x = jax.random.normal(jax.random.key(1), (16, 4))
    y = jax.random.randint(jax.random.key(2), (16,), 0, 3)
    run = dict(key=jax.random.key(3), epochs=1, batch_size=8, return_state=True)
    _, _, state = fnann.fit(net, "cross_entropy", fnann.adam(1e-2), params, x, y, **run)
    _, _, half = fnann.fit(net, "cross_entropy", fnann.adam(1e-2), state.params, x, y, opt_state=state.opt_state,
                           compute_dtype="float16", **run)
    assert isinstance(half.opt_state, LossScaleState)
    _, _, back = fnann.fit(net, "cross_entropy", fnann.adam(1e-2), half.params, x, y, opt_state=half.opt_state, **run)
    assert not isinstance(back.opt_state, LossScaleState) and int(back.opt_state.step) == 6
