"""fit_many: K models in one compiled program, each equal to its own separate fit."""

import jax
import numpy as np
import pytest

import fnann
from parallel_subprocess import KEYS, NET, OPT, local_problem, numpy_params
from strategies import max_rel_error


def separate_fits(opts, stacked, keys, x, y, **kw):
    out = []
    for k, opt in enumerate(opts):
        p = jax.tree.map(lambda a: a[k], stacked)
        out.append(fnann.fit(NET, "cross_entropy", opt, p, x, y, key=keys[k], **kw))
    return out


def assert_each_model_equals_its_fit(result, fits):
    for k, (params, hist) in enumerate(fits):
        assert max_rel_error(result.model(k), params) <= 1e-5, k
        for name, values in hist.items():
            np.testing.assert_allclose(result.histories[k][name], values, rtol=1e-5, err_msg=name)


def test_seeds_and_a_sweep_over_learning_rates_betas_and_weight_decay_equal_separate_fits():
    x, y, val, _ = local_problem()
    x, y = x[:48], y[:48]  # batches of 16, no remainder: a smaller program to compile
    stacked = numpy_params(1, K=2)  # different inits, and KEYS: different shuffles

    def factory(lr, b1, b2, weight_decay):
        return fnann.chain(fnann.add_decayed_weights(weight_decay), fnann.adam(lr, b1, b2))

    hyperparams = {"lr": [0.01, 0.03], "b1": [0.8, 0.9], "b2": [0.99, 0.999],
                   "weight_decay": [0.0, 0.01]}
    kw = dict(epochs=2, batch_size=16, validation_data=val)
    with jax.default_matmul_precision("highest"):  # full float32 on GPU/TPU too
        result = fnann.fit_many(NET, "cross_entropy", factory, stacked, x, y, key=KEYS,
                                hyperparams=hyperparams, **kw)
        opts = [factory(**{name: v[k] for name, v in hyperparams.items()}) for k in range(2)]
        fits = separate_fits(opts, stacked, KEYS, x, y, **kw)
    assert_each_model_equals_its_fit(result, fits)
    assert result.params[0].W.shape == (2, 8, 5) and result.diverged == (None, None)
    assert result.best == int(np.argmin([h["val_loss"][-1] for _, h in fits]))
    assert jax.tree.structure(result.opt_state) == jax.tree.structure(opts[0].init(numpy_params(0)))


def test_one_key_for_all_models_shares_the_batches_and_still_equals_separate_fits():
    # one key: every model shuffles alike, so fit_many shares the batches (the first layer's
    # products become one product over the models); 51 rows in batches of 16: a last batch of 3
    x, y, val, _ = local_problem()
    stacked, key = numpy_params(2, K=3), KEYS[0]
    hyperparams = {"lr": [0.003, 0.01, 0.03]}
    kw = dict(epochs=2, batch_size=16, validation_data=val)
    with jax.default_matmul_precision("highest"):
        result = fnann.fit_many(NET, "cross_entropy", fnann.adam, stacked, x, y, key=key,
                                hyperparams=hyperparams, **kw)
        fits = separate_fits([fnann.adam(lr) for lr in hyperparams["lr"]], stacked, [key] * 3,
                             x, y, **kw)
    assert_each_model_equals_its_fit(result, fits)
    assert max_rel_error(result.model(0), result.model(2)) > 1e-2  # the models do differ


def test_a_diverging_model_is_frozen_at_its_last_finite_params_and_the_others_train_on():
    net = fnann.MLP([3, 4, 1], hidden="tanh", output="identity")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = rng.normal(size=(32, 1)).astype(np.float32)
    p0 = numpy_params(0, net=net)
    kw = dict(key=KEYS[0], epochs=6, batch_size=8)
    hyperparams = {"lr": [0.1, 3.0], "gamma": [0.9, 0.5]}  # traced momentum coefficients too
    with jax.default_matmul_precision("highest"):
        result = fnann.fit_many(net, "mse", fnann.momentum, p0, x, y, hyperparams=hyperparams, **kw)
        with pytest.raises(fnann.TrainingDivergedError) as e:
            fnann.fit(net, "mse", fnann.momentum(3.0, gamma=0.5), p0, x, y, **kw)
    assert result.diverged == (None, e.value.epoch) and e.value.epoch > 0 and result.best == 0
    assert max_rel_error(result.model(1), e.value.params) <= 1e-5
    assert result.histories[1]["loss"] == pytest.approx(e.value.history["loss"], rel=1e-5)
    assert len(result.histories[0]["loss"]) == 6
    with jax.default_matmul_precision("highest"), pytest.raises(
            fnann.TrainingDivergedError, match="all 2 models diverged"):
        fnann.fit_many(net, "mse", fnann.momentum, p0, x, y,
                       hyperparams={"lr": [3.0, 10.0], "gamma": [0.5, 0.5]}, **kw)


def bad(**kw):
    x, y, _, p0 = local_problem()
    args = dict(opt=fnann.sgd, params=p0, key=KEYS[0], epochs=1, hyperparams={"lr": [0.1, 0.2]})
    args |= kw
    return fnann.fit_many(NET, "cross_entropy", args.pop("opt"), args.pop("params"), x, y, **args)


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(hyperparams={"lr": [0.1, -1.0]}), ValueError,
     r"hyperparams of model 1 \{'lr': -1.0\}: lr must be a finite number >= 0"),
    (dict(hyperparams={"gamma": [0.5, 1.5]}, opt=lambda gamma: fnann.momentum(0.1, gamma)),
     ValueError, r"model 1 .*gamma must lie in \[0, 1\)"),
    (dict(hyperparams={"lr": [0.1], "gamma": [0.5, 0.9]}), ValueError, "must all have K entries"),
    (dict(hyperparams={"lr": [[0.1, 0.2]]}), ValueError, "must be a 1-D array of K real numbers"),
    (dict(hyperparams={"learning_rate": [0.1, 0.2]}), TypeError, "unexpected keyword"),
    (dict(opt=OPT), TypeError, "with hyperparams, opt must be a factory"),
    (dict(opt=lambda lr: "sgd"), TypeError, r"opt\(\*\*hyperparams\) must be an optimizer"),
    (dict(hyperparams=None, opt=fnann.sgd), ValueError, "fit_many needs K models"),
    (dict(hyperparams=None, opt=fnann.sgd, key=KEYS), TypeError, "opt must be an optimizer with init"),
    (dict(key=np.stack([KEYS[0]] * 3)), ValueError, r"the model axis sizes K disagree: \{'key': 3, "
                                                    r"'hyperparams': 2\}"),
    (dict(key="seed"), TypeError, "key must be a jax.random key"),
    (dict(params=numpy_params(1, K=3)), ValueError, "K disagree"),
    (dict(monitor="val_loss"), ValueError, "needs validation_data"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    (dict(opt_state=OPT.init(numpy_params(0))), ValueError, "opt_state must be the stacked state"),
])
def test_bad_arguments_are_refused_before_compiling(kwargs, err, match):
    with pytest.raises(err, match=match):
        bad(**kwargs)


def test_bad_data_is_named():
    x, y, _, p0 = local_problem()
    x_nan = x.copy()
    x_nan[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"x contains NaN or inf at index \(2, 1\)"):
        fnann.fit_many(NET, "cross_entropy", OPT, p0, x_nan, y, key=KEYS, epochs=1)
    with pytest.raises(ValueError, match="y_val holds class labels in"):
        fnann.fit_many(NET, "cross_entropy", OPT, p0, x, y, key=KEYS, epochs=1,
                       validation_data=(x, y + 5))
