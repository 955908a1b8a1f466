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

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special

from fnann.named import Named, is_member_name, member_name, real_parameter

Array = jax.Array


class Activation(NamedTuple):
    """An activation ``g``, its hand-derived backward rule and every fact fnann needs of it.

    Attributes:
      name: the name it is looked up by (``"relu"``).
      fn: ``a = g(z)``, applied to arrays of shape ``(batch, n)``.
      backward: ``dz = backward(z, da)``, the vector-Jacobian product
        ``dL/dz`` given ``da = dL/da``; same shape as ``z``.
      formula: ``g`` as text, for ``fnann explain`` (``"relu(z) = max(0, z)"``).
      derivative: ``g'`` as text (``"relu'(z) = 1 if z > 0 else 0"``); for an activation
        that is not element-wise, the text of its vector-Jacobian product.
      init: the initialization rule of a layer it follows: ``"he"`` (variance 2 / n_in,
        for ReLU-like g), ``"glorot"`` (2 / (n_in + n_out)), or a callable
        ``(n_in, n_out) -> variance`` (see :func:`init_variance`).
      head: what an output layer of it means: ``"categorical"`` (a distribution over the
        units: the class is the argmax), ``"binary"`` (each unit a probability: the class is
        ŷ > 0.5), or ``None`` (real values: a regressor).
      elementwise: whether ``g`` acts on each entry alone, so that δ = da ⊙ g'(z).
      dies: whether a unit can die (A = 0 for every example: ReLU).
      saturates: whether g'(z) -> 0 as |z| grows (sigmoid, tanh).
      kinks: the points z = k where g is continuous but g' jumps (ReLU: ``(0.0,)``); ``()``
        for a smooth g. A central difference whose ±ε step moves some z across a kink
        measures neither one-sided slope, so ``check_grads`` leaves such entries out.

    An ``Activation`` is an immutable, hashable bundle of functions: close over it or
    pass it as a static argument of ``jax.jit``, never as a traced one.
    """

    name: str
    fn: Callable[[Array], Array]
    backward: Callable[[Array, Array], Array]
    formula: str = ""
    derivative: str = ""
    init: str | Callable[[int, int], float] = "glorot"
    head: str | None = None
    elementwise: bool = True
    dies: bool = False
    saturates: bool = False
    kinks: tuple[float, ...] = ()


INIT_RULES: Mapping[str, Callable[[int, int], float]] = MappingProxyType({
    "he": lambda n_in, n_out: 2.0 / n_in,  # He et al. 2015, for ReLU-like activations
    "glorot": lambda n_in, n_out: 2.0 / (n_in + n_out),  # Glorot & Bengio 2010
})
"""The named initialization rules: ``(n_in, n_out) -> variance`` of W's entries."""

HEADS = ("categorical", "binary", None)


def init_variance(act: Activation, n_in: int, n_out: int) -> float:
    """The variance of the N(0, var) entries of W^(l) for a layer followed by ``act``.

    Math: var = 2 / n_in (He), 2 / (n_in + n_out) (Glorot), or ``act.init(n_in, n_out)``.
    """
    rule = INIT_RULES[act.init] if isinstance(act.init, str) else act.init
    return float(rule(n_in, n_out))


def elementwise(name: str, fn: Callable[[Array], Array], deriv: Callable[[Array], Array], *,
                formula: str = "", derivative: str = "", init: str | Callable[[int, int], float] = "glorot",
                head: str | None = None, dies: bool = False, saturates: bool = False,
                kinks: tuple[float, ...] = ()) -> Activation:
    """Builds an element-wise :class:`Activation` from ``g`` and its derivative ``g'``.

    Math: dZ = dA ⊙ g'(Z).

    Args:
      name: the activation's name.
      fn: ``g``, applied element-wise.
      deriv: ``g'``, applied element-wise.
      formula, derivative, init, head, dies, saturates, kinks: as in :class:`Activation`
        (``derivative`` defaults to ``"name'(z)"``).

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

    if not (isinstance(init, str) and init in INIT_RULES) and not callable(init):
        raise ValueError(f"init must be one of {tuple(INIT_RULES)} or a callable (n_in, n_out) -> variance; "
                         f"got {init!r}.")
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}; got {head!r}.")
    return Activation(name, fn, backward, formula or f"{name}(z)", derivative or f"{name}'(z)", init, head,
                      True, dies, saturates, tuple(float(k) for k in kinks))


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


_SQRT2 = 1.4142135623730951
_INV_SQRT_2PI = 0.3989422804014327


def _gelu(z: Array) -> Array:
    """GELU(z) = z Φ(z), Φ the standard normal CDF, written as Φ(z) = erfc(-z / √2) / 2.

    erfc keeps Φ's full relative precision in the left tail, where 1 + erf(z / √2) would
    cancel (at z = -5 the float32 sum has lost every digit); at |z| = 1e4 it is exactly 0 or 2.
    """
    return z * (0.5 * jax.scipy.special.erfc(-z / _SQRT2))


def _gelu_deriv(z: Array) -> Array:
    """GELU'(z) = Φ(z) + z φ(z), φ(z) = e^{-z²/2} / √(2π) the standard normal density."""
    return 0.5 * jax.scipy.special.erfc(-z / _SQRT2) + z * (_INV_SQRT_2PI * jnp.exp(-0.5 * jnp.square(z)))


def _elu(z: Array) -> Array:
    """ELU(z) = z if z > 0 else e^z - 1 (α = 1), the left branch as expm1 (exact near 0).

    The left branch sees min(z, 0) through ``where`` (never e^1e4), and at z = 0 it is the
    branch taken, so autodiff gives ELU'(0) = e^0 = 1, the hand-derived value.
    """
    return jnp.where(z > 0, z, jnp.expm1(jnp.where(z > 0, jnp.zeros_like(z), z)))


def _elu_deriv(z: Array) -> Array:
    """ELU'(z) = 1 if z > 0 else e^z = ELU(z) + 1 (the textbook's ELU(z) + α; continuous at 0).

    Written as ELU(z) + 1, the value autodiff of expm1 gives (below z ≈ -17 in float32 both
    round e^z to 0, an absolute error under 1e-7)."""
    return jnp.where(z > 0, jnp.ones_like(z), _elu(z) + 1.0)


def _softplus(z: Array) -> Array:
    """softplus(z) = log(1 + e^z) = z + log(1 + e^-z) for z > 0, log(1 + e^z) otherwise.

    Each branch exponentiates a number <= 0 only (``where`` clamps the other side), so nothing
    overflows at |z| = 1e4 (softplus(1e4) = 1e4, softplus(-1e4) = 0) and log1p keeps the tail
    exact; at z = 0 autodiff takes the second branch: e^0 / (1 + e^0) = 1/2.
    """
    pos, neg = jnp.where(z > 0, z, jnp.zeros_like(z)), jnp.where(z > 0, jnp.zeros_like(z), z)
    return jnp.where(z > 0, pos + jnp.log1p(jnp.exp(-pos)), jnp.log1p(jnp.exp(neg)))


def _silu(z: Array) -> Array:
    """SiLU(z) = z σ(z) (swish with β = 1)."""
    return z * _sigmoid(z)


def _silu_deriv(z: Array) -> Array:
    """SiLU'(z) = σ(z) + z σ(z) σ(-z) = σ(z) (1 + z σ(-z))."""
    return _sigmoid(z) * (1.0 + z * _sigmoid(-z))


def leaky_he(slope: float) -> Callable[[int, int], float]:
    """He et al.'s variance for a leaky ReLU of slope a: 2 / ((1 + a²) n_in)."""
    return lambda n_in, n_out: 2.0 / ((1.0 + slope * slope) * n_in)


@functools.cache
def _leaky_relu(slope: float) -> Activation:
    def fn(z: Array) -> Array:  # where, not max: autodiff then gives the left slope at 0, as deriv does
        return jnp.where(z > 0, z, slope * z)

    def deriv(z: Array) -> Array:
        return jnp.where(z > 0, jnp.ones_like(z), jnp.full_like(z, slope))

    return elementwise(member_name("leaky_relu", slope, LEAKY_SLOPE), fn, deriv,
                       formula=f"leaky_relu(z) = z if z > 0 else {slope!r} z",
                       derivative=f"leaky_relu'(z) = 1 if z > 0 else {slope!r}", init=leaky_he(slope), kinks=(0.0,))


LEAKY_SLOPE = 0.01
"""The slope of ``leaky_relu`` for z <= 0 (PyTorch's and Keras's default)."""


def leaky_relu_with(slope: float = LEAKY_SLOPE) -> Activation:
    """The leaky ReLU of ``slope``: g(z) = z if z > 0 else slope · z; g'(z) = 1 or slope.

    Initialized by He's rule for it, var = 2 / ((1 + slope²) n_in). Its name carries the
    slope (``"leaky_relu(0.2)"``; the default 0.01 is plain ``"leaky_relu"``), so that
    ``MLP(hidden="leaky_relu(0.2)")``, ``--hidden "leaky_relu(0.2)"`` and checkpoints find it;
    one slope is one object (equal networks compile once).

    Args:
      slope: a finite number in [0, 1).

    Example:
      >>> leaky_relu_with(0.25).name, float(leaky_relu_with(0.25).fn(jnp.array(-1.0)))
      ('leaky_relu(0.25)', -0.25)
    """
    return _leaky_relu(real_parameter("slope", slope, 0.0, 1.0, high_open=True))


sigmoid = elementwise("sigmoid", _sigmoid, _sigmoid_deriv, formula="σ(z) = 1 / (1 + e^-z)",
                      derivative="σ'(z) = σ(z)(1 - σ(z))", head="binary", saturates=True)
tanh = elementwise("tanh", jnp.tanh, _tanh_deriv, formula="tanh(z) = (e^z - e^-z) / (e^z + e^-z)",
                   derivative="tanh'(z) = 1 - tanh²(z)", saturates=True)
relu = elementwise("relu", _relu, _relu_deriv, formula="relu(z) = max(0, z)",
                   derivative="relu'(z) = 1 if z > 0 else 0", init="he", dies=True, kinks=(0.0,))
identity = elementwise("identity", _identity, _identity_deriv, formula="identity(z) = z",
                       derivative="identity'(z) = 1")
gelu = elementwise("gelu", _gelu, _gelu_deriv, formula="gelu(z) = z Φ(z)",
                   derivative="gelu'(z) = Φ(z) + z φ(z)", init="he")
leaky_relu = leaky_relu_with(LEAKY_SLOPE)
elu = elementwise("elu", _elu, _elu_deriv, formula="elu(z) = z if z > 0 else e^z - 1",
                  derivative="elu'(z) = 1 if z > 0 else e^z", init="he")
softplus = elementwise("softplus", _softplus, _sigmoid, formula="softplus(z) = log(1 + e^z)",
                       derivative="softplus'(z) = σ(z)", init="he")
silu = elementwise("silu", _silu, _silu_deriv, formula="silu(z) = z σ(z)",
                   derivative="silu'(z) = σ(z)(1 + z σ(-z))", init="he")
softmax = Activation("softmax", _softmax, _softmax_backward, "softmax(z)_j = e^{z_j} / Σ_k e^{z_k}",
                     "J_softmax(z)ᵀ g = s ⊙ (g - <g, s>)", "glorot", "categorical", elementwise=False)

_BUILT_IN = (relu, tanh, sigmoid, softmax, identity, gelu, leaky_relu, elu, softplus, silu)  # listed in this order
_REGISTRY: dict[str, Activation] = {a.name: a for a in _BUILT_IN}
_FAMILIES: dict[str, Callable[[float], Activation]] = {"leaky_relu": leaky_relu_with}
ACTIVATIONS: Mapping[str, Activation] = Named(_REGISTRY, _FAMILIES, "activation")
"""Read-only map from name to every known :class:`Activation`: the built-in ones, those added
by :func:`register_activation`, and a family's members by their names (``"leaky_relu(0.2)"``,
listed only as the family's default). A network whose activations are all found here can be
named on the command line and saved and loaded by name."""


def register_activation(activation: Activation) -> Activation:
    """Makes a user-defined activation known by its name: ``MLP(..., hidden=name)``, the
    command line's ``--hidden name``, and checkpoints (``save``/``load``) then find it.

    Raises:
      TypeError: ``activation`` is not an ``Activation`` with callable functions.
      ValueError: another activation has that name.
    """
    activation = get_activation(activation)
    if ACTIVATIONS.get(activation.name.lower(), activation) is not activation or is_member_name(activation.name):
        raise ValueError(f"an activation named {activation.name!r} is already registered.")
    _REGISTRY[activation.name.lower()] = activation
    return activation


def is_built_in(activation: Activation) -> bool:
    """Whether ``activation`` is one of fnann's own (whose range fnann knows)."""
    return any(activation is a for a in _BUILT_IN) or (
        is_member_name(activation.name) and ACTIVATIONS.get(activation.name) is activation)


def unregister_activation(name: str) -> None:
    """Forgets an activation added by :func:`register_activation` (never a built-in one)."""
    if any(a.name == name for a in _BUILT_IN) or is_member_name(name):
        raise ValueError(f"{name!r} is a built-in activation; it cannot be unregistered.")
    _REGISTRY.pop(name.lower(), None)


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
        member = ACTIVATIONS.member(activation.lower(), argname)
        if member is not None:
            return member
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
