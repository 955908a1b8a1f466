"""Combinators: transforms that compose with the optimizers (clipping, L2 decay, chain)."""

from __future__ import annotations

import jax.numpy as jnp

from fnann.optim.base import (
    EmptyState,
    Optimizer,
    cast_like,
    check_nonnegative,
    check_positive,
    as_optimizer,
    configured,
    gradient_transform,
    global_norm,
    tree_map_checked,
)
from fnann.optim.decay import Mask, l2_gradient, needs_params
from fnann.optim.optimizers import sgd  # noqa: F401  (used by the doctests)

__all__ = ["clip_by_global_norm", "add_decayed_weights", "chain"]


@gradient_transform
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
    max_norm = check_positive("max_norm", max_norm, allow_inf=True)

    def init(params):
        del params
        return EmptyState()

    def update(grads, state, params=None):
        norm = global_norm(grads)
        clip = norm > max_norm  # the inner where keeps the unused branch finite at norm 0
        scale = jnp.where(clip, max_norm / jnp.where(clip, norm, 1.0), 1.0)
        return tree_map_checked(lambda g: g * cast_like(scale, g), grads, params=params), state

    return Optimizer(init, update)


@gradient_transform
def add_decayed_weights(weight_decay: float, mask: Mask = None) -> Optimizer:
    """L2 regularisation as a gradient transform: add ``weight_decay * theta`` to the grads.

    Math: g <- g + lambda theta, the gradient of the penalty (lambda / 2) ||theta||^2,
    on the leaves the mask selects. Stateless (``EmptyState()``); put it *before* the
    optimizer in a ``chain``: ``chain(add_decayed_weights(1e-3), adam(1e-3))`` is Adam on
    the L2-regularised loss (coupled decay; not AdamW, whose decoupled decay bypasses the
    moment estimates: ``fnann.optim.adamw``). It needs ``params`` in ``update``.

    Args:
        weight_decay: lambda >= 0.
        mask: which leaves decay (see ``fnann.optim.decay``): ``None`` decays every leaf,
            biases too; ``weights_only`` decays the weights W only; or a pytree of bools,
            or a callable ``params -> mask``.

    Raises:
        ValueError: ``weight_decay`` < 0 or not finite; ``update`` called without params;
            ``mask`` not shaped like the params.
        TypeError: a ``mask`` leaf is not a bool.

    Example:
        >>> wd = add_decayed_weights(0.1)
        >>> params = {"w": jnp.array([2.0])}
        >>> wd.update({"w": jnp.array([1.0])}, wd.init(params), params)[0]
        {'w': Array([1.2], dtype=float32)}
    """
    weight_decay = check_nonnegative("weight_decay", weight_decay)

    def init(params):
        del params
        return EmptyState()

    def update(grads, state, params=None):
        params = needs_params(params, "add_decayed_weights")
        return l2_gradient(grads, params, weight_decay, mask), state

    return Optimizer(init, update)


@configured
def chain(*transforms: Optimizer) -> Optimizer:
    """Apply ``transforms`` in order, each to the output of the one before.

    The state is a plain tuple with one entry per transform, e.g.
    ``chain(clip_by_global_norm(1.0), adam(1e-3))`` has state ``(EmptyState(), AdamState)``.

    Raises:
        TypeError: an argument has no callable ``init`` and ``update``.
        ValueError: no transform is given; (from ``update``) the state is not a tuple with
            one entry per transform.

    Example:
        >>> opt = chain(clip_by_global_norm(1.0), sgd(0.5))
        >>> state = opt.init({"w": jnp.zeros(2)})
        >>> updates, state = opt.update({"w": jnp.array([3.0, 4.0])}, state)
        >>> updates  # clipped to norm 1, then times -0.5
        {'w': Array([-0.3, -0.4], dtype=float32)}
    """
    if not transforms:
        raise ValueError("chain needs at least one transform, e.g. chain(clip_by_global_norm(1.0), "
                         "adam(1e-3)); chain() would leave the gradients as the updates and ascend.")
    transforms = tuple(as_optimizer(t, f"chain argument {i}") for i, t in enumerate(transforms))

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
