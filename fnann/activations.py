"""Activations: each function travels with its hand-derived backward rule.

An :class:`Activation` bundles ``a = g(z)`` with ``dz = backward(z, da)``, the
vector-Jacobian product of ``g`` at ``z``. For an element-wise ``g`` that is
``da ⊙ g'(z)``; for softmax, whose derivative is a Jacobian, it is
``s ⊙ (da - <da, s>)``. Nothing here calls ``jax.grad``: the tests compare every
backward rule against ``jax.vjp`` of the forward function.

Every forward function is written so that it stays finite and exact at ``|z| = 1e4``
and so that ``jax.grad`` of it agrees with the hand-derived rule, kinks included
(``relu'(0) = 0``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class Activation(NamedTuple):
    """An activation ``g`` and its hand-derived backward rule.

    Attributes:
      name: the name it is looked up by (``"relu"``).
      fn: ``a = g(z)``, applied to arrays of shape ``(batch, n)``.
      backward: ``dz = backward(z, da)``, the vector-Jacobian product
        ``dL/dz`` given ``da = dL/da``; same shape as ``z``.

    An ``Activation`` is an immutable, hashable bundle of functions: close over it or
    pass it as a static argument of ``jax.jit``, never as a traced one.
    """

    name: str
    fn: Callable[[Array], Array]
    backward: Callable[[Array, Array], Array]


def elementwise(name: str, fn: Callable[[Array], Array], deriv: Callable[[Array], Array]) -> Activation:
    """Builds an element-wise :class:`Activation` from ``g`` and its derivative ``g'``.

    Math: dZ = dA ⊙ g'(Z).

    Args:
      name: the activation's name.
      fn: ``g``, applied element-wise.
      deriv: ``g'``, applied element-wise.

    Returns:
      An ``Activation`` whose ``backward(z, da)`` is ``da * deriv(z)``.

    Example:
      >>> import jax.numpy as jnp
      >>> softsign = elementwise("softsign", lambda z: z / (1 + jnp.abs(z)),
      ...                        lambda z: 1 / (1 + jnp.abs(z)) ** 2)
      >>> float(softsign.backward(jnp.array(1.0), jnp.array(1.0)))
      0.25
    """

    def backward(z: Array, da: Array) -> Array:
        return da * deriv(z)

    return Activation(name, fn, backward)


def _sigmoid(z: Array) -> Array:
    """σ(z) = 1 / (1 + e^-z), evaluated through e^-|z| so that it never overflows.

    The branch is chosen with ``where`` on an argument that is never large, so both
    the value and its autodiff derivative stay finite and accurate for any z.
    """
    e = jnp.exp(-jnp.where(z >= 0, z, -z))  # e^-|z| in (0, 1]
    return jnp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_deriv(z: Array) -> Array:
    """σ'(z) = σ(z) σ(-z): the same as σ(1 - σ) but accurate when σ is close to 1."""
    return _sigmoid(z) * _sigmoid(-z)


def _tanh_deriv(z: Array) -> Array:
    """tanh'(z) = 1 - tanh²(z) = sech²(z), written as 1 / cosh² (no cancellation)."""
    return 1.0 / jnp.square(jnp.cosh(z))


def _relu(z: Array) -> Array:
    """ReLU(z) = max(0, z), written with ``where`` so that autodiff gives ReLU'(0) = 0."""
    return jnp.where(z > 0, z, jnp.zeros_like(z))


def _relu_deriv(z: Array) -> Array:
    """ReLU'(z) = 1 if z > 0 else 0 (the kink at 0 takes 0)."""
    return (z > 0).astype(z.dtype)


def _identity(z: Array) -> Array:
    return z


def _identity_deriv(z: Array) -> Array:
    return jnp.ones_like(z)


def _softmax(z: Array) -> Array:
    """softmax(z)_j = e^{z_j} / Σ_k e^{z_k} = e^{z_j - m} / Σ_k e^{z_k - m}, m = max_k z_k.

    Over the last axis. Every e^{z_k - m} lies in (0, 1] and the sum in [1, n], so nothing
    overflows and the quotient keeps full relative precision. (exp(z - logsumexp(z)) does
    not: a logsumexp of -1e4 in float32 carries an absolute error of ~5e-4, which the exp
    turns into a relative error of ~3e-4.) m is a constant of the quotient, so it is held
    out of autodiff; ``jax.grad`` then sees the same function and agrees with the VJP below.
    """
    e = jnp.exp(z - jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True)))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _softmax_backward(z: Array, da: Array) -> Array:
    """Vector-Jacobian product of softmax: dz = s ⊙ (da - <da, s>).

    The Jacobian is diag(s) - s sᵀ, so its product with da is never the element-wise
    ``s (1 - s)``.
    """
    s = _softmax(z)
    return s * (da - jnp.sum(da * s, axis=-1, keepdims=True))


sigmoid = elementwise("sigmoid", _sigmoid, _sigmoid_deriv)
tanh = elementwise("tanh", jnp.tanh, _tanh_deriv)
relu = elementwise("relu", _relu, _relu_deriv)
identity = elementwise("identity", _identity, _identity_deriv)
softmax = Activation("softmax", _softmax, _softmax_backward)

ACTIVATIONS: Mapping[str, Activation] = MappingProxyType(
    {a.name: a for a in (sigmoid, tanh, relu, softmax, identity)}
)
"""Read-only map from name to the built-in :class:`Activation`."""


def get_activation(activation: str | Activation, *, argname: str = "activation") -> Activation:
    """Looks up an activation by name, or checks and returns an ``Activation`` as it is.

    Raises:
      ValueError: for an unknown name; the message lists the known names.
      TypeError: for anything that is neither a name nor an ``Activation``.
    """
    if isinstance(activation, Activation):
        if not (callable(activation.fn) and callable(activation.backward)):
            raise TypeError(f"{argname}: an Activation needs callable fn and backward.")
        return activation
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation.lower()]
        except KeyError:
            known = ", ".join(repr(k) for k in ACTIVATIONS)
            raise ValueError(
                f"{argname}: unknown activation {activation!r}; known names are {known} "
                "(or pass an fnann.Activation)."
            ) from None
    raise TypeError(
        f"{argname} must be an activation name or an fnann.Activation; "
        f"got {type(activation).__name__}."
    )
