"""Optimizers exactly as PyTorch, optax, Keras and scikit-learn define them ("conventions").

"Adam", "RMSProp" and "SGD with momentum" are different arithmetic in different libraries:
where eps sits, whether the learning rate is inside the momentum buffer, dampening,
PyTorch's first momentum step, coupled (L2) or decoupled weight decay, the defaults. Each
preset here takes its library's own argument names and defaults, so a configuration ports
by copying it, and reproduces the library's update rule (tested against ``torch.optim`` and
optax to 1e-12 relative over 100 float64 steps, and against a transcription of Keras 3's
source)::

    torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.98), weight_decay=0.1)
    fnann.optim.conventions.torch_adamw(lr=3e-4, betas=(0.9, 0.98), weight_decay=0.1)

fnann's own ``sgd``, ``momentum``, ``rmsprop``, ``adam`` and ``adamw`` are the "fnann"
convention (the textbook's). With g_t the gradient of update k = t - 1 and eta = lr(k):

    torch SGD:      b_1 = g_1, b_t = mu b_{t-1} + (1 - dampening) g_t;  theta -= eta (g_t + mu b_t if nesterov else b_t)
    optax sgd:      b_t = mu b_{t-1} + g_t;                           theta -= eta (g_t + mu b_t if nesterov else b_t)
    Keras SGD:      b_t = mu b_{t-1} + eta g_t;                       theta -= mu b_t + eta g_t if nesterov else b_t
    torch RMSprop:  r = sqrt(E) + eps, alpha = 0.99;  theta -= eta g / r;  momentum: b = mu b + g / r, theta -= eta b
    optax rmsprop:  s = eta g / sqrt(E + eps) (eps_in_sqrt);  theta -= s;  momentum: b = mu b + s, theta -= b
    Keras RMSprop:  as optax (eps inside, eta inside the buffer), eps = 1e-7
    torch/optax Adam: theta -= eta m_hat / (sqrt(v_hat) + eps)  (the paper's Algorithm 1)
    Keras Adam:     theta -= eta sqrt(1 - b2^t) / (1 - b1^t) m_t / (sqrt(v_t) + eps)  (eps "hat"), eps = 1e-7
    sklearn SGD:    v_t = mu v_{t-1} - eta g_t;  theta += mu v_t - eta g_t if nesterov else v_t  (Keras's, b = -v)
    sklearn Adam:   Keras's Adam (eps "hat"), eps = 1e-8: eta_t = eta sqrt(1 - b2^t) / (1 - b1^t)

centered RMSProp divides by the root of E - (mean g)^2 instead of E. Weight decay: torch's
``weight_decay`` is coupled (g += lambda theta) except in ``AdamW``; optax's ``adamw`` and
every Keras ``weight_decay`` are decoupled (theta -= eta lambda theta, applied first in Keras).
Every preset with a weight decay also takes ``mask`` (``fnann.optim.weights_only`` keeps
biases undecayed: PyTorch's parameter groups, Keras's ``exclude_from_weight_decay``).

Sources: PyTorch 2.x ``torch/optim/sgd.py``, ``rmsprop.py``, ``adam.py`` (the single-tensor
path; foreach and fused kernels compute the same maths); optax 0.2 ``optax/_src/alias.py``
and ``transform.py``; Keras 3 ``keras/src/optimizers/sgd.py``, ``rmsprop.py``, ``adam.py``,
``adamw.py`` and ``base_optimizer.py``; scikit-learn 1.9
``sklearn/neural_network/_stochastic_optimizers.py`` (its learning-rate schedules,
``invscaling`` and ``adaptive``, are set per epoch by the estimator, ``fnann.sklearn``). Not reproduced: ``maximize``, AMSGrad, optax's
Nesterov Adam, Keras's clipping and EMA options. States are fnann's NamedTuples (momentum
buffers kept positive, e.g. Keras's velocity is -b), with every moment at least float32.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

import jax
import jax.numpy as jnp

from fnann.optim.base import (
    Optimizer,
    Params,
    ScalarOrSchedule,
    cast_like,
    check_decay,
    check_hyperparameter,
    check_lr,
    check_nonnegative,
    check_positive,
    is_zero,
    lr_at,
    one_minus_power,
    zero_step,
    configured,
    tree_ema,
    tree_map_checked,
    tree_moments_like,
)
from fnann.optim.decay import Mask, decoupled, with_decay
from fnann.optim.optimizers import AdamState, adam, adamw, momentum, rmsprop, sgd

__all__ = [
    "CONVENTIONS", "TraceState", "RMSState",
    "torch_sgd", "torch_rmsprop", "torch_adam", "torch_adamw",
    "optax_sgd", "optax_rmsprop", "optax_adam", "optax_adamw",
    "keras_sgd", "keras_rmsprop", "keras_adam", "keras_adamw",
    "sklearn_sgd", "sklearn_adam",
]


class TraceState(NamedTuple):
    """State of the SGD presets."""

    step: jax.Array  # int32 scalar: number of updates already applied
    trace: Params  # momentum buffer b_t shaped like params; () without momentum


class RMSState(NamedTuple):
    """State of the RMSProp presets."""

    step: jax.Array  # int32 scalar: number of updates already applied
    nu: Params  # running mean of g^2 (torch square_avg, optax nu, Keras velocity)
    mu: Params  # running mean of g when centered (torch grad_avg); () otherwise
    trace: Params  # momentum buffer b_t when momentum > 0; () otherwise


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {value!r}.")
    return value


def _check_betas(betas, names=("betas[0]", "betas[1]")) -> tuple:
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise TypeError(f"betas must be a pair (beta1, beta2); got {betas!r}.")
    return tuple(check_decay(n, b) for n, b in zip(names, betas))


def _optional_momentum(momentum) -> float:
    """optax's ``momentum=None`` (no trace) as 0.0, anything else checked to lie in [0, 1)."""
    return 0.0 if momentum is None else check_decay("momentum", momentum)


def _keras_decay(weight_decay) -> float:
    """Keras's ``weight_decay=None`` (off) as 0.0."""
    return 0.0 if weight_decay is None else check_nonnegative("weight_decay", weight_decay)


# ---------------------------------------------------------------------------------------
# The three kernels; the presets check their arguments.
# ---------------------------------------------------------------------------------------


def _adam_family(
    lr: ScalarOrSchedule,
    b1: float,
    b2: float,
    eps: float,
    *,
    eps_root: float = 0.0,
    eps_hat: bool = False,
    l2: float = 0.0,
    weight_decay: float = 0.0,
    mask: Mask = None,
) -> Optimizer:
    """The Adam update of the library conventions (torch, optax, Keras): ``adam`` and
    ``adamw`` as the textbook writes them, plus each library's variations.

    Math: g <- g + l2 theta (coupled L2, masked);  m_t, v_t as in ``adam``;
    d = m_hat / (sqrt(v_hat + eps_root) + eps), or with ``eps_hat`` (Keras/TensorFlow)
    d = sqrt(1 - b2^t) / (1 - b1^t) * m_t / (sqrt(v_t) + eps);
    theta <- theta - eta_k (d + weight_decay theta) (decoupled decay, masked).
    The returned ``Optimizer`` has no ``config``: the public factories set it.
    """
    lr, b1, b2 = check_lr(lr), check_decay("b1", b1), check_decay("b2", b2)
    eps = check_positive("eps", eps)
    eps_root, l2 = check_nonnegative("eps_root", eps_root), check_nonnegative("l2", l2)
    weight_decay = check_nonnegative("weight_decay", weight_decay)

    def init(params):
        return AdamState(zero_step(), tree_moments_like(params), tree_moments_like(params))

    def update(grads, state, params=None):
        grads, decay_params, keep = with_decay(grads, params, l2, weight_decay, mask)
        eta, t = lr_at(lr, state.step), state.step + 1
        m = tree_ema(grads, state.m, b1, params=params)  # m_t
        v = tree_ema(grads, state.v, b2, power=2)  # v_t
        c1, c2 = one_minus_power(b1, t), one_minus_power(b2, t)  # 1 - b1^t, 1 - b2^t

        def descent(g, m, v, p, keep):
            if eps_hat:
                alpha = cast_like(eta, m) * jnp.sqrt(cast_like(c2, m)) / cast_like(c1, m)
                u = -alpha * m / (jnp.sqrt(v) + eps)
            else:
                m_hat, v_hat = m / cast_like(c1, m), v / cast_like(c2, v)
                u = -cast_like(eta, m) * m_hat / (jnp.sqrt(v_hat + eps_root) + eps)
            return decoupled(u, eta, weight_decay, p, keep).astype(g.dtype)

        return jax.tree.map(descent, grads, m, v, decay_params, keep), AdamState(t, m, v)

    return Optimizer(init, update)


def _sgd_family(lr, mu, *, dampening=0.0, nesterov=False, lr_in_trace=False, l2=0.0,
                weight_decay=0.0, mask=None) -> Optimizer:
    """SGD with momentum as torch, optax (lr outside the buffer) or Keras (lr inside) write it.

    Math: g <- g + l2 theta (coupled, masked).
    lr outside: b_1 = g_1 (torch skips the dampening on the first step),
        b_t = mu b_{t-1} + (1 - dampening) g_t;  u = -eta (g_t + mu b_t if nesterov else b_t).
    lr inside: b_t = mu b_{t-1} + eta g_t;  u = -(mu b_t + eta g_t if nesterov else b_t).
    Without momentum u = -eta g_t. Then u <- u - eta weight_decay theta (decoupled, masked).
    """
    has_trace = not is_zero(mu)

    def init(params):
        return TraceState(zero_step(), tree_moments_like(params) if has_trace else ())

    def accumulate(first, eta):
        def leaf(g, b):
            g = g.astype(b.dtype)
            if lr_in_trace:
                return mu * b + cast_like(eta, b) * g
            if is_zero(dampening):
                return mu * b + g
            return jnp.where(first, g, mu * b + (1 - dampening) * g)
        return leaf

    def update(grads, state, params=None):
        grads, decay_params, keep = with_decay(grads, params, l2, weight_decay, mask)
        eta = lr_at(lr, state.step)
        trace = (tree_map_checked(accumulate(state.step == 0, eta), grads, state.trace,
                                  params=params) if has_trace else ())

        def descent(g, b, p, keep):
            g_ = g.astype(b.dtype)
            if not has_trace:
                u = -cast_like(eta, g_) * g_
            elif lr_in_trace:
                u = -(mu * b + cast_like(eta, b) * g_) if nesterov else -b
            else:
                u = -cast_like(eta, b) * (g_ + mu * b if nesterov else b)
            return decoupled(u, eta, weight_decay, p, keep).astype(g.dtype)

        buffers = trace if has_trace else tree_moments_like(grads)
        return jax.tree.map(descent, grads, buffers, decay_params, keep), TraceState(state.step + 1, trace)

    return Optimizer(init, update)


def _rms_family(lr, decay, eps, *, eps_in_root, centered=False, mu=0.0, nesterov=False,
                lr_in_trace=False, initial_scale=0.0, bias_correction=False, l2=0.0,
                weight_decay=0.0, mask=None) -> Optimizer:
    """RMSProp as torch (eps outside, lr outside the buffer), optax or Keras write it.

    Math: g <- g + l2 theta (coupled, masked);  E_t = decay E_{t-1} + (1 - decay) g_t^2
    (E_0 = initial_scale); centered: M_t = decay M_{t-1} + (1 - decay) g_t, V = E_t - M_t^2,
    else V = E_t (with ``bias_correction`` E_t and M_t are divided by 1 - decay^t first);
    s = g_t / sqrt(V + eps) (eps in the root) or g_t / (sqrt(V) + eps); s <- eta s when the
    lr is inside the buffer; b_t = mu b_{t-1} + s; d = s + mu b_t (nesterov), b_t, or s
    without momentum; u = -d (lr inside) or -eta d; then u <- u - eta weight_decay theta.
    """
    has_trace = not is_zero(mu)

    def init(params):
        zeros = tree_moments_like(params)
        nu = zeros if is_zero(initial_scale) else jax.tree.map(lambda z: z + initial_scale, zeros)
        return RMSState(zero_step(), nu, zeros if centered else (), zeros if has_trace else ())

    def update(grads, state, params=None):
        grads, decay_params, keep = with_decay(grads, params, l2, weight_decay, mask)
        eta, t = lr_at(lr, state.step), state.step + 1
        nu = tree_ema(grads, state.nu, decay, power=2, params=params)  # E_t
        mean = tree_ema(grads, state.mu, decay) if centered else ()  # M_t
        correction = one_minus_power(decay, t)

        def scaled(g, e, m=None):  # s, in the moments' dtype
            if bias_correction:
                e, m = e / cast_like(correction, e), (None if m is None else m / cast_like(correction, m))
            var = e if m is None else e - m * m
            g = g.astype(e.dtype)
            s = g * jax.lax.rsqrt(var + eps) if eps_in_root else g / (jnp.sqrt(var) + eps)
            return cast_like(eta, s) * s if lr_in_trace else s

        s = jax.tree.map(scaled, grads, nu, *((mean,) if centered else ()))
        trace = jax.tree.map(lambda b, s: mu * b + s, state.trace, s) if has_trace else ()

        def descent(g, s, b, p, keep):
            d = (s + mu * b if nesterov else b) if has_trace else s
            u = -d if lr_in_trace else -cast_like(eta, d) * d
            return decoupled(u, eta, weight_decay, p, keep).astype(g.dtype)

        buffers = trace if has_trace else s
        updates = jax.tree.map(descent, grads, s, buffers, decay_params, keep)
        return updates, RMSState(t, nu, mean, trace)

    return Optimizer(init, update)


# ---------------------------------------------------------------------------------------
# PyTorch (torch.optim, keyword names and defaults of torch 2.x)
# ---------------------------------------------------------------------------------------


@configured
def torch_sgd(lr: ScalarOrSchedule = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
              weight_decay: float = 0.0, nesterov: bool = False, mask: Mask = None) -> Optimizer:
    """``torch.optim.SGD``: coupled weight decay, lr outside the buffer, dampening, Nesterov.

    Math: g <- g + weight_decay theta;  b_1 = g_1, b_t = mu b_{t-1} + (1 - dampening) g_t;
    theta <- theta - eta (g_t + mu b_t if nesterov else b_t). The first buffer is the
    gradient itself, undampened, as PyTorch creates it.

    Raises:
        ValueError: an argument out of range; ``nesterov`` without momentum or with dampening.

    Example:
        >>> opt = torch_sgd(lr=0.1, momentum=0.9, dampening=0.5)
        >>> g, state = {"w": jnp.ones(1)}, opt.init({"w": jnp.zeros(1)})
        >>> u1, state = opt.update(g, state)  # b_1 = 1
        >>> u2, state = opt.update(g, state)  # b_2 = 0.9 + 0.5
        >>> round(float(u1["w"][0]), 6), round(float(u2["w"][0]), 6)
        (-0.1, -0.14)
    """
    lr, momentum = check_lr(lr), check_decay("momentum", momentum)
    if not (isinstance(dampening, (int, float)) and 0 <= dampening <= 1):
        raise ValueError(f"dampening must lie in [0, 1]; got dampening={dampening!r}.")
    if _check_bool("nesterov", nesterov) and (is_zero(momentum) or dampening != 0):
        raise ValueError("nesterov=True requires a momentum > 0 and zero dampening (as in torch).")
    return _sgd_family(lr, momentum, dampening=float(dampening), nesterov=nesterov,
                       l2=check_nonnegative("weight_decay", weight_decay), mask=mask)


@configured
def torch_rmsprop(lr: ScalarOrSchedule = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                  weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                  mask: Mask = None) -> Optimizer:
    """``torch.optim.RMSprop``: eps outside the root, alpha = 0.99, coupled weight decay.

    Math: g <- g + weight_decay theta;  E_t = alpha E_{t-1} + (1 - alpha) g_t^2;
    r = sqrt(E_t) + eps (centered: sqrt(E_t - M_t^2) + eps, M_t the running mean of g);
    theta <- theta - eta g_t / r, or with momentum b_t = mu b_{t-1} + g_t / r, theta -= eta b_t.

    Example:
        >>> opt = torch_rmsprop(lr=0.1, alpha=0.5)
        >>> u, _ = opt.update({"w": jnp.array([2.0])}, opt.init({"w": jnp.zeros(1)}))
        >>> u  # -0.1 * 2 / (sqrt(0.5 * 4) + 1e-8)
        {'w': Array([-0.14142136], dtype=float32)}
    """
    lr, alpha = check_lr(lr), check_decay("alpha", alpha)
    return _rms_family(lr, alpha, check_positive("eps", eps), eps_in_root=False,
                       centered=_check_bool("centered", centered),
                       mu=check_decay("momentum", momentum),
                       l2=check_nonnegative("weight_decay", weight_decay), mask=mask)


@configured
def torch_adam(lr: ScalarOrSchedule = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
               weight_decay: float = 0.0, decoupled_weight_decay: bool = False,
               mask: Mask = None) -> Optimizer:
    """``torch.optim.Adam``: the paper's Adam; ``weight_decay`` is coupled (an L2 gradient).

    Math: g <- g + weight_decay theta;  theta <- theta - eta m_hat / (sqrt(v_hat) + eps)
    (PyTorch computes it as (eta / (1 - b1^t)) m_t / (sqrt(v_t) / sqrt(1 - b2^t) + eps)).
    ``decoupled_weight_decay=True`` is ``torch_adamw``.

    Example:
        >>> torch_adam(lr=1e-3) == torch_adam(1e-3, betas=(0.9, 0.999))
        True
    """
    b1, b2 = _check_betas(betas)
    weight_decay = check_nonnegative("weight_decay", weight_decay)
    if _check_bool("decoupled_weight_decay", decoupled_weight_decay):
        return _adam_family(lr, b1, b2, eps, weight_decay=weight_decay, mask=mask)
    return _adam_family(lr, b1, b2, eps, l2=weight_decay, mask=mask)


@configured
def torch_adamw(lr: ScalarOrSchedule = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                weight_decay: float = 1e-2, mask: Mask = None) -> Optimizer:
    """``torch.optim.AdamW``: decoupled weight decay theta <- theta (1 - eta lambda), then Adam.

    Math: theta <- theta - eta (m_hat / (sqrt(v_hat) + eps) + weight_decay theta); the
    same as ``fnann.optim.adamw``, with PyTorch's argument names.

    Example:
        >>> opt, params = torch_adamw(lr=0.1, weight_decay=0.5), {"w": jnp.array([2.0])}
        >>> opt.update({"w": jnp.zeros(1)}, opt.init(params), params)[0]  # -0.1 * 0.5 * 2
        {'w': Array([-0.1], dtype=float32)}
    """
    b1, b2 = _check_betas(betas)
    return _adam_family(lr, b1, b2, eps, weight_decay=weight_decay, mask=mask)


# ---------------------------------------------------------------------------------------
# optax (keyword names and defaults of optax 0.2)
# ---------------------------------------------------------------------------------------


@configured
def optax_sgd(learning_rate: ScalarOrSchedule, momentum: float | None = None,
              nesterov: bool = False) -> Optimizer:
    """``optax.sgd``: ``trace`` (b = g + mu b) then ``scale_by_learning_rate``.

    Math: b_t = mu b_{t-1} + g_t;  theta <- theta - eta (g_t + mu b_t if nesterov else b_t).

    Example:
        >>> opt = optax_sgd(0.1, momentum=0.5)
        >>> g, state = {"w": jnp.ones(1)}, opt.init({"w": jnp.zeros(1)})
        >>> _, state = opt.update(g, state)
        >>> opt.update(g, state)[0]  # -0.1 * (0.5 * 1 + 1)
        {'w': Array([-0.15], dtype=float32)}
    """
    return _sgd_family(check_lr(learning_rate), _optional_momentum(momentum),
                       nesterov=_check_bool("nesterov", nesterov))


@configured
def optax_rmsprop(learning_rate: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8,
                  initial_scale: float = 0.0, eps_in_sqrt: bool = True, centered: bool = False,
                  momentum: float | None = None, nesterov: bool = False,
                  bias_correction: bool = False) -> Optimizer:
    """``optax.rmsprop``: eps inside the root by default; the lr is applied before the trace.

    Math: E_t = decay E_{t-1} + (1 - decay) g_t^2 (E_0 = initial_scale);
    s = eta g_t / sqrt(E_t + eps) (or / (sqrt(E_t) + eps)); centered uses E_t - M_t^2;
    ``bias_correction`` divides E_t (and M_t) by 1 - decay^t;
    with momentum b_t = mu b_{t-1} + s, theta -= (s + mu b_t if nesterov else b_t); else theta -= s.

    Example:
        >>> opt = optax_rmsprop(0.1, decay=0.5)
        >>> opt.update({"w": jnp.array([2.0])}, opt.init({"w": jnp.zeros(1)}))[0]
        {'w': Array([-0.14142136], dtype=float32)}
    """
    return _rms_family(check_lr(learning_rate), check_decay("decay", decay),
                       check_positive("eps", eps), eps_in_root=_check_bool("eps_in_sqrt", eps_in_sqrt),
                       centered=_check_bool("centered", centered), mu=_optional_momentum(momentum),
                       nesterov=_check_bool("nesterov", nesterov), lr_in_trace=True,
                       initial_scale=check_nonnegative("initial_scale", initial_scale),
                       bias_correction=_check_bool("bias_correction", bias_correction))


@configured
def optax_adam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
               eps: float = 1e-8, eps_root: float = 0.0) -> Optimizer:
    """``optax.adam``: theta <- theta - eta m_hat / (sqrt(v_hat + eps_root) + eps).

    Example:
        >>> optax_adam(1e-3).init({"w": jnp.zeros(2)}).m
        {'w': Array([0., 0.], dtype=float32)}
    """
    return _adam_family(learning_rate, b1, b2, eps, eps_root=eps_root)


@configured
def optax_adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
                eps: float = 1e-8, eps_root: float = 0.0, weight_decay: float = 1e-4,
                mask: Mask = None) -> Optimizer:
    """``optax.adamw``: ``scale_by_adam``, ``add_decayed_weights(weight_decay, mask)``, lr.

    Math: theta <- theta - eta (m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay theta).

    Example:
        >>> optax_adamw(1e-3) == optax_adamw(learning_rate=1e-3, weight_decay=1e-4)
        True
    """
    return _adam_family(learning_rate, b1, b2, eps, eps_root=eps_root,
                       weight_decay=weight_decay, mask=mask)


# ---------------------------------------------------------------------------------------
# Keras 3 (keras.optimizers; keyword names and defaults). weight_decay is decoupled in all.
# ---------------------------------------------------------------------------------------


@configured
def keras_sgd(learning_rate: ScalarOrSchedule = 0.01, momentum: float = 0.0,
              nesterov: bool = False, weight_decay: float | None = None,
              mask: Mask = None) -> Optimizer:
    """``keras.optimizers.SGD``: the learning rate inside the velocity (fnann's ``momentum``).

    Math: theta <- theta - eta weight_decay theta;  b_t = mu b_{t-1} + eta g_t;
    theta <- theta - (mu b_t + eta g_t if nesterov else b_t) (Keras keeps -b_t).

    Example:
        >>> opt = keras_sgd(0.1, momentum=0.5)
        >>> g, state = {"w": jnp.ones(1)}, opt.init({"w": jnp.zeros(1)})
        >>> _, state = opt.update(g, state)
        >>> opt.update(g, state)[0]  # -(0.5 * 0.1 + 0.1)
        {'w': Array([-0.15], dtype=float32)}
    """
    return _sgd_family(check_lr(learning_rate), check_decay("momentum", momentum),
                       nesterov=_check_bool("nesterov", nesterov), lr_in_trace=True,
                       weight_decay=_keras_decay(weight_decay), mask=mask)


@configured
def keras_rmsprop(learning_rate: ScalarOrSchedule = 0.001, rho: float = 0.9,
                  momentum: float = 0.0, epsilon: float = 1e-7, centered: bool = False,
                  weight_decay: float | None = None, mask: Mask = None) -> Optimizer:
    """``keras.optimizers.RMSprop``: eps inside the root, the lr inside the momentum buffer.

    Math: theta <- theta - eta weight_decay theta;  E_t = rho E_{t-1} + (1 - rho) g_t^2;
    s = eta g_t / sqrt(E_t + epsilon) (centered: E_t - M_t^2);
    with momentum b_t = mu b_{t-1} + s, theta -= b_t; else theta -= s.

    Example:
        >>> opt = keras_rmsprop(0.1, rho=0.5, epsilon=1e-8)
        >>> opt.update({"w": jnp.array([2.0])}, opt.init({"w": jnp.zeros(1)}))[0]
        {'w': Array([-0.14142136], dtype=float32)}
    """
    return _rms_family(check_lr(learning_rate), check_decay("rho", rho),
                       check_positive("epsilon", epsilon), eps_in_root=True,
                       centered=_check_bool("centered", centered),
                       mu=check_decay("momentum", momentum), lr_in_trace=True,
                       weight_decay=_keras_decay(weight_decay), mask=mask)


@configured
def keras_adam(learning_rate: ScalarOrSchedule = 0.001, beta_1: float = 0.9,
               beta_2: float = 0.999, epsilon: float = 1e-7,
               weight_decay: float | None = None, mask: Mask = None) -> Optimizer:
    """``keras.optimizers.Adam``: eps "hat", added to sqrt(v_t) before the bias correction.

    Math: theta <- theta - eta weight_decay theta;
    theta <- theta - eta sqrt(1 - b2^t) / (1 - b1^t) m_t / (sqrt(v_t) + epsilon),
    i.e. the paper's eps = epsilon / sqrt(1 - b2^t), large in the first steps.

    Example:
        >>> opt = keras_adam(0.1, epsilon=1.0)
        >>> u, _ = opt.update({"w": jnp.array([1.0])}, opt.init({"w": jnp.zeros(1)}))
        >>> u  # m_1 = 0.1, v_1 = 0.001: -(0.1 sqrt(0.001) / 0.1) 0.1 / (sqrt(0.001) + 1)
        {'w': Array([-0.00306534], dtype=float32)}
    """
    b1, b2 = check_decay("beta_1", beta_1), check_decay("beta_2", beta_2)
    return _adam_family(learning_rate, b1, b2, check_positive("epsilon", epsilon), eps_hat=True,
                       weight_decay=_keras_decay(weight_decay), mask=mask)


@configured
def keras_adamw(learning_rate: ScalarOrSchedule = 0.001, weight_decay: float = 0.004,
                beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                mask: Mask = None) -> Optimizer:
    """``keras.optimizers.AdamW``: ``keras_adam`` with a decoupled weight decay (default 0.004).

    Example:
        >>> keras_adamw() == keras_adamw(0.001, 0.004)
        True
    """
    if weight_decay is None:
        raise ValueError("weight_decay must be a float for keras_adamw (as in Keras); got None.")
    b1, b2 = check_decay("beta_1", beta_1), check_decay("beta_2", beta_2)
    return _adam_family(learning_rate, b1, b2, check_positive("epsilon", epsilon), eps_hat=True,
                       weight_decay=_keras_decay(weight_decay), mask=mask)


# ---------------------------------------------------------------------------------------
# scikit-learn (sklearn.neural_network's SGDOptimizer and AdamOptimizer, names and defaults
# of MLPClassifier's constructor)
# ---------------------------------------------------------------------------------------


@configured
def sklearn_sgd(learning_rate_init: ScalarOrSchedule = 0.001, momentum: float = 0.9,
                nesterovs_momentum: bool = True) -> Optimizer:
    """scikit-learn's ``SGDOptimizer``: the learning rate inside the velocity, as Keras.

    Math: v_t = mu v_{t-1} - eta g_t;  theta <- theta + (mu v_t - eta g_t if nesterov else v_t)
    (fnann keeps b = -v). ``momentum`` may be 1, as scikit-learn allows. Its ``invscaling``
    and ``adaptive`` rates change eta between epochs: pass a schedule, or a new rate per epoch.

    Example:
        >>> opt = sklearn_sgd(0.1, momentum=0.5, nesterovs_momentum=False)
        >>> g, state = {"w": jnp.ones(1)}, opt.init({"w": jnp.zeros(1)})
        >>> _, state = opt.update(g, state)
        >>> opt.update(g, state)[0]  # v_2 = 0.5 (-0.1) - 0.1
        {'w': Array([-0.15], dtype=float32)}
    """
    mu = check_hyperparameter("momentum", momentum, 0.0, 1.0)
    return _sgd_family(check_lr(learning_rate_init), mu, lr_in_trace=True,
                       nesterov=_check_bool("nesterovs_momentum", nesterovs_momentum))


@configured
def sklearn_adam(learning_rate_init: ScalarOrSchedule = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8) -> Optimizer:
    """scikit-learn's ``AdamOptimizer``: the bias correction folded into the step size.

    Math: m_t = b1 m + (1 - b1) g;  v_t = b2 v + (1 - b2) g^2;
    eta_t = eta sqrt(1 - b2^t) / (1 - b1^t);  theta <- theta - eta_t m_t / (sqrt(v_t) + epsilon).

    Example:
        >>> opt = sklearn_adam(0.1, epsilon=1.0)
        >>> u, _ = opt.update({"w": jnp.array([1.0])}, opt.init({"w": jnp.zeros(1)}))
        >>> u  # as keras_adam(0.1, epsilon=1.0)
        {'w': Array([-0.00306534], dtype=float32)}
    """
    b1, b2 = check_decay("beta_1", beta_1), check_decay("beta_2", beta_2)
    return _adam_family(learning_rate_init, b1, b2, check_positive("epsilon", epsilon), eps_hat=True)


CONVENTIONS = MappingProxyType({
    "fnann": MappingProxyType({"sgd": sgd, "momentum": momentum, "rmsprop": rmsprop,
                               "adam": adam, "adamw": adamw}),
    "torch": MappingProxyType({"sgd": torch_sgd, "rmsprop": torch_rmsprop,
                               "adam": torch_adam, "adamw": torch_adamw}),
    "optax": MappingProxyType({"sgd": optax_sgd, "rmsprop": optax_rmsprop,
                               "adam": optax_adam, "adamw": optax_adamw}),
    "keras": MappingProxyType({"sgd": keras_sgd, "rmsprop": keras_rmsprop,
                               "adam": keras_adam, "adamw": keras_adamw}),
    "sklearn": MappingProxyType({"sgd": sklearn_sgd, "adam": sklearn_adam}),
})
"""``CONVENTIONS[convention][algorithm]``: the factory, e.g. ``CONVENTIONS["torch"]["adam"]``."""
