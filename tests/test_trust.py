"""Trust at the boundary: impossible (output, loss) pairs, targets out of range, non-finite or
empty data, round-off in check_grads, softmax at extreme logits, hyperparameters that train
uphill, divergence and its cause, arguments that used to fail deep inside JAX, the callback's
TrainState, and float16/bfloat16 training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from fnann.app import datasets

NET = fnann.MLP([3, 4, 2])
PARAMS = fnann.init(jax.random.key(0), NET)
X = jax.random.normal(jax.random.key(1), (6, 3))
Y = jnp.array([0, 1, 1, 0, 1, 0])
TRACES = []


def counted_ce():
    """Cross-entropy that records every trace: proof that an error came before compiling."""
    ce = fnann.cross_entropy

    def from_logits(z, y):
        TRACES.append(1)
        return ce.fn_from_logits(z, y)

    return ce._replace(fn_from_logits=from_logits)


def fit(**kw):
    args = dict(key=jax.random.key(0), epochs=2, batch_size=3) | kw
    return fnann.fit(args.pop("net", NET), args.pop("loss", "ce"), args.pop("opt", fnann.sgd(0.1)),
                     args.pop("params", PARAMS), args.pop("x", X), args.pop("y", Y), **args)


# --- (output, loss) pairs that cannot work -------------------------------------------


@pytest.mark.parametrize("output,loss,n_out", [
    ("tanh", "cross_entropy", 2), ("relu", "cross_entropy", 2), ("identity", "cross_entropy", 2),
    ("sigmoid", "cross_entropy", 1), ("softmax", "binary_cross_entropy", 2),
    ("identity", "binary_cross_entropy", 1), ("tanh", "binary_cross_entropy", 2), ("softmax", "mse", 1),
])
def test_impossible_heads_are_refused_where_net_and_loss_meet(output, loss, n_out):
    net = fnann.MLP([3, 4, n_out], output=output)
    params = fnann.init(jax.random.key(0), net)
    y = jnp.zeros((6, n_out))
    for call in (lambda: fnann.loss_and_grad(net, loss), lambda: fnann.train_step(net, loss, fnann.sgd(0.1)),
                 lambda: fnann.fit(net, loss, fnann.sgd(0.1), params, X, y, key=jax.random.key(0), epochs=1),
                 lambda: fnann.check_grads(net, loss, params, X, y),
                 lambda: fnann.evaluate(net, params, X, y, loss)):
        with pytest.raises(ValueError, match="needs output=|single unit is the constant 1"):
            call()


def test_workable_heads_and_custom_outputs_are_accepted():
    for output, loss in [("sigmoid", "mse"), ("softmax", "mse"), ("tanh", "mse"), ("relu", "mse")]:
        fnann.loss_and_grad(fnann.MLP([3, 2], output=output), loss)
    positive = fnann.elementwise("softplus", jax.nn.softplus, jax.nn.sigmoid)  # range unknown to fnann
    fnann.loss_and_grad(fnann.MLP([3, 2], output=positive), "cross_entropy")


@pytest.mark.parametrize("loss,output,y,match", [
    ("cross_entropy", "softmax", [[1.0, -0.5]] + [[0.0, 1.0]] * 5, r"y\[0, 1\] is -0.5"),
    ("cross_entropy", "softmax", [[1, -1]] + [[0, 1]] * 5, r"targets must be >= 0"),
    ("binary_cross_entropy", "sigmoid", [[1.0, 2.0]] + [[0.0, 1.0]] * 5, r"must be in \[0, 1\].*y\[0, 1\] is 2"),
    ("binary_cross_entropy", "sigmoid", [[-0.1, 0.0]] + [[0.0, 1.0]] * 5, r"y\[0, 0\] is -0.1"),
])
def test_targets_out_of_range(loss, output, y, match):
    net = fnann.MLP([3, 4, 2], output=output)
    params = fnann.init(jax.random.key(0), net)
    y = jnp.asarray(y)
    with pytest.raises(ValueError, match=match):
        fnann.loss_and_grad(net, loss)(params, X, y)
    with pytest.raises(ValueError, match=match):
        fnann.evaluate(net, params, X, y, loss)
    with pytest.raises(ValueError, match=match.replace("y", "y_val", 1) if "y\\[" in match else match):
        fnann.fit(net, loss, fnann.sgd(0.1), params, X, jnp.abs(y).clip(0, 1), key=jax.random.key(0),
                  epochs=1, validation_data=(X, y))


# --- non-finite and empty data everywhere ----------------------------------------------


BAD_X = X.at[2, 1].set(jnp.nan)
BAD_PARAMS = (PARAMS[0]._replace(b=PARAMS[0].b.at[3].set(jnp.inf)), PARAMS[1])
CALLS = {
    "forward": lambda p, x, y: fnann.forward(NET, p, x),
    "forward_trace": lambda p, x, y: fnann.forward_trace(NET, p, x),
    "predict": lambda p, x, y: fnann.predict(NET, p, x),
    "evaluate": lambda p, x, y: fnann.evaluate(NET, p, x, y, "ce"),
    "accuracy": lambda p, x, y: fnann.accuracy(NET, p, x, y),
    "loss_and_grad": lambda p, x, y: fnann.loss_and_grad(NET, "ce")(p, x, y),
    "autodiff": lambda p, x, y: fnann.loss_and_grad(NET, "ce", "autodiff")(p, x, y),
    "check_grads": lambda p, x, y: fnann.check_grads(NET, "ce", p, x, y),
    "fit": lambda p, x, y: fit(params=p, x=x, y=y),
}


@pytest.mark.parametrize("name", CALLS)
def test_non_finite_x_or_params_and_empty_batches_are_clear_errors(name):
    call = CALLS[name]
    with pytest.raises(ValueError, match=r"x contains NaN or inf at index \(2, 1\)"):
        call(PARAMS, BAD_X, Y)
    with pytest.raises(ValueError, match=r"params\[0\]\.b contains NaN or inf at index 3"):
        call(BAD_PARAMS, X, Y)
    if name in ("forward", "forward_trace", "predict"):  # an empty batch has an empty output
        out = call(PARAMS, X[:0], Y[:0])
        assert (out[0] if name == "forward_trace" else out).shape == (0, 2)
    else:
        with pytest.raises(ValueError, match="x has no rows; .* needs at least one example"):
            call(PARAMS, X[:0], Y[:0])


def test_x_that_overflows_low_precision_params():
    p16 = jax.tree.map(lambda a: a.astype(jnp.float16), PARAMS)
    with pytest.raises(ValueError, match="x holds 1e\\+05 in magnitude, which overflows the params' dtype float16"):
        fnann.predict(NET, p16, X.at[0, 0].set(1e5))
    with pytest.raises(ValueError, match="x_val holds"):
        fit(params=p16, validation_data=(X.at[0, 0].set(-7e4), Y))


# --- numerics --------------------------------------------------------------------------


def test_check_grads_passes_exactly_zero_gradients_whose_finite_difference_is_round_off():
    # Every hidden unit dead and a loss of ~1e6: the layer-1 and W2 gradients are exactly 0,
    # and their central differences are round-off of L (~1e-16 * 1e6 / 1e-6); the seed's fixed
    # atol of 1e-10 reported FAILED.
    net = fnann.MLP([3, 4, 2], hidden="relu", output="identity")
    p = fnann.init(jax.random.key(0), net)
    p = (p[0]._replace(b=jnp.full(4, -100.0)), p[1])
    y = 1e3 * jax.random.normal(jax.random.key(2), (6, 2))
    report = fnann.check_grads(net, "mse", p, X, y, n_fd=None)
    assert [r.scale for r in report.rows[:3]] == [0.0, 0.0, 0.0] and report.passed, str(report)
    # the bound scales with L's round-off: the seed's fixed 1e-10 failed wherever the compiled
    # differences show any (how much shows depends on the compiler: XLA's CPU backend at its
    # default optimization level shows ~1e-9 here, without its LLVM passes none)
    assert report.fd_atol > 1e-10
    assert report.fd_atol < 1e-5 * report.rows[3].scale  # an error of 1e-5 relative still shows


def test_softmax_is_accurate_at_extreme_logits_in_float32():
    z = np.array([[-1e4, -1e4, -1e4 + 1], [3e4, 3e4 - 2, 0.0], [-50.0, 0.0, 50.0]])
    e = np.exp(z - z.max(axis=1, keepdims=True))
    want = e / e.sum(axis=1, keepdims=True)  # float64 numpy
    got = np.asarray(fnann.softmax.fn(jnp.asarray(z, jnp.float32)), np.float64)
    np.testing.assert_allclose(got, want, rtol=2e-7, atol=1e-30)


# --- hyperparameters that train uphill, and divergence -----------------------------------


@pytest.mark.parametrize("opt,epochs,match", [
    (fnann.sgd(lambda step: -0.1), 1, r"lr = -0.1 at step 0"),
    (fnann.sgd(lambda step: jnp.where(step < 5, 0.1, jnp.nan)), 3, r"lr = nan at step 5"),
    (fnann.adam(fnann.schedules.exponential_decay(0.1, 2.0, 1)), 100, r"lr = inf at step 128"),
    (fnann.chain(fnann.clip_by_global_norm(1.0), fnann.momentum(lambda s: 0.1 - 0.01 * s)), 10,
     r"argument 1 of chain = momentum\(lr=...\) gives lr = -0.01 at step 11"),
])
def test_schedules_of_fnann_optimizers_are_checked_over_the_steps_fit_will_run(opt, epochs, match):
    TRACES.clear()
    with pytest.raises(ValueError, match=match):
        fit(opt=opt, epochs=epochs, loss=counted_ce())
    assert TRACES == []
    fit(opt=fnann.sgd(lambda step: jnp.where(step < 5, 0.1, jnp.nan)), epochs=2)  # steps 0..3 only: fine


@pytest.mark.parametrize("kw,err,match", [
    (dict(min_delta=float("nan")), ValueError, "min_delta must be a finite number >= 0"),
    (dict(min_delta=-1.0), ValueError, "min_delta must be a finite number >= 0"),
    (dict(min_delta="0"), TypeError, "min_delta must be a real number"),
    (dict(patience=True), TypeError, "patience must be an int; got True"),
    (dict(patience=1.5), TypeError, "patience must be an int"),
    (dict(patience=-1), ValueError, "patience must be >= 0"),
    (dict(callback=5), TypeError, "callback must be callable"),
    (dict(key=None), TypeError, "key must be a PRNG key"),
    (dict(key=0), TypeError, "key must be a PRNG key.*got int 0"),
    (dict(key=jax.random.split(jax.random.key(0))), ValueError,
     r"single PRNG key; got an array of keys of shape \(2,\)"),
    (dict(key=jax.random.split(jax.random.PRNGKey(0))), ValueError, r"single PRNG key; got 2 raw keys"),
    (dict(opt_state=fnann.sgd(0.1).init(PARAMS), opt=fnann.adam(0.1)), ValueError,
     "opt_state does not have the structure of opt.init"),
    (dict(opt_state=fnann.adam(0.1).init(fnann.init(jax.random.key(0), fnann.MLP([3, 5, 2]))),
          opt=fnann.adam(0.1)), ValueError, r"opt_state\.m\[0\]\.W has shape \(5, 3\)"),
    (dict(x=[[1.0, 2.0, 3.0], [1.0, 2.0]] * 3), ValueError, "x must be a rectangular array"),
    (dict(x=[["a", "b", "c"]] * 6), TypeError, "x must hold real numbers"),
    (dict(y=["a"] * 6), TypeError, "y must hold real numbers"),
    (dict(epochs=2**31), ValueError, "initial_epoch \\+ epochs must be <="),
])
def test_bad_fit_arguments_fail_before_anything_compiles(kw, err, match):
    TRACES.clear()
    with pytest.raises(err, match=match):
        fit(loss=counted_ce(), monitor="loss", **({"patience": 2} if "min_delta" in kw else {}), **kw)
    assert TRACES == []


def test_divergence_says_which_cause():
    net = fnann.MLP([2, 3, 2])  # the case: the loss reaches 1e28..1e30 and stays finite
    with pytest.raises(fnann.TrainingDivergedError, match=r"epoch 1: the loss grew to .*, more than 1e\+06 "
                       r"times the reference") as e:  # issue 19: the reference is no longer the first epoch's
        fnann.fit(net, "ce", fnann.momentum(1e30), fnann.init(jax.random.key(0), net), jnp.ones((4, 2)),
                  jnp.array([0, 1, 0, 1]), key=jax.random.key(0), epochs=5)
    assert e.value.epoch == 1 and len(e.value.history["loss"]) == 1
    net = fnann.MLP([3, 8, 1], hidden="relu", output="identity")
    p16 = fnann.init(jax.random.key(0), net, jnp.float16)
    with pytest.raises(fnann.TrainingDivergedError,
                       match=r"the (loss|parameters) became .*float16 overflows above 6.55e\+04"):
        fnann.fit(net, "mse", fnann.sgd(10.0), p16, X, 100 * X[:, :1], key=jax.random.key(0), epochs=50,
                  batch_size=None)


# --- other arguments that used to fail inside JAX ------------------------------------


def test_arguments_checked_at_the_boundary():
    for key, err in [(None, TypeError), (0, TypeError), (jax.random.split(jax.random.key(0)), ValueError)]:
        with pytest.raises(err, match="key"):
            fnann.init(key, NET)
    with pytest.raises(TypeError, match="dtype must be a floating dtype such as"):
        fnann.init(jax.random.key(0), NET, "foo")
    for call in (lambda: fnann.forward(NET, PARAMS, X, precision="bogus"),
                 lambda: fnann.loss_and_grad(NET, "ce", precision="bogus"),
                 lambda: fnann.backward(NET, PARAMS, fnann.forward_trace(NET, PARAMS, X)[1], Y, "ce", "bogus")):
        with pytest.raises(ValueError, match="precision must be None, a jax.lax.Precision or one of"):
            call()
    fnann.forward(NET, PARAMS, X, precision="highest")
    for chunk, err in [(2.5, TypeError), (None, TypeError), (0, ValueError), (True, TypeError)]:
        for call in (lambda: fnann.predict(NET, PARAMS, X, chunk_size=chunk),
                     lambda: fnann.evaluate(NET, PARAMS, X, Y, "ce", chunk_size=chunk),
                     lambda: fnann.accuracy(NET, PARAMS, X, Y, chunk_size=chunk)):
            with pytest.raises(err, match="chunk_size must be"):
                call()
    step = jax.jit(fnann.train_step(NET, "ce", fnann.adam(0.1)))
    with pytest.raises(ValueError, match="opt_state does not have the structure"):
        step(PARAMS, fnann.sgd(0.1).init(PARAMS), X, Y)


# --- the callback sees the training state --------------------------------------------


def test_callback_with_three_arguments_receives_the_train_state():
    seen = []

    def callback(epoch, logs, state):
        seen.append((epoch, logs["loss"], state))

    params, hist, final = fit(opt=fnann.adam(0.01), epochs=3, callback=callback, return_state=True)
    assert [(e, s.epoch) for e, _, s in seen] == [(0, 1), (1, 2), (2, 3)]
    for u, v in zip(jax.tree.leaves((seen[-1][2].params, seen[-1][2].opt_state)),
                    jax.tree.leaves((params, final.opt_state))):
        np.testing.assert_array_equal(u, v)
    assert seen[-1][2].key is final.key and [l for _, l, _ in seen] == hist["loss"]
    # resuming from the state a callback saw equals training straight through
    resumed, _ = fit(opt=fnann.adam(0.01), epochs=1, params=seen[1][2].params,
                     opt_state=seen[1][2].opt_state, initial_epoch=seen[1][2].epoch)
    for u, v in zip(jax.tree.leaves(resumed), jax.tree.leaves(params)):
        np.testing.assert_array_equal(u, v)
    two_args = []
    fit(epochs=2, callback=lambda epoch, logs: two_args.append(epoch))
    assert two_args == [0, 1]


# --- float16 and bfloat16 end to end ------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_adam_on_digits_stays_finite_and_learns(dtype):
    # digits has all-zero input columns: a zero gradient entry, Adam's 0/0 with a float16 eps.
    d = datasets.load("digits", seed=0)
    x, y = d.x_train[:256], d.y_train[:256]
    assert np.any(np.all(x == x[0], axis=0))  # constant columns (zero after standardizing)
    net = fnann.MLP([64, 16, 10])
    params = fnann.init(jax.random.key(0), net, dtype)
    params, hist = fnann.fit(net, "ce", fnann.adam(3e-2), params, x, y, key=jax.random.key(1),
                             epochs=3, batch_size=64)
    assert params[0].W.dtype == dtype
    assert all(np.isfinite(hist["loss"])) and hist["loss"][-1] < 0.5 * hist["loss"][0], hist
    assert all(bool(jnp.all(jnp.isfinite(l))) for l in jax.tree.leaves(params))
