"""scikit-learn's MLP objective in fnann's mathematics: its network, its losses, its L2 term and
the hand-derived gradient, compiled. JAX only; ``fnann.sklearn.estimators`` drives it.

scikit-learn (``sklearn/neural_network/_multilayer_perceptron.py``, ``_base.py``) trains, on
a batch of rows i with sample weights s_i (1 without weights) and S = Σ_i s_i,

    J(θ) = (1/S) Σ_i s_i ℓ(z_i, y_i) + α/(2S) Σ_l ‖W^(l)‖²          (weights only, no biases)

where ℓ is the canonical loss of the output: ½‖p - y‖² (identity), the cross-entropy
(softmax), the binary cross-entropy summed over outputs (logistic: binary and multi-label)
or the Poisson deviance p - y log p (exp). For each of them

    δ^(L) = ∂J/∂Z^(L) = s ⊙ (A^(L) - Y) / S,      ∂J/∂W^(l) = δ^(l) (A^(l-1))ᵀ + α W^(l) / S,

and fnann's delta recursion (``fnann.backprop.delta_recursion``) carries δ^(L) down. The
value scikit-learn *reports* (``loss_``, ``loss_curve_``, and what its L-BFGS minimizes) is
not J itself: its squared error averages over the outputs (½ mean_o), its log-losses clip
p to [eps, 1 - eps], its Poisson deviance adds the constant y log y - y. ``reported_loss``
computes that value; the gradient is always J's, as in scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

from fnann.activations import elementwise, get_activation
from fnann.backprop import delta_recursion, widened
from fnann.caches import compiled_cache
from fnann.mlp import MLP, Dense, Params, feedforward
from fnann.optim import apply_updates
from fnann.optim.conventions import sklearn_adam, sklearn_sgd
from fnann.optim.loss_scale import all_finite

Array = jax.Array

HIDDEN = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
"""scikit-learn's ``activation`` names -> fnann's activations."""

exp = elementwise("exp", jnp.exp, jnp.exp, formula="exp(z) = e^z", derivative="exp'(z) = e^z")
"""The output of ``MLPRegressor(loss="poisson")`` (not in ``fnann.ACTIVATIONS``: it overflows
at z = 1e4, which every registered activation must not)."""

OUTPUTS = {"identity": "identity", "logistic": "sigmoid", "softmax": "softmax", "exp": exp}
"""scikit-learn's ``out_activation_`` -> fnann's output activations."""


def network(layer_units, activation: str, out_activation: str) -> MLP:
    """The fnann ``MLP`` of a scikit-learn MLP: widths ``layer_units``, inputs first."""
    return MLP(layer_units, hidden=HIDDEN[activation], output=get_activation(OUTPUTS[out_activation]))


def to_params(coefs, intercepts, dtype) -> Params:
    """scikit-learn's ``coefs_`` (n_in, n_out) and ``intercepts_`` as fnann params: W = coefᵀ."""
    return tuple(Dense(jnp.asarray(c.T, dtype), jnp.asarray(b, dtype)) for c, b in zip(coefs, intercepts))


def penalty(params: Params, alpha, S) -> Array:
    """α/(2S) Σ_l ‖W^(l)‖²: scikit-learn's L2 term, on the weights only."""
    return 0.5 * alpha * sum(jnp.sum(layer.W * layer.W) for layer in params) / S


def reported_loss(loss_name: str, out_activation: str, p: Array, Y: Array, s: Array) -> Array:
    """scikit-learn's ``LOSS_FUNCTIONS[...]`` (the value it reports) for outputs ``p``,
    targets ``Y`` of shape (n, n_out) and weights ``s``; np.average's mean is Σ s_i v_i / S.

    Math: squared_error ½ mean_o Σ_i s_i (y - p)² / S;  poisson Σ_o Σ_i s_i (y log(y/p) - y + p) / S;
          log_loss -Σ s_i y log p̃ / S (softmax), binary -Σ s_i (y log p̃ + (1 - y) log(1 - p̃)) / S,
          p̃ = clip(p, eps, 1 - eps), eps the dtype's machine epsilon.
    """
    average = lambda v: jnp.sum(s[:, None] * v, axis=0) / jnp.sum(s)  # np.average(v, weights=s, axis=0)
    if loss_name == "squared_error":
        return 0.5 * jnp.mean(average((Y - p) ** 2))
    if loss_name == "poisson":
        return jnp.sum(average(xlogy(Y, Y / p) - Y + p))
    eps = jnp.finfo(p.dtype).eps
    p = jnp.clip(p, eps, 1 - eps)
    if out_activation == "softmax":
        return -jnp.sum(average(xlogy(Y, p)))
    return -jnp.sum(average(xlogy(Y, p) + xlogy(1 - Y, 1 - p)))


def canonical_loss(out_activation: str, z: Array, Y: Array) -> Array:
    """ℓ(z_i, y_i) per row, from the logits (what J sums; autodiff's reference for δ^(L)).

    Math: identity ½‖z - y‖²;  softmax logsumexp(z) - <y, z>;  logistic Σ_o softplus(z) - y z;
          exp Σ_o e^z - y z.
    """
    if out_activation == "identity":
        return 0.5 * jnp.sum((z - Y) ** 2, axis=-1)
    if out_activation == "softmax":
        return jax.nn.logsumexp(z, axis=-1) - jnp.sum(Y * z, axis=-1)
    if out_activation == "logistic":
        return jnp.sum(jax.nn.softplus(z) - Y * z, axis=-1)
    return jnp.sum(jnp.exp(z) - Y * z, axis=-1)


def loss_and_grad(net: MLP, loss_name: str, out_activation: str, method: str = "manual",
                  compute_dtype: str | None = None) -> Callable:
    """``f(params, X, (Y, s), alpha) -> (scikit-learn's reported loss, ∂J/∂θ)``, unchecked.

    ``"manual"``: δ^(L) = s ⊙ (A^(L) - Y) / S, then the delta recursion, then + α W / S;
    ``"autodiff"``: ``jax.grad`` of J written from ``canonical_loss`` and ``penalty``.
    ``compute_dtype="bfloat16"`` (mixed precision): the forward pass and the recursion run on
    θ_c = cast(θ), X_c = cast(X); A^(L), δ^(L) and the loss are float32 (``widened``), the
    gradients come back in θ's dtype, and the L2 term and its gradient use θ itself.
    """
    cast = (lambda tree: tree) if compute_dtype is None else (
        lambda tree: jax.tree.map(lambda a: a.astype(compute_dtype), tree))

    def manual(params: Params, X, target, alpha):
        Y, s = target
        S = jnp.sum(s)
        low = cast(params)
        p, trace = feedforward(net, low, cast(X))
        p = widened(p)
        delta_L = s[:, None] * (p - Y) / S  # δ^(L) = s ⊙ (A^(L) - Y) / S
        grads, _ = delta_recursion(net, low, trace, delta_L)
        grads = tuple(Dense(g.W.astype(layer.W.dtype) + alpha * layer.W / S, g.b.astype(layer.b.dtype))
                      for g, layer in zip(grads, params))  # + α W / S
        return reported_loss(loss_name, out_activation, p, Y, s) + penalty(params, alpha, S), grads

    def objective(params: Params, X, Y, s, alpha):  # J(θ)
        p, trace = feedforward(net, cast(params), cast(X))
        S = jnp.sum(s)
        ell = canonical_loss(out_activation, widened(trace.Z[-1]), Y)
        return jnp.sum(s * ell) / S + penalty(params, alpha, S), widened(p)

    def autodiff(params: Params, X, target, alpha):
        Y, s = target
        grads, p = jax.grad(objective, has_aux=True)(params, X, Y, s, alpha)
        return reported_loss(loss_name, out_activation, p, Y, s) + penalty(params, alpha, jnp.sum(s)), grads

    return manual if method == "manual" else autodiff


HYPERPARAMETERS = ("learning_rate", "alpha", "momentum", "beta_1", "beta_2", "epsilon")
"""The numbers an epoch takes as arguments (traced): changing one, per epoch (scikit-learn's
``invscaling`` and ``adaptive`` rates) or per model (a sweep), never recompiles."""


def optimizer(solver: str, nesterovs_momentum: bool, hyper: dict):
    """scikit-learn's optimizer for ``solver`` at the epoch's ``hyper`` (traced numbers)."""
    if solver == "sgd":
        return sklearn_sgd(hyper["learning_rate"], hyper["momentum"], nesterovs_momentum)
    return sklearn_adam(hyper["learning_rate"], hyper["beta_1"], hyper["beta_2"], hyper["epsilon"])


def epoch_program(net: MLP, loss_name: str, out_activation: str, method: str, solver: str,
                  nesterovs_momentum: bool, batch_size: int, compute_dtype: str | None = None) -> Callable:
    """One epoch of scikit-learn's stochastic training, not yet jitted (a sweep vmaps it).

    ``epoch(params, opt_state, order, X, (Y, s), hyper) -> (params, opt_state,
    Σ_batches rows_b · loss_b / n_batches, finite)``: a ``lax.scan`` over the batches of
    ``gen_batches`` on ``X[order]``, each step one update of scikit-learn's ``solver``;
    ``hyper`` maps each of ``HYPERPARAMETERS`` to a number. The last, short batch is padded
    to ``batch_size`` rows of weight 0, which add nothing to J, its gradient or S = Σ s (the
    padded step is the same arithmetic as the short one), so every batch runs the one
    compiled step: half the compilation of a scan plus a separate last step.
    """
    value_and_grad = loss_and_grad(net, loss_name, out_activation, method, compute_dtype)

    def epoch(params, opt_state, order, X, target, hyper):
        n = X.shape[0]
        b = min(batch_size, n)
        n_batches = -(-n // b)
        pad = n_batches * b - n
        opt = optimizer(solver, nesterovs_momentum, hyper)
        Y, s = target
        rows = jnp.concatenate([order, jnp.zeros(pad, order.dtype)])  # padding: row 0 ...
        weights = jnp.concatenate([s[order], jnp.zeros(pad, s.dtype)])  # ... with weight 0
        batches = (rows.reshape(n_batches, b), weights.reshape(n_batches, b),
                   jnp.minimum(b, n - b * jnp.arange(n_batches)))

        def step(carry, batch):
            params, opt_state = carry
            rows_b, w, count = batch
            value, grads = value_and_grad(params, X[rows_b], (Y[rows_b], w), hyper["alpha"])  # the batch's rows
            updates, opt_state = opt.update(grads, opt_state, params)
            return (apply_updates(params, updates), opt_state), value * count  # rows_b · loss_b

        (params, opt_state), values = jax.lax.scan(step, (params, opt_state), batches)
        mean = jnp.mean(values)
        return params, opt_state, mean, jnp.isfinite(mean) & all_finite(params)

    return epoch


@compiled_cache(maxsize=32)
def compiled_epoch(*config) -> Callable:
    """``epoch_program(*config)``, jitted; cached by configuration, so a new estimator with the
    same network, solver and batch size (and data shapes) compiles nothing."""
    return jax.jit(epoch_program(*config))


@compiled_cache(maxsize=32)
def compiled_init(solver: str, nesterovs_momentum: bool) -> Callable:
    """``opt.init`` of ``solver`` as one program (the state does not depend on the numbers)."""
    hyper = dict.fromkeys(HYPERPARAMETERS, 0.5)
    return jax.jit(lambda params: optimizer(solver, nesterovs_momentum, hyper).init(params))


@compiled_cache(maxsize=32)
def full_batch_objective(net: MLP, loss_name: str, out_activation: str, method: str,
                         compute_dtype: str | None = None) -> Callable:
    """``loss_and_grad`` for a configuration, one function object per configuration: L-BFGS's
    function (``fnann.lbfgs`` compiles it into its loop and keys its cache by it)."""
    return loss_and_grad(net, loss_name, out_activation, method, compute_dtype)


@compiled_cache(maxsize=32)
def compiled_forward(net: MLP) -> Callable:
    """``params, X -> A^(L)``, jitted: predictions."""
    return jax.jit(lambda params, X: feedforward(net, params, X)[0])
