"""Weight decay: masks, the coupled L2 gradient and the decoupled decay term.

Two kinds of weight decay, the same for plain SGD and different for everything else:

    coupled (L2):   g <- g + lambda theta, before the optimizer sees g (it enters the moments)
    decoupled:      theta <- theta - eta_k lambda theta, beside the optimizer's own step
                    (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019)

A mask says which parameters decay: a pytree of Python bools shaped like the params (or a
prefix of them: one bool for a whole subtree), or a callable ``params -> mask``; ``True``
means "decay this leaf". ``weights_only`` decays the weights W and never the biases b (a
decayed bias only shifts the activations and regularises nothing; Goodfellow, Bengio &
Courville, Deep Learning (2016), section 7.1). A mask is static: it is resolved from the
tree structure at trace time, so a masked-out leaf costs nothing under ``jit``.
"""

from __future__ import annotations

from typing import Any, Callable, Union

import jax
import numpy as np

from fnann.optim.base import Grads, Params, cast_like, check_like, is_zero

Mask = Union[Any, Callable[[Params], Any]]

__all__ = ["Mask", "weights_only", "resolve_mask", "l2_gradient", "decoupled", "with_decay"]

BIAS_NAMES = ("b", "bias")


def _is_bias(path: tuple) -> bool:
    """Whether the last step of a tree path is a field or dict key named b or bias."""
    last = path[-1] if path else None
    return getattr(last, "name", getattr(last, "key", None)) in BIAS_NAMES


def weights_only(params: Params) -> Any:
    """The mask that decays every leaf except the biases.

    A leaf is a bias when the last step of its tree path is named ``b`` or ``bias``: a
    ``Dense``'s ``b``, a dict entry ``"b"`` or ``"bias"``, an equinox or flax ``bias``.

    Args:
        params: any pytree of parameters.

    Returns:
        A pytree of bools with the structure of ``params``.

    Example:
        >>> import jax.numpy as jnp
        >>> from fnann import Dense
        >>> weights_only((Dense(jnp.ones((2, 3)), jnp.ones(2)),))
        (Dense(W=True, b=False),)
    """
    return jax.tree_util.tree_map_with_path(lambda path, _: not _is_bias(path), params)


def resolve_mask(mask: Mask, params: Params, name: str = "mask") -> Any:
    """``mask`` as a pytree of bools with the full structure of ``params``.

    Args:
        mask: ``None`` (every leaf), a pytree of bools shaped like ``params`` or a prefix
            of it, or a callable ``params -> such a pytree``.
        params: the parameters.
        name: the argument's name, for errors.

    Raises:
        ValueError: the mask's tree structure is not (a prefix of) that of ``params``.
        TypeError: a mask leaf is not a bool (a traced or array mask cannot be static).

    Example:
        >>> resolve_mask({"w": True, "b": False}, {"w": 1.0, "b": (2.0, 3.0)})
        {'b': (False, False), 'w': True}
    """
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    tree = mask(params) if callable(mask) else mask
    for leaf in jax.tree.leaves(tree):
        if not isinstance(leaf, (bool, np.bool_)):
            raise TypeError(f"{name} must hold Python bools (True: decay this leaf); got the "
                            f"leaf {leaf!r} of type {type(leaf).__name__}.")
    try:
        return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), tree, params)
    except ValueError:
        raise ValueError(
            f"{name} does not match the params' tree structure.\n  {name}: "
            f"{jax.tree.structure(tree)}\n  params: {jax.tree.structure(params)}\n"
            "Give one bool per parameter leaf (or per subtree), or a callable such as "
            "fnann.optim.weights_only."
        ) from None


def needs_params(params: Params | None, who: str) -> Params:
    """``params``, or a ValueError saying that ``who`` needs them in ``update``."""
    if params is None:
        raise ValueError(f"{who} needs params: call update(grads, state, params).")
    return params


def with_decay(grads: Grads, params: Params | None, l2: Any, weight_decay: Any,
               mask: Mask) -> tuple[Grads, Params, Any]:
    """What an update with weight decay works on: ``(grads, params, keep)``.

    ``grads`` gets the coupled L2 term ``l2 theta`` (masked) when ``l2`` is not 0;
    ``params`` must be given when either decay is on; ``keep`` is the resolved mask for the
    decoupled decay (all False when ``weight_decay`` is 0, and then ``params`` is ``grads``
    so that a leafwise map over ``(grads, ..., params, keep)`` always works).

    Raises:
        ValueError: a decay is on and ``params`` is None; the mask does not fit the params.
    """
    if not (is_zero(l2) and is_zero(weight_decay)):
        params = needs_params(params, "an optimizer with weight decay")
    if not is_zero(l2):
        grads = l2_gradient(grads, params, l2, mask)
    if is_zero(weight_decay):
        return grads, grads, jax.tree.map(lambda _: False, grads)
    return grads, params, resolve_mask(mask, params)


def l2_gradient(grads: Grads, params: Params, weight_decay: Any, mask: Mask = None) -> Grads:
    """The gradient of the loss plus the L2 penalty (lambda / 2) ||theta||^2 over the masked leaves.

    Math: g <- g + lambda theta where the mask is True, g unchanged elsewhere.

    Raises:
        ValueError: ``grads`` or ``mask`` do not match the structure of ``params``.

    Example:
        >>> import jax.numpy as jnp
        >>> l2_gradient({"W": jnp.ones(1), "b": jnp.ones(1)}, {"W": jnp.full(1, 2.0),
        ...             "b": jnp.full(1, 2.0)}, 0.1, weights_only)
        {'W': Array([1.2], dtype=float32), 'b': Array([1.], dtype=float32)}
    """
    check_like(grads, params, "grads", "params")
    keep = resolve_mask(mask, params)
    return jax.tree.map(lambda g, p, k: g + cast_like(weight_decay, g) * p if k else g, grads, params, keep)


def decoupled(update: jax.Array, eta: Any, weight_decay: Any, param: jax.Array, keep: bool) -> jax.Array:
    """One leaf's signed update plus the decoupled decay: u - eta_k lambda theta (when ``keep``).

    Computed in the update's dtype (the moments' dtype, at least float32); the caller casts.
    """
    if not keep:
        return update
    return update - cast_like(eta, update) * cast_like(weight_decay, update) * param.astype(update.dtype)
