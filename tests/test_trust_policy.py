"""Issue 19, silent wrong runs: divergence in the first epoch, optimizers that never descend,
schedules checked by every entry point and preset, complex numbers refused, explain's pairs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnann
from fnann.app import cli
from fnann.app.explain import explain
from fnann.losses import constant_loss
from fnann.optim import conventions
from fnann.train import reference_loss

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 4)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int32) + (X[:, 2] > 1).astype(np.int32)  # 3 classes
NET = fnann.MLP([4, 16, 3])
PARAMS = fnann.init(jax.random.key(0), NET)


def fit(opt, epochs=3, **kw):
    return fnann.fit(NET, "cross_entropy", opt, PARAMS, X, Y, key=jax.random.key(1), epochs=epochs, **kw)


# --- 4. divergence, the first epoch included --------------------------------------------------


@pytest.mark.parametrize("opt", [fnann.adam(1e10), fnann.sgd(1e8), fnann.momentum(1e12)])
def test_a_run_that_explodes_in_its_first_epoch_is_reported(opt):
    with pytest.raises(fnann.TrainingDivergedError, match="diverged in epoch 0") as e:
        fit(opt, batch_size=8)
    assert e.value.epoch == 0 and e.value.history["loss"] == []
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(e.value.params), jax.tree.leaves(PARAMS)))


def test_a_sane_run_is_never_flagged():
    params, history = fit(fnann.adam(1e-2), epochs=5, batch_size=8)
    assert all(map(math.isfinite, history["loss"]))


def test_reference_loss_against_numpy():
    """max(L at θ_0, L of the mean target): entropy of the class frequencies for CE, variance for
    MSE, Bernoulli entropy for BCE."""
    with jax.enable_x64(True):
        p = np.bincount(Y, minlength=3) / len(Y)
        assert np.isclose(float(constant_loss(fnann.cross_entropy, Y, 3, jnp.float64)), -np.sum(p * np.log(p)))
        t = RNG.normal(size=(60, 2))
        assert np.isclose(float(constant_loss(fnann.mse, t, 2, jnp.float64)), np.mean((t - t.mean(0)) ** 2))
        b = (RNG.random((60, 2)) > 0.3).astype(np.float64)
        q = b.mean(0)
        want = -np.mean(b * np.log(q) + (1 - b) * np.log(1 - q))
        assert np.isclose(float(constant_loss(fnann.binary_cross_entropy, b, 2, jnp.float64)), want)
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), PARAMS)
        at_init = float(fnann.evaluate(NET, p64, X.astype(np.float64), Y, "ce")["loss"])
        got = float(reference_loss(NET, fnann.cross_entropy, p64, jnp.asarray(X, jnp.float64), jnp.asarray(Y)))
        assert np.isclose(got, max(at_init, -np.sum(p * np.log(p))))


def test_fit_many_reports_models_that_explode_in_their_first_epoch():
    result = fnann.fit_many(NET, "ce", fnann.adam, PARAMS, X, Y, key=jax.random.key(1), epochs=2, batch_size=8,
                            hyperparams={"lr": [1e-3, 1e10]})
    assert result.diverged == (None, 0)
    with pytest.raises(fnann.TrainingDivergedError, match="all 2 models diverged"):
        fnann.fit_many(NET, "ce", fnann.adam, PARAMS, X, Y, key=jax.random.key(1), epochs=2, batch_size=8,
                       hyperparams={"lr": [1e10, 1e12]})


def test_the_command_line_reports_a_first_epoch_divergence(tmp_path, capsys):
    status = cli.main(["train", "--data", "xor", "--lr", "1e10", "--epochs", "3", "--out", str(tmp_path / "r"),
                       "--no-cache", "--no-plot", "--no-progress", "--no-gradcheck"])
    err = capsys.readouterr().err
    assert status == 2 and "diverged in epoch 1" in err, err
    assert "the loss grew to" in err and "NaN or inf" not in err, err  # the cause, not a guess
    assert (tmp_path / "r" / "diverged.npz").exists() and not (tmp_path / "r" / "checkpoint.npz").exists()


# --- 6. an optimizer must descend ---------------------------------------------------------------

CLIMBERS = [fnann.chain(fnann.clip_by_global_norm(1.0)), fnann.chain(fnann.add_decayed_weights(0.1)),
            fnann.clip_by_global_norm(1.0), fnann.add_decayed_weights(0.1),
            fnann.chain(fnann.clip_by_global_norm(1.0), fnann.add_decayed_weights(0.1))]


@pytest.mark.parametrize("opt", CLIMBERS, ids=repr)
def test_a_transform_with_no_learning_rate_step_is_refused_everywhere(opt):
    with pytest.raises(ValueError, match="takes no learning-rate step.*Chain an optimizer after it"):
        fit(opt)
    with pytest.raises(ValueError, match="takes no learning-rate step"):
        fnann.train_step(NET, "ce", opt)
    with pytest.raises(ValueError, match="takes no learning-rate step"):
        fnann.fit_many(NET, "ce", opt, PARAMS, X, Y, key=jax.random.split(jax.random.key(0), 2), epochs=1)


@pytest.mark.parametrize("opt", [fnann.chain(fnann.clip_by_global_norm(1.0), fnann.sgd(0.1)),
                                 fnann.chain(fnann.add_decayed_weights(1e-3), fnann.adam(1e-3)),
                                 optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1)),
                                 fnann.chain(fnann.clip_by_global_norm(1.0), fnann.as_optimizer(optax.sgd(0.1)))])
def test_a_chain_with_a_descent_step_or_one_fnann_cannot_see_into_trains(opt):
    _, history = fit(opt, epochs=2)
    assert history["loss"][-1] < history["loss"][0]


# --- 7. one schedule check for every entry point and preset ---------------------------------------

NEGATIVE = lambda step: -0.1 + 0.0 * step  # noqa: E731
NAN = lambda step: jnp.nan + 0.0 * step  # noqa: E731


@pytest.mark.parametrize("make", [lambda s: conventions.optax_adam(s), lambda s: conventions.optax_sgd(s),
                                  lambda s: conventions.keras_adam(s), lambda s: conventions.keras_sgd(s),
                                  lambda s: conventions.torch_adam(s), lambda s: fnann.adam(s)])
@pytest.mark.parametrize("schedule", [NEGATIVE, NAN])
def test_schedules_of_the_presets_are_checked(make, schedule):
    with pytest.raises(ValueError, match="learning-rate schedule of opt = .* gives lr = (-0.1|nan) at step 0"):
        fit(make(schedule), epochs=1)


@pytest.mark.parametrize("schedule", [NEGATIVE, NAN])
def test_fit_many_checks_the_schedules_too(schedule):
    with pytest.raises(ValueError, match="model 0's opt: the learning-rate schedule"):
        fnann.fit_many(NET, "ce", lambda lr: fnann.sgd(schedule), PARAMS, X, Y, key=jax.random.key(0), epochs=1,
                       hyperparams={"lr": [0.1, 0.2]})
    with pytest.raises(ValueError, match="opt: the learning-rate schedule"):
        fnann.fit_many(NET, "ce", fnann.sgd(schedule), PARAMS, X, Y, key=jax.random.split(jax.random.key(0), 2),
                       epochs=1)


# --- 8. complex numbers are refused -------------------------------------------------------------


@pytest.mark.parametrize("opt", [fnann.sgd(0.1), fnann.momentum(0.1), fnann.rmsprop(0.1), fnann.adam(0.1),
                                 fnann.adamw(0.1), conventions.torch_adam(0.1), fnann.clip_by_global_norm(1.0)],
                         ids=repr)
def test_complex_params_or_grads_are_refused_by_every_optimizer(opt):
    real, cplx = {"w": jnp.array([0.5])}, {"w": jnp.array([1 + 1j], jnp.complex64)}
    with pytest.raises(TypeError, match=r"params\['w'\] is complex|grads\['w'\] is complex"):
        opt.update(cplx, opt.init(cplx), cplx)
    with pytest.raises(TypeError, match=r"grads\['w'\] is complex"):
        opt.update(cplx, opt.init(real), real)
    with pytest.raises(TypeError, match=r"is complex"):
        fnann.apply_updates(cplx, real)


def test_complex_data_and_params_are_refused_at_the_door():
    with pytest.raises(TypeError, match="x must hold real numbers"):
        fnann.fit(NET, "ce", fnann.sgd(0.1), PARAMS, X.astype(np.complex64), Y, key=jax.random.key(0), epochs=1)
    cparams = tuple(fnann.Dense(p.W.astype(jnp.complex64), p.b) for p in PARAMS)
    with pytest.raises(TypeError, match=r"params\[0\]\.W must be a floating array"):
        fnann.forward(NET, cparams, X)


# --- 10. explain refuses what everything else refuses, and shows every row ------------------------


def test_explain_refuses_an_impossible_head():
    net = fnann.MLP([2, 3, 2], output="sigmoid")
    with pytest.raises(ValueError, match="needs output='softmax'"):
        explain(net, "cross_entropy", fnann.init(jax.random.key(0), net), [0.5, -1.0], 1, fnann.sgd(0.1))
    assert cli.main(["explain", "--output", "sigmoid", "--loss", "cross_entropy", "--no-cache"]) == 2


def test_explain_prints_every_row_of_columns_of_different_lengths(capsys):
    assert cli.main(["explain", "--sizes", "2,3,4", "--x=0.5,-1", "--y", "2", "--no-cache"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("x = A^(0)"):out.index("W^(1)")].splitlines()
    assert len(block) == 1 + 4  # the one-hot y has 4 rows, x has 2: none is dropped
    assert block[3].strip() == "[ 1.0000 ]" and "0.5000" in block[1] and "-1.0000" in block[2]
    assert cli.main(["explain", "--sizes", "2,2,1", "--output", "sigmoid", "--x=0.5,-1", "--y", "1",
                     "--no-cache"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("x = A^(0)"):out.index("W^(1)")].splitlines()
    assert "-1.0000" in block[2]  # x's second value, beside a one-row y
