"""The seed's optimizers, exactly as the textbook gives them: one factory per algorithm.

    momentum:  v_t = gamma v_{t-1} + eta g_t;                theta <- theta - v_t
    RMSProp:   E_t = beta E_{t-1} + (1 - beta) g_t^2;        theta <- theta - eta g_t / sqrt(E_t + eps)
    Adam:      m_t = b1 m_{t-1} + (1 - b1) g_t;   v_t = b2 v_{t-1} + (1 - b2) g_t^2
               m_hat = m_t / (1 - b1^t);  v_hat = v_t / (1 - b2^t)
               theta <- theta - eta m_hat / (sqrt(v_hat) + eps)
    AdamW:     as Adam, and theta <- theta - eta lambda theta beside it (decoupled decay)

eps sits inside the root for RMSProp and outside for Adam. Each factory validates its
hyperparameters (a traced one, e.g. under ``vmap`` over lr, passes through unchecked) and
returns an ``Optimizer`` that compares and hashes by its arguments. The protocol, the
precision rule (moments in at least float32) and the tree helpers are in ``fnann.optim.base``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from fnann.optim.base import (
    Optimizer,
    Params,
    ScalarOrSchedule,
    cast_like,
    check_decay,
    check_lr,
    check_nonnegative,
    check_positive,
    lr_at,
    one_minus_power,
    zero_step,
    apply_updates,  # noqa: F401  (used by the doctests)
    configured,
    textbook,
    tree_ema,
    tree_map_checked,
    tree_moments_like,
)
from fnann.optim.decay import Mask, decoupled, with_decay
from fnann.tree_codec import register_checkpoint_type

__all__ = [
    "SGDState", "MomentumState", "RMSPropState", "AdamState", "sgd", "momentum", "nesterov", "rmsprop", "adam",
    "adamw",
]


@register_checkpoint_type
class SGDState(NamedTuple):
    """State of ``sgd``: only the step count, which a schedule needs."""

    step: jax.Array  # int32 scalar: number of updates already applied


@register_checkpoint_type
class MomentumState(NamedTuple):
    """State of ``momentum``."""

    step: jax.Array  # int32 scalar: number of updates already applied
    v: Params  # velocity v_t, shaped like params (it already includes the learning rate)


@register_checkpoint_type
class RMSPropState(NamedTuple):
    """State of ``rmsprop``."""

    step: jax.Array  # int32 scalar: number of updates already applied
    E: Params  # running mean of squared gradients E[g^2]_t, shaped like params


@register_checkpoint_type
class AdamState(NamedTuple):
    """State of ``adam``."""

    step: jax.Array  # int32 scalar: number of updates already applied (t - 1)
    m: Params  # first-moment estimate m_t, shaped like params
    v: Params  # second-moment estimate v_t, shaped like params



@textbook("θ ← θ - η ∂L/∂θ", default_lr=0.1)
def sgd(lr: ScalarOrSchedule) -> Optimizer:
    """Stochastic gradient descent.

    Math: theta <- theta - eta_k g_k, with eta_k = lr or lr(k) for update k = 0, 1, ...
    The state always counts steps (``SGDState(step)``), so a float and a schedule give
    states of the same structure.

    Reference: Robbins & Monro (1951); Goodfellow, Bengio & Courville, Deep Learning
    (2016), Algorithm 8.1.

    Args:
        lr: learning rate eta >= 0, or a schedule ``step -> eta``.

    Returns:
        An ``Optimizer``.

    Raises:
        ValueError: ``lr`` negative or not finite.
        TypeError: ``lr`` neither a number nor callable.

    Example:
        >>> opt = sgd(0.1)
        >>> params = {"w": jnp.array([1.0, 2.0])}
        >>> state = opt.init(params)
        >>> updates, state = opt.update({"w": jnp.array([1.0, -1.0])}, state, params)
        >>> apply_updates(params, updates)
        {'w': Array([0.9, 2.1], dtype=float32)}
    """
    lr = check_lr(lr)

    def init(params):
        del params
        return SGDState(zero_step())

    def update(grads, state, params=None):
        eta = lr_at(lr, state.step)
        updates = tree_map_checked(lambda g: -cast_like(eta, g) * g, grads, params=params)
        return updates, SGDState(state.step + 1)

    return Optimizer(init, update)


@textbook("v ← γ v + η ∂L/∂θ   (v starts at 0)", "θ ← θ - v", default_lr=0.01)
def momentum(lr: ScalarOrSchedule, gamma: float = 0.9) -> Optimizer:
    """Gradient descent with (heavy-ball) momentum, the learning rate inside the velocity.

    Math: v_t = gamma v_{t-1} + eta_k g_t;  theta <- theta - v_t  (v_0 = 0, eta_k = lr(k)).
    With a constant lr this equals optax/PyTorch's ``v = gamma v + g; theta -= lr v`` up to
    the factor lr in v; with a schedule it differs: here each gradient keeps the rate of the
    step it arrived at.

    Reference: Polyak (1964); Goodfellow, Bengio & Courville, Deep Learning (2016),
    Algorithm 8.2; Sutskever et al., "On the importance of initialization and momentum in
    deep learning" (ICML 2013), classical momentum.

    Args:
        lr: learning rate eta >= 0, or a schedule ``step -> eta``.
        gamma: momentum coefficient in [0, 1).

    Returns:
        An ``Optimizer`` whose state is ``MomentumState(step, v)``.

    Raises:
        ValueError: ``lr`` negative or not finite; ``gamma`` outside [0, 1).
        TypeError: ``lr`` neither a number nor callable.

    Example:
        >>> opt = momentum(0.1, gamma=0.5)
        >>> params = {"w": jnp.array([1.0])}
        >>> state = opt.init(params)
        >>> updates, state = opt.update({"w": jnp.array([1.0])}, state)  # v = 0.1
        >>> updates, state = opt.update({"w": jnp.array([1.0])}, state)  # v = 0.05 + 0.1
        >>> updates
        {'w': Array([-0.15], dtype=float32)}
    """
    return _with_velocity(lr, gamma, look_ahead=False)


@textbook("v ← γ v + η ∂L/∂θ   (v starts at 0)", "θ ← θ - (γ v + η ∂L/∂θ)   (the step looks ahead along v)",
          default_lr=0.01)
def nesterov(lr: ScalarOrSchedule, gamma: float = 0.9) -> Optimizer:
    """Nesterov's accelerated gradient: momentum whose gradient is taken after the step it
    is about to make.

    Math (the textbook form): v_t = gamma v_{t-1} + eta_k ∇L(theta_{t-1} - gamma v_{t-1});
    theta_t = theta_{t-1} - v_t. Written in the look-ahead variable phi = theta - gamma v,
    whose gradient is the one the step sees (Bengio, Boulanger-Lewandowski & Pascanu 2013),
    the same recursion needs only the gradient at the current params:
        v_t = gamma v_{t-1} + eta_k g_t;   theta <- theta - (gamma v_t + eta_k g_t).
    With a constant lr this is PyTorch's ``SGD(nesterov=True)`` (``buf = mu buf + g;
    theta -= lr (g + mu buf)``) with v = lr buf (``fnann.optim.conventions.torch_sgd``).

    Reference: Nesterov (1983); Sutskever et al., "On the importance of initialization and
    momentum in deep learning" (ICML 2013), eq. (3)-(4); Goodfellow, Bengio & Courville,
    Deep Learning (2016), Algorithm 8.3.

    Args:
        lr: learning rate eta >= 0, or a schedule ``step -> eta``.
        gamma: momentum coefficient in [0, 1).

    Returns:
        An ``Optimizer`` whose state is ``MomentumState(step, v)``.

    Raises:
        ValueError: ``lr`` negative or not finite; ``gamma`` outside [0, 1).
        TypeError: ``lr`` neither a number nor callable.

    Example:
        >>> opt = nesterov(0.1, gamma=0.5)
        >>> state = opt.init({"w": jnp.array([0.0])})
        >>> updates, state = opt.update({"w": jnp.array([1.0])}, state)  # v = 0.1
        >>> updates  # -(0.5 * 0.1 + 0.1 * 1)
        {'w': Array([-0.15], dtype=float32)}
    """
    return _with_velocity(lr, gamma, look_ahead=True)


def _with_velocity(lr: ScalarOrSchedule, gamma: float, look_ahead: bool) -> Optimizer:
    """The velocity methods: v_t = gamma v_{t-1} + eta g_t, then theta <- theta - v_t
    (heavy ball) or theta <- theta - (gamma v_t + eta g_t) (Nesterov, ``look_ahead``)."""
    lr, gamma = check_lr(lr), check_decay("gamma", gamma)

    def init(params):
        return MomentumState(zero_step(), tree_moments_like(params))

    def update(grads, state, params=None):
        eta = lr_at(lr, state.step)
        step = lambda g, v: gamma * v + cast_like(eta, v) * g.astype(v.dtype)  # noqa: E731
        v = tree_map_checked(lambda g, v: step(g, v).astype(v.dtype), grads, state.v, params=params)  # v_t
        descent = (lambda g, v: step(g, v)) if look_ahead else (lambda g, v: v)  # gamma v_t + eta g_t, or v_t
        updates = jax.tree.map(lambda g, v: (-descent(g, v)).astype(g.dtype), grads, v)
        return updates, MomentumState(state.step + 1, v)

    return Optimizer(init, update)


@textbook("E ← β E + (1 - β) (∂L/∂θ)²   (E starts at 0)", "θ ← θ - η ∂L/∂θ / √(E + ε)", default_lr=1e-3)
def rmsprop(lr: ScalarOrSchedule, beta: float = 0.9, eps: float = 1e-8) -> Optimizer:
    """RMSProp, with eps inside the square root.

    Math: E_t = beta E_{t-1} + (1 - beta) g_t^2;  theta <- theta - eta_k g_t / sqrt(E_t + eps)
    (E_0 = 0, eta_k = lr(k)). optax's default places eps the same way; PyTorch uses
    sqrt(E_t) + eps and beta (``alpha``) = 0.99.

    Reference: Tieleman & Hinton, Coursera "Neural Networks for Machine Learning",
    Lecture 6.5 (2012); Goodfellow, Bengio & Courville, Deep Learning (2016),
    Algorithm 8.5 (which also puts its delta inside the root).

    Args:
        lr: learning rate eta >= 0, or a schedule ``step -> eta``.
        beta: decay of the running mean of squared gradients, in [0, 1).
        eps: finite constant > 0 added to E_t inside the square root.

    Returns:
        An ``Optimizer`` whose state is ``RMSPropState(step, E)``.

    Raises:
        ValueError: ``lr`` negative or not finite; ``beta`` outside [0, 1); ``eps`` <= 0
            or not finite.
        TypeError: ``lr`` neither a number nor callable.

    Example:
        >>> opt = rmsprop(0.1, beta=0.5, eps=1e-8)
        >>> state = opt.init({"w": jnp.array([0.0])})
        >>> updates, state = opt.update({"w": jnp.array([2.0])}, state)
        >>> state.E  # 0.5 * 0 + 0.5 * 2^2
        {'w': Array([2.], dtype=float32)}
        >>> updates  # -0.1 * 2 / sqrt(2 + 1e-8)
        {'w': Array([-0.14142136], dtype=float32)}
    """
    lr, beta = check_lr(lr), check_decay("beta", beta)
    eps = check_positive("eps", eps)

    def init(params):
        return RMSPropState(zero_step(), tree_moments_like(params))

    def update(grads, state, params=None):
        eta = lr_at(lr, state.step)
        mean_sq = tree_ema(grads, state.E, beta, power=2, params=params)  # E_t
        updates = jax.tree.map(
            lambda g, e: (-cast_like(eta, e) * g.astype(e.dtype) / jnp.sqrt(e + eps)).astype(g.dtype),
            grads,
            mean_sq,
        )
        return updates, RMSPropState(state.step + 1, mean_sq)

    return Optimizer(init, update)


@textbook("m ← β1 m + (1 - β1) ∂L/∂θ,   v ← β2 v + (1 - β2) (∂L/∂θ)²   (both start at 0)",
          "m̂ = m / (1 - β1^t),   v̂ = v / (1 - β2^t)",
          "θ ← θ - η m̂ / (√v̂ + ε)", default_lr=1e-3)
def adam(
    lr: ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> Optimizer:
    """Adam, with bias correction and eps outside the square root.

    Math: m_t = b1 m_{t-1} + (1 - b1) g_t;  v_t = b2 v_{t-1} + (1 - b2) g_t^2;
    m_hat = m_t / (1 - b1^t);  v_hat = v_t / (1 - b2^t);
    theta <- theta - eta_k m_hat / (sqrt(v_hat) + eps),
    with t = k + 1 (t counts from 1) and eta_k = lr(k) for update k = 0, 1, ...

    Reference: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015),
    Algorithm 1; Goodfellow, Bengio & Courville, Deep Learning (2016), Algorithm 8.7.

    Args:
        lr: learning rate eta >= 0, or a schedule ``step -> eta``.
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: finite constant > 0 added to sqrt(v_hat).

    Returns:
        An ``Optimizer`` whose state is ``AdamState(step, m, v)``.

    Raises:
        ValueError: ``lr`` negative or not finite; ``b1`` or ``b2`` outside [0, 1);
            ``eps`` <= 0 or not finite.
        TypeError: ``lr`` neither a number nor callable.

    Example:
        >>> opt = adam(lr=0.1)
        >>> state = opt.init({"w": jnp.array([0.0, 0.0])})
        >>> updates, state = opt.update({"w": jnp.array([3.0, -0.5])}, state)
        >>> jnp.round(updates["w"], 6)  # step 1: m_hat = g, v_hat = g^2, so -lr * sign(g)
        Array([-0.1,  0.1], dtype=float32)
    """
    lr, b1, b2, eps = check_lr(lr), check_decay("b1", b1), check_decay("b2", b2), check_positive("eps", eps)

    def init(params):
        return AdamState(zero_step(), tree_moments_like(params), tree_moments_like(params))

    def update(grads, state, params=None):
        eta, t = lr_at(lr, state.step), state.step + 1
        m = tree_ema(grads, state.m, b1, params=params)  # m_t = b1 m_{t-1} + (1 - b1) g_t
        v = tree_ema(grads, state.v, b2, power=2)  # v_t = b2 v_{t-1} + (1 - b2) g_t^2
        c1, c2 = one_minus_power(b1, t), one_minus_power(b2, t)  # 1 - b1^t, 1 - b2^t

        def descent(g, m, v):
            m_hat, v_hat = m / cast_like(c1, m), v / cast_like(c2, v)
            return (-cast_like(eta, m) * m_hat / (jnp.sqrt(v_hat) + eps)).astype(g.dtype)

        return jax.tree.map(descent, grads, m, v), AdamState(t, m, v)

    return Optimizer(init, update)


@configured
def adamw(
    lr: ScalarOrSchedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    mask: Mask = None,
) -> Optimizer:
    """AdamW: Adam with decoupled weight decay.

    Math: m_t, v_t, m_hat, v_hat as in ``adam``;
    theta <- theta - eta_k (m_hat / (sqrt(v_hat) + eps) + lambda theta),
    the decay lambda theta on the leaves the mask selects. The decay bypasses the moments
    (Adam on an L2-regularised loss, ``chain(add_decayed_weights(lambda), adam(lr))``,
    divides it by sqrt(v_hat) instead). The decay is scaled by the learning rate eta_k, as
    in PyTorch's ``AdamW``, optax's ``adamw`` and Keras's ``AdamW`` (the paper keeps a
    separate schedule multiplier); ``weight_decay`` defaults to PyTorch's 1e-2.

    Reference: Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (ICLR 2019),
    Algorithm 2.

    Args:
        lr, b1, b2, eps: as in ``adam``.
        weight_decay: lambda >= 0.
        mask: which leaves decay (see ``fnann.optim.decay``): ``None`` every leaf,
            ``weights_only`` the weights W but not the biases b, a pytree of bools, or a
            callable ``params -> mask``.

    Returns:
        An ``Optimizer`` whose state is ``AdamState(step, m, v)``; ``update`` needs params.

    Raises:
        ValueError: as ``adam``; ``weight_decay`` < 0 or not finite; ``update`` called
            without params; ``mask`` not shaped like the params.

    Example:
        >>> from fnann.optim import weights_only
        >>> from fnann import Dense
        >>> params = (Dense(jnp.array([[1.0]]), jnp.array([1.0])),)
        >>> opt = adamw(lr=0.1, weight_decay=0.5, mask=weights_only)
        >>> grads = (Dense(jnp.array([[3.0]]), jnp.array([3.0])),)
        >>> updates, _ = opt.update(grads, opt.init(params), params)  # Adam's step 1: -lr sign(g)
        >>> jax.tree.map(lambda u: jnp.round(u, 6), updates)
        (Dense(W=Array([[-0.15]], dtype=float32), b=Array([-0.1], dtype=float32)),)
    """
    lr, b1, b2, eps = check_lr(lr), check_decay("b1", b1), check_decay("b2", b2), check_positive("eps", eps)
    weight_decay = check_nonnegative("weight_decay", weight_decay)

    def init(params):
        return AdamState(zero_step(), tree_moments_like(params), tree_moments_like(params))

    def update(grads, state, params=None):
        _, decay_params, keep = with_decay(grads, params, 0.0, weight_decay, mask)
        eta, t = lr_at(lr, state.step), state.step + 1
        m = tree_ema(grads, state.m, b1, params=params)  # m_t
        v = tree_ema(grads, state.v, b2, power=2)  # v_t
        c1, c2 = one_minus_power(b1, t), one_minus_power(b2, t)  # 1 - b1^t, 1 - b2^t

        def descent(g, m, v, p, keep):
            m_hat, v_hat = m / cast_like(c1, m), v / cast_like(c2, v)
            u = -cast_like(eta, m) * m_hat / (jnp.sqrt(v_hat) + eps)
            return decoupled(u, eta, weight_decay, p, keep).astype(g.dtype)  # - eta lambda theta

        return jax.tree.map(descent, grads, m, v, decay_params, keep), AdamState(t, m, v)

    return Optimizer(init, update)
