"""``MLPClassifier`` and ``MLPRegressor``: scikit-learn's estimators, trained by fnann.

Each is a subclass of the installed scikit-learn's estimator of the same name: the same
constructor (read from it, so it follows the installed version), the same validation, label
handling, initialization (its ``RandomState`` draws, layer by layer, coefs then intercepts),
attributes, ``predict``/``predict_proba``/``score``, ``partial_fit`` and ``warm_start``. What
fnann replaces is the mathematics: the forward pass, the hand-derived backward
(``fnann.sklearn.objective``), the optimizers (``fnann.optim.conventions.sklearn_sgd`` and
``sklearn_adam``), every epoch compiled as one XLA program (a ``lax.scan`` over the batches),
and L-BFGS (``fnann.lbfgs``, compiled, in place of scipy's). The per-epoch rules stay
scikit-learn's own, on the host: the shuffle (its ``RandomState``), ``tol`` and
``n_iter_no_change``, the ``invscaling``/``adaptive`` learning rates, early stopping on a
(stratified) validation split, the ``ConvergenceWarning``.

Three keyword-only extras: ``method`` (``"manual"``: the hand-derived backward, or
``"autodiff"``: ``jax.grad`` of the same objective), ``dtype`` (``None``: the data's dtype,
float64 or float32, as scikit-learn computes; ``"float32"``: faster, and what a GPU wants)
and ``compute_dtype`` (``"bfloat16"``: mixed precision, the params and optimizer state
staying in ``dtype``; float16 would need loss scaling, which the estimators do not offer).
float64 runs with ``jax.enable_x64`` switched on around fnann's calls only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import warnings
from collections.abc import Callable

import jax
import numpy as np
import scipy.sparse as sp
from scipy.optimize import OptimizeResult
from sklearn import neural_network
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import shuffle
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import check_is_fitted, validate_data

from fnann.lbfgs import lbfgs
from fnann.mlp import MLP, Params
from fnann.sklearn import objective
from fnann.sklearn.objective import to_params

HOOKS = ("_fit", "_fit_stochastic", "_fit_lbfgs", "_forward_pass_fast", "_initialize", "_update_no_improvement_count")
"""scikit-learn's methods the estimators override or call: if a scikit-learn renames one, its
own numpy code would run in fnann's place unnoticed, so importing this module refuses."""
_missing = [hook for hook in HOOKS if not hasattr(neural_network.MLPClassifier, hook)]
if _missing:
    import sklearn

    raise ImportError(f"fnann.sklearn needs scikit-learn's MLP methods {_missing}, which scikit-learn "
                      f"{sklearn.__version__} does not have (fnann.sklearn is tested with 1.7 to 1.9).")

EXTRAS = {"method": "manual", "dtype": None, "compute_dtype": None}
"""fnann's keyword-only constructor arguments and their defaults."""


class _Optimizer:
    """scikit-learn's optimizer object, as its ``SGDOptimizer``/``AdamOptimizer`` keep it
    between ``partial_fit`` calls: the solver's settings, the current learning rate and its
    per-epoch rules; the moments live in ``state`` (fnann's optimizer state, numpy leaves)."""

    def __init__(self, solver: tuple, learning_rate_init: float, lr_schedule: str, power_t: float):
        self.solver, self.learning_rate_init = solver, float(learning_rate_init)
        self.learning_rate, self.lr_schedule, self.power_t = float(learning_rate_init), lr_schedule, power_t
        self.state = None

    def iteration_ends(self, time_step: int) -> None:
        """invscaling (sgd): η = η_0 / (t + 1)^power_t, t the samples seen so far."""
        if self.solver[0] == "sgd" and self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg: str, verbose) -> bool:
        """adaptive (sgd): η /= 5 after ``n_iter_no_change`` stalls, until η <= 1e-6; else stop."""
        if self.solver[0] != "sgd" or self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


@dataclasses.dataclass
class _Run:
    """One call's training, between scikit-learn's epochs: the epoch program's configuration
    (``objective.epoch_program``'s arguments), fnann's params and optimizer state, the
    training rows (host arrays), the order of the rows so far, the validation split."""

    config: tuple
    params: Params
    state: object
    X: np.ndarray
    target: tuple
    sample_idx: np.ndarray
    n_batches: int
    validation: tuple
    incremental: bool
    dtype: np.dtype


class _FnannMLP:
    """What the two estimators share: fnann in place of scikit-learn's numpy mathematics."""

    _extra_constraints = {"method": [StrOptions({"manual", "autodiff"})],
                          "dtype": [None, StrOptions({"float32", "float64"})],
                          "compute_dtype": [None, StrOptions({"bfloat16"})]}

    def to_fnann(self) -> tuple[MLP, Params]:
        """The fitted network as fnann's ``(net, params)``, for ``fnann.explain``-style
        analysis, ``fnann.diagnostics`` and ``fnann.save`` (W^(l) = ``coefs_[l-1]``ᵀ)."""
        check_is_fitted(self, "coefs_")
        dtype = self.coefs_[0].dtype
        with _x64(dtype):
            return self._network(), to_params(self.coefs_, self.intercepts_, dtype)

    def _network(self) -> MLP:
        units = [self.coefs_[0].shape[0], *(c.shape[1] for c in self.coefs_)]
        return objective.network(units, self.activation, self.out_activation_)

    def _loss_name(self) -> str:
        return "log_loss" if is_classifier(self) else self.loss

    def _dtype(self, X) -> np.dtype:
        return np.dtype(self.dtype) if self.dtype is not None else X.dtype

    def _forward_pass_fast(self, X, check_input=True):
        """A^(L) for ``X``: fnann's compiled forward pass at the params' dtype."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        dtype = self.coefs_[0].dtype
        with _x64(dtype):
            params = to_params(self.coefs_, self.intercepts_, dtype)
            return np.array(objective.compiled_forward(self._network())(params, _dense(X, dtype)))  # writable, as scikit-learn's

    def _store(self, params: Params) -> None:
        self.coefs_ = [np.array(layer.W).T for layer in params]
        self.intercepts_ = [np.array(layer.b) for layer in params]

    def _fit_stochastic(self, X, y, sample_weight, activations, deltas, coef_grads, intercept_grads,
                        layer_units, incremental):
        """scikit-learn's ``_fit_stochastic``, rule for rule, with each epoch one fnann program."""
        dtype = self._dtype(X)
        with _x64(dtype):
            run = self._start(X, y, sample_weight, incremental, dtype)
            if getattr(self, "_sweep_capture", False):
                self._captured_run = run  # fnann.sklearn.sweep trains it with its group
                return
            epoch = objective.compiled_epoch(*run.config)
            X_dev, target = jax.device_put((run.X, run.target))
            params, state = run.params, run.state
            try:
                for _ in range(self.max_iter):
                    params, state, mean, finite = epoch(params, state, self._order(run), X_dev, target, self._hyper(run))
                    if self._end_epoch(run, lambda: params, float(mean), bool(finite)):
                        break
            except KeyboardInterrupt:
                warnings.warn("Training interrupted by user.")
            self._finish(run, params, state)

    def _start(self, X, y, sample_weight, incremental, dtype) -> _Run:
        """Everything before scikit-learn's first epoch: its optimizer object (kept across
        ``partial_fit``), the validation split, the batch size; fnann's params and state."""
        if not incremental or not hasattr(self, "_optimizer"):
            solver = (self.solver, float(self.momentum), bool(self.nesterovs_momentum),
                      float(self.beta_1), float(self.beta_2), float(self.epsilon))
            self._optimizer = _Optimizer(solver, self.learning_rate_init, self.learning_rate, self.power_t)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X_train, y_train, sw_train, validation = self._split(X, y, sample_weight)
        n_samples = X_train.shape[0]
        batch_size = self._batch_size(n_samples)
        name, _, nesterov = self._optimizer.solver[:3]
        config = (self._network(), self._loss_name(), self.out_activation_, self.method, name, nesterov, batch_size,
                  self.compute_dtype)
        params = to_params(self.coefs_, self.intercepts_, dtype)
        state = self._optimizer.state
        if state is None:
            state = objective.compiled_init(name, nesterov)(params)
        weights = np.ones(n_samples, dtype) if sw_train is None else np.asarray(sw_train, dtype)
        self.n_iter_ = 0
        return _Run(config, params, state, _dense(X_train, dtype), (np.asarray(y_train, dtype), weights),
                    np.arange(n_samples, dtype=int), -(-n_samples // batch_size), validation, incremental, dtype)

    def _order(self, run: _Run) -> np.ndarray:
        """The epoch's order of the rows: scikit-learn's shuffle on its ``RandomState``; a
        batch whose sample weights sum to 0 is refused (J divides by that sum)."""
        if self.shuffle:
            run.sample_idx = shuffle(run.sample_idx, random_state=self._random_state)
        weights = run.target[1]
        if not weights.all():  # some weight is 0: is a whole batch?
            b = run.config[6]
            sums = np.add.reduceat(weights[run.sample_idx], np.arange(0, len(weights), b))
            if not sums.all():
                first = int(np.argmin(sums != 0)) * b
                raise ValueError(f"sample_weight: the batch of rows {first} to {min(first + b, len(weights)) - 1} "
                                 f"of epoch {self.n_iter_ + 1} weighs 0 in total, and the objective divides by a "
                                 "batch's total weight (scikit-learn's MLP fails here with a ZeroDivisionError); "
                                 "drop the rows of weight 0, or use a larger batch_size or shuffle=True.")
        return run.sample_idx.astype(np.int32)

    def _hyper(self, run: _Run) -> dict:
        """The epoch's numbers (``objective.HYPERPARAMETERS``): the current learning rate and
        the optimizer's settings, which ``partial_fit`` keeps from the first call."""
        _, momentum, _, beta_1, beta_2, epsilon = self._optimizer.solver
        values = (self._optimizer.learning_rate, self.alpha, momentum, beta_1, beta_2, epsilon)
        return {k: np.asarray(v, run.dtype) for k, v in zip(objective.HYPERPARAMETERS, values)}

    def _end_epoch(self, run: _Run, current: Callable[[], Params], mean: float, finite: bool) -> bool:
        """scikit-learn's bookkeeping after an epoch (``current()``: the params now, fetched
        only where early stopping scores them); True when training stops."""
        self.n_iter_ += 1
        self.loss_ = mean * run.n_batches / run.X.shape[0]  # Σ_b rows_b loss_b / n
        self.t_ += run.X.shape[0]
        self.loss_curve_.append(self.loss_)
        if self.verbose:
            print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
        if self.early_stopping or not finite:
            self._store(current())  # the validation score reads coefs_
        if not finite:
            return True  # scikit-learn's _fit raises: "Solver produced non-finite parameter weights"
        self._update_no_improvement_count(self.early_stopping, *run.validation)
        self._optimizer.iteration_ends(self.t_)
        if self._no_improvement_count > self.n_iter_no_change:
            if self.early_stopping:
                msg = ("Validation score did not improve more than tol=%f for %d consecutive epochs."
                       % (self.tol, self.n_iter_no_change))
            else:
                msg = ("Training loss did not improve more than tol=%f for %d consecutive epochs."
                       % (self.tol, self.n_iter_no_change))
            if self._optimizer.trigger_stopping(msg, self.verbose):
                return True
            self._no_improvement_count = 0
        if run.incremental:
            return True
        if self.n_iter_ == self.max_iter:
            warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                          "optimization hasn't converged yet." % self.max_iter, ConvergenceWarning)
        return False

    def _finish(self, run: _Run, params, state) -> None:
        self._optimizer.state = jax.device_get(state)  # numpy leaves: the estimator pickles without JAX arrays
        self._store(params)
        if self.early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _split(self, X, y, sample_weight):
        """The training rows, and with ``early_stopping`` scikit-learn's validation split
        (``train_test_split`` on its ``RandomState``, stratified for one-output classifiers)."""
        if not self.early_stopping:
            return X, y, sample_weight, (None, None, None)
        stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
        parts = train_test_split(*arrays, random_state=self._random_state, test_size=self.validation_fraction,
                                 stratify=stratify)
        X_train, X_val, y_train, y_val = parts[:4]
        sw_train, sw_val = (parts[4], parts[5]) if sample_weight is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of your dataset.")
        if is_classifier(self):
            y_val = self._label_binarizer.inverse_transform(y_val)
        return X_train, y_train, sw_train, (X_val, y_val, sw_val)

    def _batch_size(self, n_samples: int) -> int:
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
        return int(np.clip(self.batch_size, 1, n_samples))

    def _fit_lbfgs(self, X, y, sample_weight, activations, deltas, coef_grads, intercept_grads, layer_units):
        """L-BFGS on the full batch: ``fnann.lbfgs`` (compiled) where scikit-learn calls scipy's,
        minimizing the value scikit-learn reports with J's gradient, as it does."""
        dtype = self._dtype(X)
        with _x64(dtype):
            fun = objective.full_batch_objective(self._network(), self._loss_name(), self.out_activation_,
                                                 self.method, self.compute_dtype)
            weights = np.ones(X.shape[0], dtype) if sample_weight is None else np.asarray(sample_weight, dtype)
            data = jax.device_put((_dense(X, dtype), (np.asarray(y, dtype), weights), np.asarray(self.alpha, dtype)))
            result = lbfgs(fun, to_params(self.coefs_, self.intercepts_, dtype), args=data,
                           max_iter=self.max_iter, max_fun=self.max_fun, gtol=self.tol)
            if self.verbose:
                print(result.message)
            self.n_iter_ = _check_optimize_result(
                "lbfgs", OptimizeResult(status=result.status, nit=result.n_iter, message=result.message), self.max_iter)
            self.loss_ = float(result.value)
            self._store(result.x)


def _x64(dtype):
    """``jax.enable_x64`` around fnann's calls for float64 data, else nothing."""
    return jax.enable_x64(True) if np.dtype(dtype) == np.float64 else contextlib.nullcontext()


def _dense(X, dtype) -> np.ndarray:
    """``X`` as a dense numpy array of ``dtype`` (a sparse matrix is densified: XLA's matrix
    products are dense)."""
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype)


def _with_extras(parent):
    """The installed scikit-learn estimator's ``__init__`` with fnann's keyword-only extras
    appended: one home for the signature (scikit-learn's), so ``get_params``, ``clone`` and
    its estimator checks see every argument, with its default, by its name."""
    signature = inspect.signature(parent.__init__)
    extras = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
              for name, default in EXTRAS.items()]
    signature = signature.replace(parameters=[*signature.parameters.values(), *extras])

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature
    __init__.__doc__ = f"scikit-learn's ``{parent.__name__}`` arguments, plus fnann's {', '.join(EXTRAS)}."
    return __init__


class MLPClassifier(_FnannMLP, neural_network.MLPClassifier):
    """scikit-learn's ``MLPClassifier``, trained by fnann (see the module's docstring).

    Example:
      >>> from sklearn.datasets import load_iris
      >>> X, y = load_iris(return_X_y=True)
      >>> clf = MLPClassifier((16,), solver="lbfgs", max_iter=300, random_state=0).fit(X, y)
      >>> clf.score(X, y) > 0.95
      True
    """

    __init__ = _with_extras(neural_network.MLPClassifier)
    _parameter_constraints = {**neural_network.MLPClassifier._parameter_constraints, **_FnannMLP._extra_constraints}


class MLPRegressor(_FnannMLP, neural_network.MLPRegressor):
    """scikit-learn's ``MLPRegressor``, trained by fnann (see the module's docstring)."""

    __init__ = _with_extras(neural_network.MLPRegressor)
    _parameter_constraints = {**neural_network.MLPRegressor._parameter_constraints, **_FnannMLP._extra_constraints}
