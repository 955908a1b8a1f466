"""fnann.sklearn against scikit-learn itself: its estimator checks, and the same numbers.

With the same ``random_state`` scikit-learn's and fnann's estimators draw the same initial
weights and the same batches (``shuffle=True`` too: both shuffle with the estimator's
``RandomState``), so in float64 their loss curves and final weights agree to rounding
(1e-8 relative is asked; ~1e-15 is seen), for every solver, schedule, activation and task.
"""

import pickle
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", minversion="1.7")

from sklearn import neural_network as sk  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fnann  # noqa: E402
from fnann.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from fnann.sklearn import objective  # noqa: E402


@parametrize_with_checks([MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)])  # scikit-learn's own test settings
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_constructor_is_the_installed_sklearns_plus_extras():
    import inspect
    for ours, theirs in ((MLPClassifier, sk.MLPClassifier), (MLPRegressor, sk.MLPRegressor)):
        mine = inspect.signature(ours).parameters
        assert list(mine)[:-3] == list(inspect.signature(theirs).parameters)
        assert all(mine[k].default == p.default for k, p in inspect.signature(theirs).parameters.items())
        extras = ("method", "dtype", "compute_dtype")
        assert {k: mine[k].default for k in extras} == {"method": "manual", "dtype": None, "compute_dtype": None}
        assert all(mine[k].kind == inspect.Parameter.KEYWORD_ONLY for k in extras)
        assert isinstance(ours(), theirs)


def test_fit_and_predict_run_fnanns_programs():
    """Not scikit-learn's numpy code under fnann's name: the compiled epoch, L-BFGS's function
    and the forward pass are fnann's, and they run."""
    X, y = _data("multiclass", n=20)
    before = {name: getattr(objective, name).cache_info() for name in ("compiled_epoch", "full_batch_objective",
                                                                      "compiled_forward")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier((3,), max_iter=2, batch_size=20).fit(X, y).predict(X)
        MLPClassifier((3,), solver="lbfgs", max_iter=2).fit(X, y)
    for name, info in before.items():
        after = getattr(objective, name).cache_info()
        assert after.hits + after.misses > info.hits + info.misses, name


def _data(kind, n=53, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if kind == "multiclass":
        return X, np.array(["a", "b", "c"])[np.argmax(X[:, :3] + 0.3 * rng.normal(size=(n, 3)), axis=1)]
    if kind == "binary":
        return X, np.where(X[:, 0] + 0.5 * rng.normal(size=n) > 0, 7, -2)  # non-contiguous labels
    if kind == "multilabel":
        return X, (X[:, :3] + 0.5 * rng.normal(size=(n, 3)) > 0).astype(int)
    if kind == "multioutput":
        return X, np.stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]], axis=1)
    if kind == "poisson":
        return X, rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
    return X, np.sin(X[:, 0]) + 0.5 * X[:, 1]


CASES = {  # (kind, constructor arguments); 53 rows: the default batch of 200 is the full batch
    "sgd nesterov relu": ("multiclass", dict(solver="sgd", batch_size=16)),
    "sgd momentum invscaling tanh": ("multiclass", dict(solver="sgd", nesterovs_momentum=False, batch_size=16,
                                                         learning_rate="invscaling", activation="tanh",
                                                         learning_rate_init=0.05)),
    "sgd adaptive logistic alpha": ("binary", dict(solver="sgd", learning_rate="adaptive", activation="logistic",
                                                   alpha=0.3, tol=0.05, n_iter_no_change=2, batch_size=10)),
    "adam identity ragged": ("multilabel", dict(activation="identity", batch_size=20, learning_rate_init=0.01)),
    "adam relu shuffled two layers": ("regression", dict(hidden_layer_sizes=(7, 6), shuffle=True,
                                                         learning_rate_init=0.01, batch_size=8)),
    "sgd tanh multi-output": ("multioutput", dict(solver="sgd", activation="tanh", batch_size=25, alpha=0.01)),
    "adam poisson": ("poisson", dict(loss="poisson", learning_rate_init=0.01, batch_size=12)),
    "adam early stopping": ("multiclass", dict(early_stopping=True, validation_fraction=0.2, batch_size=9,
                                               learning_rate_init=0.02, n_iter_no_change=3)),
}


def _pair(kind, **options):
    common = {**dict(hidden_layer_sizes=(6,), max_iter=12, shuffle=False, random_state=3), **options}
    cls = (MLPRegressor, sk.MLPRegressor) if kind in ("regression", "multioutput", "poisson") else (
        MLPClassifier, sk.MLPClassifier)
    return cls[0](**common), cls[1](**{k: v for k, v in common.items() if k not in ("dtype", "method", "compute_dtype")})


def assert_same_fit(ours, theirs, tol=1e-8):
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=tol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.max(np.abs(b)))
    for name in ("best_loss_", "validation_scores_", "best_validation_score_", "out_activation_", "n_outputs_"):
        assert getattr(ours, name) == pytest.approx(getattr(theirs, name), rel=tol) if isinstance(
            getattr(theirs, name), float) else getattr(ours, name) == getattr(theirs, name)


@pytest.mark.parametrize("case", list(CASES))
def test_same_loss_curve_and_weights_as_sklearn_in_float64(case):
    kind, options = CASES[case]
    X, y = _data(kind)
    ours, theirs = _pair(kind, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)
        ours.fit(X, y)
    assert_same_fit(ours, theirs)
    if hasattr(ours, "classes_"):
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    else:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-8, atol=1e-12)


def test_sample_weight_partial_fit_and_warm_start_follow_sklearn():
    X, y = _data("multiclass")
    w = np.random.default_rng(1).uniform(0, 2, len(X))
    ours, theirs = _pair("multiclass", solver="sgd", batch_size=16)
    for est in (ours, theirs):
        est.partial_fit(X[:30], y[:30], classes=["a", "b", "c"], sample_weight=w[:30])
        est.partial_fit(X[30:], y[30:], sample_weight=w[30:])  # the optimizer's velocity carries over
    assert_same_fit(ours, theirs)
    for est in (ours, theirs):
        est.set_params(warm_start=True, max_iter=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y, sample_weight=w)
    assert_same_fit(ours, theirs)
    with pytest.raises(ValueError, match="classes"):
        ours.partial_fit(X[:3], np.array(["a", "b", "z"]))  # an unknown class: scikit-learn's error


def test_float32_data_trains_in_float32_to_its_rounding():
    X, y = _data("multiclass")
    ours, theirs = _pair("multiclass", solver="adam", batch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X.astype(np.float32), y)
        ours.fit(X.astype(np.float32), y)
        forced = _pair("multiclass", solver="adam", batch_size=16, dtype="float32")[0].fit(X, y)
    assert ours.coefs_[0].dtype == np.float32 and forced.coefs_[0].dtype == np.float32
    assert_same_fit(ours, theirs, tol=1e-4)
    np.testing.assert_array_equal(forced.coefs_[0], ours.coefs_[0])  # dtype="float32" casts the float64 data


@pytest.mark.parametrize("out", ["identity", "softmax", "logistic", "exp"])
def test_hand_derived_gradient_equals_jax_grad_and_finite_differences(out):
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        net = objective.network([4, 5, 3], "tanh", out)
        params = fnann.init(jax.random.key(1), net, jnp.float64)
        X = jnp.asarray(rng.normal(size=(9, 4)))
        Y = jnp.asarray(rng.uniform(size=(9, 3)) if out != "softmax" else np.eye(3)[rng.integers(0, 3, 9)])
        target, alpha = (Y, jnp.asarray(rng.uniform(0.1, 2.0, 9))), 0.7

        @jax.jit
        def gradients_and_differences(params):
            manual = objective.loss_and_grad(net, "", out, "manual")(params, X, target, alpha)[1]
            auto = objective.loss_and_grad(net, "", out, "autodiff")(params, X, target, alpha)[1]

            def J(W1):  # J itself, as a function of W^(1), differenced in float64
                p = (params[0]._replace(W=W1), *params[1:])
                S = jnp.sum(target[1])
                Z = fnann.mlp.feedforward(net, p, X)[1].Z[-1]
                return jnp.sum(target[1] * objective.canonical_loss(out, Z, Y)) / S + objective.penalty(p, alpha, S)

            h, W = 1e-6, params[0].W
            E = jnp.eye(W.size).reshape(W.size, *W.shape) * h
            fd = jax.vmap(lambda e: (J(W + e) - J(W - e)) / (2 * h))(E).reshape(W.shape)
            return manual, auto, fd

        manual, auto, fd = gradients_and_differences(params)
        for g, a in zip(jax.tree.leaves(manual), jax.tree.leaves(auto)):
            np.testing.assert_allclose(g, a, rtol=1e-12, atol=1e-14 * np.max(np.abs(a)))
        np.testing.assert_allclose(manual[0].W, fd, rtol=1e-7, atol=1e-9 * np.max(np.abs(fd)))


def test_bfloat16_compute_keeps_float32_weights_and_float32_accuracy():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = X / 16
    args = dict(hidden_layer_sizes=(32,), max_iter=15, random_state=0, dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = MLPClassifier(**args).fit(X[:1200], y[:1200])
        mixed = MLPClassifier(**args, compute_dtype="bfloat16").fit(X[:1200], y[:1200])
    assert mixed.coefs_[0].dtype == np.float32  # master weights
    assert not np.array_equal(mixed.coefs_[0], full.coefs_[0])  # the products really ran in bfloat16
    assert abs(mixed.score(X[1200:], y[1200:]) - full.score(X[1200:], y[1200:])) <= 0.01
    net = objective.network([64, 32, 10], "relu", "softmax")
    params = fnann.init(jax.random.key(0), net)
    target = (jnp.asarray(np.eye(10)[y[:100]], jnp.float32), jnp.ones(100, jnp.float32))
    exact = objective.loss_and_grad(net, "log_loss", "softmax")(params, jnp.asarray(X[:100], jnp.float32), target, 1e-4)[1]
    low = objective.loss_and_grad(net, "log_loss", "softmax", compute_dtype="bfloat16")(
        params, jnp.asarray(X[:100], jnp.float32), target, 1e-4)[1]
    for g, h in zip(jax.tree.leaves(exact), jax.tree.leaves(low)):  # bfloat16's 8 bits, through 2 layers
        assert h.dtype == jnp.float32 and np.max(np.abs(g - h)) <= 0.05 * np.max(np.abs(g))


def test_to_fnann_pickle_and_save_round_trip(tmp_path):
    X, y = _data("multiclass")
    clf = _pair("multiclass", solver="adam")[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    net, params = clf.to_fnann()
    with jax.enable_x64(True):
        np.testing.assert_allclose(np.asarray(fnann.forward(net, params, X)), clf.predict_proba(X), rtol=1e-12)
        fnann.save(tmp_path / "clf.npz", net, params)
        assert fnann.load(tmp_path / "clf.npz").net == net
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    again.partial_fit(X, y)  # the optimizer state pickled with it (numpy leaves)


def test_bad_input_gets_sklearns_errors_and_names_the_argument():
    X, y = _data("multiclass")
    with pytest.raises(ValueError, match="method"):
        MLPClassifier(method="symbolic").fit(X, y)
    with pytest.raises(ValueError, match="dtype"):
        MLPClassifier(dtype="float16").fit(X, y)
    with pytest.raises(ValueError, match="compute_dtype"):
        MLPClassifier(compute_dtype="float16").fit(X, y)
    with pytest.raises(ValueError, match="non-finite parameter weights"):  # a huge value diverges, as in scikit-learn
        MLPRegressor(solver="sgd", learning_rate_init=10.0, max_iter=5).fit(X * 1e6, y == "a")
    one = MLPClassifier(max_iter=2).fit(X[:2], y[:2])  # two rows (one per class), batch of 2
    assert one.predict(X[:1]).shape == (1,)


def test_sweep_models_equal_their_own_fits_and_cv_results_match_gridsearchcv():
    from sklearn.model_selection import GridSearchCV

    from fnann.sklearn import GridSweepCV
    from fnann.sklearn.sweep import fit_together
    X, y = _data("multiclass", n=60)
    base = MLPClassifier((5,), solver="sgd", batch_size=16, max_iter=8, random_state=0, n_iter_no_change=2)
    grid = {"learning_rate_init": [0.01, 0.2], "tol": [1e-4, 0.5], "random_state": [0, 1],
            "learning_rate": ["constant", "adaptive"]}  # tol=0.5 stalls: stops, or divides the rate by 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        together = [sklearn.base.clone(base).set_params(**p) for p in sklearn.model_selection.ParameterGrid(grid)]
        together += [sklearn.base.clone(base).set_params(hidden_layer_sizes=(4,))]  # a second program
        assert fit_together(together, X, y) == [None] * len(together)
        for est in together:
            alone = sklearn.base.clone(est).fit(X, y)
            assert_same_fit(est, alone, tol=1e-10)
        assert len({est.n_iter_ for est in together}) > 1  # models stopped at different epochs
        ours = GridSweepCV(base, grid, cv=3).fit(X, y)
        theirs = GridSearchCV(base, grid, cv=3).fit(X, y)
    assert set(ours.cv_results_) == set(theirs.cv_results_) - {"split0_train_score"}
    for key in ("mean_test_score", "std_test_score", "split1_test_score", "rank_test_score"):
        np.testing.assert_allclose(ours.cv_results_[key], theirs.cv_results_[key], rtol=1e-10)
    assert ours.cv_results_["params"] == theirs.cv_results_["params"] and ours.best_params_ == theirs.best_params_
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    with pytest.raises(ValueError, match="early_stopping"):
        GridSweepCV(MLPClassifier(early_stopping=True), {"alpha": [1e-4]}).fit(X, y)
    with pytest.raises(TypeError, match="fnann.sklearn estimator"):
        fit_together([sk.MLPClassifier()], X, y)


@pytest.mark.parametrize("kind, options", [
    ("multiclass", dict(hidden_layer_sizes=())),  # logistic regression: convex, one minimum
    ("regression", dict(hidden_layer_sizes=())),
    ("multiclass", dict(activation="tanh")),  # a small network that both runs take to the same minimum
])
def test_lbfgs_reaches_sklearns_final_loss(kind, options):
    X, y = _data(kind)
    ours, theirs = _pair(kind, solver="lbfgs", max_iter=2000, tol=1e-10, alpha=1e-2, **options)
    theirs.fit(X, y)
    ours.fit(X, y)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)
    assert theirs.n_iter_ / 2 <= ours.n_iter_ <= 2 * theirs.n_iter_
    short = _pair(kind, solver="lbfgs", max_iter=3, **options)[0]
    with pytest.warns(ConvergenceWarning, match="lbfgs"):
        short.fit(X, y)
    assert short.n_iter_ == 3


def test_pipeline_cross_val_score_and_joblib_work_as_with_sklearns(tmp_path):
    import joblib
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = _data("multiclass", n=60)
    args = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = cross_val_score(make_pipeline(StandardScaler(), MLPClassifier(**args)), X, y, cv=2)
        theirs = cross_val_score(make_pipeline(StandardScaler(), sk.MLPClassifier(**args)), X, y, cv=2)
        fitted = make_pipeline(StandardScaler(), MLPClassifier(**args)).fit(X, y)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    joblib.dump(fitted, tmp_path / "pipe.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "pipe.joblib").predict_proba(X), fitted.predict_proba(X))


HOSTILE = {  # each input, as fnann's estimator and scikit-learn's answer it: the same error, or the same fit
    "float16 X": lambda X, y: dict(X=X.astype(np.float16)),
    "NaN sample weight": lambda X, y: dict(sample_weight=np.r_[np.nan, np.ones(len(X) - 1)]),
    "negative sample weights": lambda X, y: dict(sample_weight=-np.ones(len(X))),
    "all sample weights zero": lambda X, y: dict(sample_weight=np.zeros(len(X))),
    "one batch of weight 0 (S = 0)": lambda X, y: dict(sample_weight=np.r_[np.zeros(20), np.ones(len(X) - 20)]),
    "inf in X": lambda X, y: dict(X=np.where(X > 1.5, np.inf, X)),
    "0 rows": lambda X, y: dict(X=X[:0], y=y[:0]),
    "1 row": lambda X, y: dict(X=X[:1], y=y[:1]),
    "y shorter than X": lambda X, y: dict(y=y[:-1]),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_gets_sklearns_answer(case):
    X, y = _data("binary", n=40)
    given = {"X": X, "y": y, "sample_weight": None, **HOSTILE[case](X, y)}
    answers = []
    for cls in (MLPClassifier, sk.MLPClassifier):
        est = cls((3,), max_iter=2, batch_size=20, shuffle=False, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                est.fit(given["X"], given["y"], sample_weight=given["sample_weight"])
                answers.append(("fit", est.loss_curve_))
            except (ValueError, ZeroDivisionError) as e:
                answers.append((type(e), str(e)))
    (kind, ours), (kind_, theirs) = answers
    if case == "one batch of weight 0 (S = 0)":  # scikit-learn: a ZeroDivisionError from numpy; fnann: a clear error
        assert kind is ValueError and ours.startswith("sample_weight: the batch of rows 0 to 19 of epoch 1 weighs 0")
        return
    assert kind == kind_, answers
    if kind == "fit":
        np.testing.assert_allclose(ours, theirs, rtol=1e-8)
    else:
        assert ours == theirs
