"""``GridSweepCV``: ``GridSearchCV`` over a fnann.sklearn estimator, each split's whole grid
trained at once.

The candidates that share a network, solver and batch size (everything the epoch program is
compiled for) train together: their params and optimizer states are stacked on a model axis
and one ``jax.vmap`` of scikit-learn's epoch (``objective.epoch_program``) steps all of them,
each with its own numbers (``learning_rate_init``, ``alpha``, ``momentum``, ``beta_1``,
``beta_2``, ``epsilon``), its own initial weights and shuffle (its ``random_state``) and its
own stopping rules (``tol``, ``n_iter_no_change``, ``max_iter``, the learning-rate schedule):
scikit-learn's per-epoch bookkeeping runs for each model on the host, exactly as in one
``fit``, and a model that has stopped is frozen while the others go on. Each candidate's
result equals its own ``fit`` (to float64 rounding; tested).

``cv_results_``, ``best_params_``, ``best_score_``, ``best_index_``, ``best_estimator_`` and
``refit`` follow ``GridSearchCV``. Not supported: ``solver="lbfgs"`` and ``early_stopping``
(each candidate would train on different rows) in the grid; use ``GridSearchCV`` for them.
"""

from __future__ import annotations

import time
import warnings
from collections import defaultdict

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.metrics import check_scoring
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_is_fitted, indexable

from fnann.caches import compiled_cache
from fnann.sklearn import objective
from fnann.sklearn.estimators import _FnannMLP, _x64


@compiled_cache(maxsize=16)
def compiled_sweep(*config):
    """K models' epoch: ``epoch_program(*config)`` vmapped over params, state, order and
    numbers (the data shared); a model with ``active[k]`` false keeps its params and state."""
    epoch = jax.vmap(objective.epoch_program(*config), in_axes=(0, 0, 0, None, None, 0))

    def sweep(params, state, orders, X, target, hyper, active):
        new_params, new_state, mean, finite = epoch(params, state, orders, X, target, hyper)
        keep = lambda new, old: jnp.where(active.reshape(-1, *(1,) * (new.ndim - 1)), new, old)
        return jax.tree.map(keep, new_params, params), jax.tree.map(keep, new_state, state), mean, finite

    return jax.jit(sweep)


def fit_together(estimators: list, X, y, sample_weight=None) -> list:
    """Fits fnann.sklearn estimators on the same data, every group with one compiled
    configuration as one vmapped program; returns, per estimator, None or the error its fit
    raised (scikit-learn's non-finite weights)."""
    for est in estimators:
        if not isinstance(est, _FnannMLP):
            raise TypeError(f"estimator must be a fnann.sklearn estimator; got {type(est).__name__}.")
        if est.solver == "lbfgs" or est.early_stopping:
            raise ValueError("a sweep trains solver='sgd' or 'adam' without early_stopping: every candidate "
                             f"trains on the same rows; got solver={est.solver!r}, "
                             f"early_stopping={est.early_stopping!r} (use GridSearchCV for these).")
        est._sweep_capture = True
        try:
            est.fit(X, y, sample_weight=sample_weight)  # scikit-learn's validation and initialization only
        finally:
            del est._sweep_capture
    groups = defaultdict(list)
    for est in estimators:
        groups[est._captured_run.config, est._captured_run.dtype].append(est)
    errors = {}
    for (config, dtype), members in groups.items():
        with _x64(dtype):
            _train_group(config, members)
        for est in members:
            del est._captured_run
            if not all(np.isfinite(w).all() for w in est.coefs_ + est.intercepts_):
                errors[id(est)] = ValueError("Solver produced non-finite parameter weights. The input data may "
                                             "contain large values and need to be preprocessed.")
    return [errors.get(id(est)) for est in estimators]


def _train_group(config: tuple, members: list) -> None:
    """The epochs of one group: the vmapped program, then each model's bookkeeping."""
    runs = [est._captured_run for est in members]
    stack = lambda *leaves: np.stack([np.asarray(leaf) for leaf in leaves])
    params, state = jax.tree.map(stack, *[r.params for r in runs]), jax.tree.map(stack, *[r.state for r in runs])
    X_dev, target = jax.device_put((runs[0].X, runs[0].target))
    program = compiled_sweep(*config)
    active = np.ones(len(members), bool)
    while active.any():
        orders = np.stack([est._order(r) if on else r.sample_idx.astype(np.int32)
                           for est, r, on in zip(members, runs, active)])
        hyper = jax.tree.map(stack, *[est._hyper(r) for est, r in zip(members, runs)])
        params, state, mean, finite = program(params, state, orders, X_dev, target, hyper, active)
        mean, finite = np.asarray(mean), np.asarray(finite)
        for k in np.flatnonzero(active):
            est = members[k]
            model = lambda k=k: jax.tree.map(lambda a: a[k], params)
            if est._end_epoch(runs[k], model, float(mean[k]), bool(finite[k])) or est.n_iter_ >= est.max_iter:
                active[k] = False
    for k, (est, run) in enumerate(zip(members, runs)):
        est._finish(run, jax.tree.map(lambda a: a[k], params), jax.tree.map(lambda a: a[k], state))


class GridSweepCV(MetaEstimatorMixin, BaseEstimator):
    """``GridSearchCV`` for fnann.sklearn's estimators, each split's grid in one program.

    Args:
      estimator: a ``fnann.sklearn.MLPClassifier`` or ``MLPRegressor``.
      param_grid: a dict (or list of dicts) of parameter names -> lists of values, as for
        ``GridSearchCV``; any constructor argument may vary (those that change the compiled
        program, e.g. ``hidden_layer_sizes``, split the grid into groups, one program each).
      scoring: as ``GridSearchCV``'s (one metric): None is the estimator's ``score``.
      cv: as ``GridSearchCV``'s (None: 5-fold, stratified for classifiers).
      refit: refit the best candidate on all the data (``best_estimator_``).

    Example:
      >>> from sklearn.datasets import load_iris
      >>> from fnann.sklearn import MLPClassifier
      >>> X, y = load_iris(return_X_y=True)
      >>> search = GridSweepCV(MLPClassifier((8,), max_iter=50, random_state=0),
      ...                      {"learning_rate_init": [1e-3, 1e-2], "alpha": [1e-4, 1e-2]}, cv=3)
      >>> sorted(search.fit(X, y).best_params_)
      ['alpha', 'learning_rate_init']
      >>> search.cv_results_["mean_test_score"].shape
      (4,)
    """

    def __init__(self, estimator, param_grid, *, scoring=None, cv=None, refit=True):
        self.estimator, self.param_grid, self.scoring, self.cv, self.refit = estimator, param_grid, scoring, cv, refit

    def fit(self, X, y=None, *, sample_weight=None):
        X, y, sample_weight = indexable(X, y, sample_weight)
        candidates = list(ParameterGrid(self.param_grid))
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = list(cv.split(X, y))
        scorer = check_scoring(self.estimator, scoring=self.scoring)
        K, n_splits = len(candidates), len(splits)
        scores, fit_times, score_times = (np.full((n_splits, K), np.nan) for _ in range(3))
        for s, (train, test) in enumerate(splits):
            estimators = [clone(self.estimator).set_params(**p) for p in candidates]
            part = lambda a, rows: None if a is None else _safe_indexing(a, rows)
            start = time.perf_counter()
            errors = fit_together(estimators, part(X, train), part(y, train), part(sample_weight, train))
            fit_times[s] = (time.perf_counter() - start) / K  # the split's time, shared by its K models
            for k, (est, error) in enumerate(zip(estimators, errors)):
                if error is not None:
                    warnings.warn(f"candidate {candidates[k]} failed on split {s}: {error}", FitFailedWarning)
                    continue
                start = time.perf_counter()
                scores[s, k] = scorer(est, part(X, test), part(y, test))
                score_times[s, k] = time.perf_counter() - start
        self.cv_results_ = _cv_results(candidates, scores, fit_times, score_times)
        self.n_splits_, self.scorer_ = n_splits, scorer
        self.best_index_ = int(np.argmin(self.cv_results_["rank_test_score"]))
        self.best_params_, self.best_score_ = candidates[self.best_index_], float(scores[:, self.best_index_].mean())
        if self.refit:
            start = time.perf_counter()
            self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_)
            self.best_estimator_.fit(X, y, sample_weight=sample_weight)
            self.refit_time_ = time.perf_counter() - start
        return self

    def predict(self, X):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def predict_proba(self, X):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)

    def score(self, X, y=None):
        check_is_fitted(self, "best_estimator_")
        return self.scorer_(self.best_estimator_, X, y)


def _cv_results(candidates: list, scores: np.ndarray, fit_times: np.ndarray, score_times: np.ndarray) -> dict:
    """``GridSearchCV.cv_results_``'s layout: times, ``param_<name>`` masked arrays,
    ``params``, ``split<i>_test_score``, mean/std/rank of the test scores (a failed fit's NaN
    ranks last)."""
    results = {"mean_fit_time": fit_times.mean(0), "std_fit_time": fit_times.std(0),
               "mean_score_time": np.nanmean(score_times, 0) if np.isfinite(score_times).any() else score_times[0],
               "std_score_time": np.nanstd(score_times, 0) if np.isfinite(score_times).any() else score_times[0]}
    for name in sorted({name for p in candidates for name in p}):
        column = np.ma.MaskedArray(np.empty(len(candidates), object), mask=True)
        for k, p in enumerate(candidates):
            if name in p:
                column[k] = p[name]
        results[f"param_{name}"] = column
    results["params"] = candidates
    for s, row in enumerate(scores):
        results[f"split{s}_test_score"] = row
    mean = scores.mean(0)
    results["mean_test_score"], results["std_test_score"] = mean, scores.std(0)
    ranked = np.where(np.isnan(mean), -np.inf, mean)
    results["rank_test_score"] = rankdata(-ranked, method="min").astype(np.int32)
    return results
