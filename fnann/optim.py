"""Optimizers as pure pytree transforms.

An optimizer is an ``Optimizer(init, update)`` pair of pure functions (optax's signature,
jax.example_libraries' size)::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)   # params is optional
    params = apply_updates(params, updates)             # theta <- theta + updates

``update`` returns *signed* updates (``-lr * g`` for plain gradient descent), so
``apply_updates`` only adds. ``params``, ``grads`` and every moment in a state are pytrees of
the same structure (dicts, tuples, lists, NamedTuples such as ``Dense(W, b)``, nested); nothing
is mutated, and every function works under ``jax.jit``, ``jax.vmap`` and ``jax.lax.scan``.
Moments are kept in the dtype of the parameters they belong to (float32, float64, bfloat16),
and the scalars of an update (learning rate, bias corrections) are cast to that dtype too.

Learning rates: ``lr`` is a non-negative float or a schedule ``step -> lr`` (see
``fnann.schedules``). The state of every optimizer holds ``step``, an int32 scalar
counting the updates already applied, and update number k (k = 0, 1, ...) uses
``schedule(k)``: the first update uses ``schedule(0)``, as in optax. Adam's
bias-correction exponent is ``t = step + 1``, so t counts from 1 as in the paper.

Grads are checked against the state (and against ``params`` when given) before any maths:
a different tree structure or leaf shape raises ``ValueError`` naming ``grads``. The check is
static, so it also runs at trace time under ``jit``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Union

import jax
import jax.numpy as jnp

Params = Any  # a pytree of arrays
Grads = Any  # a pytree shaped like Params: dL/dtheta
Updates = Any  # a pytree shaped like Params: what apply_updates adds
OptState = Any  # an optimizer's state: a NamedTuple, or a tuple of them for chain
Schedule = Callable[[jax.Array], jax.typing.ArrayLike]
ScalarOrSchedule = Union[float, Schedule]

__all__ = [
    "Optimizer",
    "EmptyState",
    "SGDState",
    "MomentumState",
    "RMSPropState",
    "AdamState",
    "sgd",
    "momentum",
    "rmsprop",
    "adam",
    "chain",
    "clip_by_global_norm",
    "add_decayed_weights",
    "apply_updates",
    "global_norm",
    "tree_zeros_like",
    "tree_ema",
    "tree_map_checked",
]


class Optimizer(NamedTuple):
    """A pair of pure functions over pytrees.

    Attributes:
        init: ``init(params) -> state``.
        update: ``update(grads, state, params=None) -> (updates, state)``; the updates are
            signed, ready for ``apply_updates``.
    """

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]


class EmptyState(NamedTuple):
    """The state of a stateless transform (``clip_by_global_norm``)."""


class SGDState(NamedTuple):
    """State of ``sgd``: only the step count, which a schedule needs."""

    step: jax.Array  # int32 scalar: number of updates already applied


class MomentumState(NamedTuple):
    """State of ``momentum``."""

    step: jax.Array  # int32 scalar: number of updates already applied
    v: Params  # velocity v_t, shaped like params (it already includes the learning rate)


class RMSPropState(NamedTuple):
    """State of ``rmsprop``."""

    step: jax.Array  # int32 scalar: number of updates already applied
    E: Params  # running mean of squared gradients E[g^2]_t, shaped like params


class AdamState(NamedTuple):
    """State of ``adam``."""

    step: jax.Array  # int32 scalar: number of updates already applied (t - 1)
    m: Params  # first-moment estimate m_t, shaped like params
    v: Params  # second-moment estimate v_t, shaped like params


# --------------------------------------------------------------------------------------
# Tree plumbing, in one place.
# --------------------------------------------------------------------------------------


def _check_like(tree: Any, reference: Any, name: str, reference_name: str) -> None:
    """Raise ValueError unless ``tree`` has the structure and leaf shapes of ``reference``."""
    tree_def, ref_def = jax.tree.structure(tree), jax.tree.structure(reference)
    if tree_def != ref_def:
        raise ValueError(
            f"{name} does not have the tree structure of {reference_name}.\n"
            f"  {name}: {tree_def}\n  {reference_name}: {ref_def}\n"
            f"Pass {name} shaped exactly like the params the optimizer was initialised "
            "with, as jax.grad of a loss with respect to those params returns them."
        )
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    for (path, leaf), ref_leaf in zip(leaves, jax.tree.leaves(reference)):
        if jnp.shape(leaf) != jnp.shape(ref_leaf):
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)} has shape {jnp.shape(leaf)} but "
                f"{reference_name} has shape {jnp.shape(ref_leaf)} there."
            )


def tree_map_checked(
    fn: Callable[..., jax.Array], grads: Grads, *trees: Any, params: Params | None = None
) -> Any:
    """``jax.tree.map(fn, grads, *trees)`` after checking that the trees match ``grads``.

    Every tree in ``trees`` (optimizer state) and ``params`` (when given) must have the tree
    structure and leaf shapes of ``grads``; otherwise a ValueError names ``grads`` and prints
    both structures. The check is static, so it runs at trace time under ``jit``.

    Example:
        >>> g, v = {"w": jnp.ones(2)}, {"w": jnp.zeros(2)}
        >>> tree_map_checked(lambda g, v: g + v, g, v)
        {'w': Array([1., 1.], dtype=float32)}
    """
    for tree in trees:
        _check_like(grads, tree, "grads", "the optimizer state")
    if params is not None:
        _check_like(grads, params, "grads", "params")
    return jax.tree.map(fn, grads, *trees)


def tree_zeros_like(tree: Params) -> Params:
    """Zeros with the shape and dtype of every leaf (the initial moments).

    Example:
        >>> tree_zeros_like({"b": jnp.ones(2, jnp.bfloat16)})
        {'b': Array([0, 0], dtype=bfloat16)}
    """
    return jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), jnp.result_type(x)), tree)


def tree_ema(
    grads: Grads, moment: Params, decay: float, power: int = 1, params: Params | None = None
) -> Params:
    """Exponential moving average of ``grads ** power``, kept in each moment's dtype.

    Math: moment_t = decay * moment_{t-1} + (1 - decay) * g_t ** power, leafwise.

    Example:
        >>> tree_ema({"w": jnp.array([2.0])}, {"w": jnp.array([1.0])}, decay=0.9, power=2)
        {'w': Array([1.3], dtype=float32)}
    """
    return tree_map_checked(
        lambda g, m: (decay * m + (1 - decay) * g**power).astype(m.dtype),
        grads,
        moment,
        params=params,
    )


def _cast(x: jax.typing.ArrayLike, like: jax.Array) -> jax.Array:
    """A scalar in the dtype of ``like`` (so a float32 schedule never promotes bfloat16)."""
    return jnp.asarray(x).astype(jnp.result_type(like))


def _lr_at(lr: ScalarOrSchedule, step: jax.Array) -> jax.typing.ArrayLike:
    """The learning rate of update number ``step`` (0 for the first update)."""
    return lr(step) if callable(lr) else lr


def _one_minus_power(b: Any, t: jax.Array) -> jax.Array:
    """1 - b^t for a decay b in [0, 1), accurate even in float32.

    Evaluated as -expm1(t ln b) with ln b taken in double precision. The direct float32
    form rounds b first: 1 - float32(0.999) = 0.00099998713, 1.3e-5 relative error.
    """
    if isinstance(b, float):
        log_b = math.log(b) if b > 0 else -math.inf
    else:
        log_b = jnp.log(b)
    return -jnp.expm1(jnp.asarray(t, dtype=float) * log_b)


def _zero_step() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def apply_updates(params: Params, updates: Updates) -> Params:
    """Add ``updates`` to ``params`` leafwise, keeping each parameter's dtype.

    Math: theta <- theta + u (the updates already carry the minus sign of descent).

    Raises:
        ValueError: if ``updates`` does not have the tree structure and leaf shapes of
            ``params``.

    Example:
        >>> apply_updates({"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([-0.5, 0.5])})
        {'w': Array([0.5, 2.5], dtype=float32)}
    """
    _check_like(updates, params, "updates", "params")
    return jax.tree.map(lambda p, u: (p + u).astype(jnp.result_type(p)), params, updates)


def global_norm(tree: Any) -> jax.Array:
    """The Euclidean norm of all leaves together, sqrt(sum_leaves sum(x^2)).

    The sum is accumulated in at least float32 (a bfloat16 sum of squares would lose most
    of its digits); the result is a scalar.

    Example:
        >>> global_norm({"a": jnp.array([3.0]), "b": (jnp.array([4.0]),)})
        Array(5., dtype=float32)
    """
    sums = [
        jnp.sum(jnp.square(x.astype(jnp.promote_types(x.dtype, jnp.float32))))
        for x in map(jnp.asarray, jax.tree.leaves(tree))
    ]
    return jnp.sqrt(sum(sums)) if sums else jnp.zeros([], jnp.float32)


# --------------------------------------------------------------------------------------
# Argument checks at construction (a traced hyperparameter, e.g. under vmap over lr,
# cannot be checked by value and is passed through).
# --------------------------------------------------------------------------------------


def _as_float(name: str, value: Any) -> float | None:
    """``value`` as a Python float; None when it is traced. TypeError if not a real scalar."""
    if isinstance(value, bool) or not (
        isinstance(value, (int, float)) or (hasattr(value, "dtype") and jnp.ndim(value) == 0)
    ):
        raise TypeError(f"{name} must be a real number; got {value!r} of type {type(value)}.")
    try:
        return float(value)
    except jax.errors.ConcretizationTypeError:
        return None


def _check_lr(lr: Any) -> ScalarOrSchedule:
    if callable(lr):
        return lr
    try:
        value = _as_float("lr", lr)
    except TypeError:
        raise TypeError(
            f"lr must be a float or a schedule (a callable step -> lr); got {lr!r}."
        ) from None
    if value is None:
        return lr
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"lr must be a finite number >= 0; got lr={lr!r}.")
    return value


def _check_decay(name: str, value: Any) -> Any:
    x = _as_float(name, value)
    if x is None:
        return value
    if not 0 <= x < 1:
        raise ValueError(f"{name} must lie in [0, 1); got {name}={value!r}.")
    return x


def _check_positive(name: str, value: Any, allow_inf: bool = False) -> Any:
    x = _as_float(name, value)
    if x is None:
        return value
    if not (x > 0 and (allow_inf or math.isfinite(x))):
        kind = "a number > 0" if allow_inf else "a finite number > 0"
        raise ValueError(f"{name} must be {kind}; got {name}={value!r}.")
    return x


# --------------------------------------------------------------------------------------
# The optimizers: one factory per algorithm.
# --------------------------------------------------------------------------------------


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
    lr = _check_lr(lr)

    def init(params):
        del params
        return SGDState(_zero_step())

    def update(grads, state, params=None):
        eta = _lr_at(lr, state.step)
        updates = tree_map_checked(lambda g: -_cast(eta, g) * g, grads, params=params)
        return updates, SGDState(state.step + 1)

    return Optimizer(init, update)


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
    lr, gamma = _check_lr(lr), _check_decay("gamma", gamma)

    def init(params):
        return MomentumState(_zero_step(), tree_zeros_like(params))

    def update(grads, state, params=None):
        eta = _lr_at(lr, state.step)
        v = tree_map_checked(  # v_t = gamma v_{t-1} + eta g_t
            lambda g, v: (gamma * v + _cast(eta, v) * g).astype(v.dtype),
            grads,
            state.v,
            params=params,
        )
        return jax.tree.map(jnp.negative, v), MomentumState(state.step + 1, v)

    return Optimizer(init, update)


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
    lr, beta = _check_lr(lr), _check_decay("beta", beta)
    eps = _check_positive("eps", eps)

    def init(params):
        return RMSPropState(_zero_step(), tree_zeros_like(params))

    def update(grads, state, params=None):
        eta = _lr_at(lr, state.step)
        mean_sq = tree_ema(grads, state.E, beta, power=2, params=params)  # E_t
        updates = jax.tree.map(
            lambda g, e: -_cast(eta, g) * g / jnp.sqrt(e + eps), grads, mean_sq
        )
        return updates, RMSPropState(state.step + 1, mean_sq)

    return Optimizer(init, update)


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
    lr, b1, b2 = _check_lr(lr), _check_decay("b1", b1), _check_decay("b2", b2)
    eps = _check_positive("eps", eps)

    def init(params):
        return AdamState(_zero_step(), tree_zeros_like(params), tree_zeros_like(params))

    def update(grads, state, params=None):
        eta, t = _lr_at(lr, state.step), state.step + 1
        m = tree_ema(grads, state.m, b1, params=params)  # m_t
        v = tree_ema(grads, state.v, b2, power=2)  # v_t
        c1, c2 = _one_minus_power(b1, t), _one_minus_power(b2, t)  # 1 - b1^t, 1 - b2^t

        def descent(m, v):
            m_hat, v_hat = m / _cast(c1, m), v / _cast(c2, v)
            return -_cast(eta, m) * m_hat / (jnp.sqrt(v_hat) + eps)

        return jax.tree.map(descent, m, v), AdamState(t, m, v)

    return Optimizer(init, update)


# --------------------------------------------------------------------------------------
# Composition.
# --------------------------------------------------------------------------------------


def clip_by_global_norm(max_norm: float) -> Optimizer:
    """Scale all gradients together so that their global norm is at most ``max_norm``.

    Math: g <- g * min(1, max_norm / ||g||), with ||g|| = global_norm(g); the scale is 1
    (never inf or NaN) when ||g|| = 0. Stateless (``EmptyState()``); put it first in a
    ``chain``.

    Reference: Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural
    networks" (ICML 2013), Algorithm 1.

    Args:
        max_norm: the largest global norm let through, > 0 (``inf`` disables clipping).

    Raises:
        ValueError: ``max_norm`` <= 0 or NaN.

    Example:
        >>> clip = clip_by_global_norm(1.0)
        >>> grads = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}
        >>> clipped, _ = clip.update(grads, clip.init(grads))
        >>> clipped
        {'a': Array([0.6], dtype=float32), 'b': Array([0.8], dtype=float32)}
    """
    max_norm = _check_positive("max_norm", max_norm, allow_inf=True)

    def init(params):
        del params
        return EmptyState()

    def update(grads, state, params=None):
        norm = global_norm(grads)
        clip = norm > max_norm  # the inner where keeps the unused branch finite at norm 0
        scale = jnp.where(clip, max_norm / jnp.where(clip, norm, 1.0), 1.0)
        return tree_map_checked(lambda g: g * _cast(scale, g), grads, params=params), state

    return Optimizer(init, update)


def add_decayed_weights(weight_decay: float) -> Optimizer:
    """L2 regularisation as a gradient transform: add ``weight_decay * theta`` to the grads.

    Math: g <- g + lambda theta, the gradient of the penalty (lambda / 2) ||theta||^2.
    Stateless (``EmptyState()``); put it *before* the optimizer in a ``chain``:
    ``chain(add_decayed_weights(1e-3), adam(1e-3))`` is Adam on the L2-regularised loss
    (not AdamW, whose decay bypasses the moment estimates). It needs ``params`` in
    ``update``.

    Args:
        weight_decay: lambda >= 0 (biases are decayed too).

    Raises:
        ValueError: ``weight_decay`` < 0 or not finite; ``update`` called without params.

    Example:
        >>> wd = add_decayed_weights(0.1)
        >>> params = {"w": jnp.array([2.0])}
        >>> wd.update({"w": jnp.array([1.0])}, wd.init(params), params)[0]
        {'w': Array([1.2], dtype=float32)}
    """
    x = _as_float("weight_decay", weight_decay)
    if x is not None and not (math.isfinite(x) and x >= 0):
        raise ValueError(f"weight_decay must be a finite number >= 0; got {weight_decay!r}.")

    def init(params):
        del params
        return EmptyState()

    def update(grads, state, params=None):
        if params is None:
            raise ValueError("add_decayed_weights needs params: call update(grads, state, params).")
        return tree_map_checked(lambda g, p: g + _cast(weight_decay, g) * p, grads, params,
                                params=params), state

    return Optimizer(init, update)


def chain(*transforms: Optimizer) -> Optimizer:
    """Apply ``transforms`` in order, each to the output of the one before.

    The state is a plain tuple with one entry per transform, e.g.
    ``chain(clip_by_global_norm(1.0), adam(1e-3))`` has state ``(EmptyState(), AdamState)``.

    Raises:
        TypeError: an argument has no callable ``init`` and ``update``.
        ValueError (from ``update``): the state is not a tuple with one entry per transform.

    Example:
        >>> opt = chain(clip_by_global_norm(1.0), sgd(0.5))
        >>> state = opt.init({"w": jnp.zeros(2)})
        >>> updates, state = opt.update({"w": jnp.array([3.0, 4.0])}, state)
        >>> updates  # clipped to norm 1, then times -0.5
        {'w': Array([-0.3, -0.4], dtype=float32)}
    """
    for i, t in enumerate(transforms):
        if not (callable(getattr(t, "init", None)) and callable(getattr(t, "update", None))):
            raise TypeError(
                f"chain argument {i} must be an Optimizer (init, update); got {t!r}."
            )

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(grads, state, params=None):
        if type(state) is not tuple or len(state) != len(transforms):
            got = f"a tuple of {len(state)}" if type(state) is tuple else type(state).__name__
            raise ValueError(
                f"chain of {len(transforms)} transforms expects a state tuple of "
                f"{len(transforms)} entries; got {got}. Create the state with this "
                "chain's init(params)."
            )
        new_state = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params)
            new_state.append(s)
        return grads, tuple(new_state)

    return Optimizer(init, update)
