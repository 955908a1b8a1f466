"""The network: a static description (:class:`MLP`), its parameters and the forward pass.

Conventions (DESIGN.md): arrays are batch-first, ``x`` has shape ``(batch, n_in)``; layer
l has ``W`` of shape ``(n_out, n_in)`` and ``b`` of shape ``(n_out,)``, exactly the
textbook W^(l), b^(l). A batch's rows are the textbook's columns transposed, so

    Z = W A + b   (textbook, columns are examples)
    z = a_prev @ W.T + b   (fnann, rows are examples).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from fnann import _args, _checks
from fnann.activations import Activation, get_activation
from fnann.tree_codec import register_checkpoint_type

Array = jax.Array
Precision = jax.lax.Precision | str | None


@register_checkpoint_type
class Dense(NamedTuple):
    """One layer's parameters: ``W`` of shape ``(n_out, n_in)`` and ``b`` of shape ``(n_out,)``."""

    W: Array
    b: Array


Params = tuple[Dense, ...]


class Trace(NamedTuple):
    """What the forward pass keeps for the backward pass (a pytree).

    Attributes:
      Z: ``(Z^(1), ..., Z^(L))``, each of shape ``(batch, n_l)``.
      A: ``(A^(0), A^(1), ..., A^(L))`` with ``A^(0) = x`` and ``A^(L) = y_hat``.
    """

    Z: tuple[Array, ...]
    A: tuple[Array, ...]


@dataclasses.dataclass(frozen=True, init=False)
class MLP:
    """A frozen, hashable description of a feed-forward network (no arrays).

    Args:
      sizes: layer widths, inputs first: ``(64, 128, 64, 10)`` is three layers.
      hidden: activation of every hidden layer, a name or an ``Activation``.
      output: activation of the output layer, a name or an ``Activation``.

    Two ``MLP`` built alike compare and hash equal, so a net can be a static argument of
    ``jax.jit`` and a compiled step is reused.

    Example:
      >>> net = MLP([4, 8, 3], hidden="tanh", output="softmax")
      >>> net.n_layers, net.n_in, net.n_out
      (2, 4, 3)
      >>> net == MLP((4, 8, 3), "tanh", "softmax")
      True
    """

    sizes: tuple[int, ...]
    hidden: Activation
    output: Activation

    def __init__(self, sizes: Sequence[int], hidden: str | Activation = "relu",
                 output: str | Activation = "softmax"):
        object.__setattr__(self, "sizes", _checks.check_sizes(sizes))
        object.__setattr__(self, "hidden", get_activation(hidden, argname="hidden"))
        object.__setattr__(self, "output", get_activation(output, argname="output"))

    @property
    def n_layers(self) -> int:
        """L, the number of layers with weights."""
        return len(self.sizes) - 1

    @property
    def n_in(self) -> int:
        return self.sizes[0]

    @property
    def n_out(self) -> int:
        return self.sizes[-1]

    @property
    def activations(self) -> tuple[Activation, ...]:
        """sigma^(1), ..., sigma^(L): ``hidden`` for every layer but the last."""
        return (self.hidden,) * (self.n_layers - 1) + (self.output,)

    def __repr__(self) -> str:
        return f"MLP(sizes={self.sizes}, hidden={self.hidden.name!r}, output={self.output.name!r})"


def init(key: Array, net: MLP, dtype=jnp.float32) -> Params:
    """Draws initial parameters: He for ReLU layers, Glorot otherwise; zero biases.

    Math: W^(l)_ij ~ N(0, 2 / n_in) if sigma^(l) is ReLU (He et al. 2015),
          W^(l)_ij ~ N(0, 2 / (n_in + n_out)) otherwise (Glorot & Bengio 2010); b^(l) = 0.
    The standard normals for all layers are one draw from ``key``, cut into W^(1), W^(2), ...
    in layer order (row-major), so the draw is one random program however deep the network.

    Args:
      key: a ``jax.random`` key.
      net: the network.
      dtype: floating dtype of the parameters.

    Returns:
      A tuple with one ``Dense(W, b)`` per layer, ``W`` of shape ``(n_out, n_in)``.

    Example:
      >>> params = init(jax.random.key(0), MLP([4, 8, 3]))
      >>> [p.W.shape for p in params]
      [(8, 4), (3, 8)]
    """
    check_net(net)
    _args.check_key(key)
    return _draw(key, net, _args.check_dtype(dtype))


def _draws(key: Array, net: MLP, dtype) -> Params:
    shapes = [(n_out, n_in) for n_in, n_out in zip(net.sizes[:-1], net.sizes[1:])]
    N = jax.random.normal(key, (sum(n_out * n_in for n_out, n_in in shapes),), dtype)
    params, start = [], 0
    for (n_out, n_in), act in zip(shapes, net.activations):
        var = 2.0 / n_in if act.name == "relu" else 2.0 / (n_in + n_out)
        W = jnp.sqrt(var).astype(dtype) * N[start:start + n_out * n_in].reshape(n_out, n_in)
        params.append(Dense(W, jnp.zeros((n_out,), dtype)))
        start += n_out * n_in
    return tuple(params)


# `init`'s draws as one compiled program holding one random draw, cut into the layers' W in
# layer order (one normal sampler compiles in ~0.3 s on a CPU; one per layer cost ~1 s)
_draw = jax.jit(_draws, static_argnums=(1, 2))


def dense_forward(layer: Dense, a_prev: Array, precision: Precision = None) -> Array:
    """Affine map of one layer.

    Math: Z = W A_prev + b (textbook columns); here rows are examples: z = a_prev Wᵀ + b.
    Shapes: a_prev (batch, n_in), layer.W (n_out, n_in), layer.b (n_out,) -> (batch, n_out).
    """
    return jnp.matmul(a_prev, layer.W.T, precision=precision) + layer.b


def check_net(net) -> None:
    """Raises TypeError unless ``net`` is an ``MLP``."""
    if not isinstance(net, MLP):
        raise TypeError(f"net must be an fnann.MLP; got {type(net).__name__}.")


def check_net_params(net: MLP, params: Params, *, shapes: bool = False) -> None:
    """The net is an ``MLP`` and ``params`` has its shapes; concrete params must be finite.
    ``shapes``: ``jax.ShapeDtypeStruct`` leaves are accepted (``compile_*`` only)."""
    check_net(net)
    _checks.check_params(params, net.sizes)
    _checks.check_params_finite(params, shapes=shapes)


def check_inputs(net: MLP, params: Params, x, x_name: str = "x", *, shapes: bool = False) -> None:
    """Checks shared by every public entry point: the net, params and x agree, and (for
    concrete arrays, not under ``jit``) params and x hold no NaN or inf."""
    check_net_params(net, params, shapes=shapes)
    _checks.check_x(x, net.n_in, x_name)
    _checks.check_finite(x, x_name)
    _checks.check_representable(x, jnp.result_type(params[0].W), x_name)


def forward_trace(net: MLP, params: Params, x, precision: Precision = None) -> tuple[Array, Trace]:
    """Forward pass that keeps every Z^(l) and A^(l) for the backward pass.

    Math: A^(0) = X;  Z^(l) = W^(l) A^(l-1) + b^(l);  A^(l) = sigma^(l)(Z^(l));  ŷ = A^(L).
    Shapes: x (batch, n_in) -> y_hat (batch, n_out); trace.Z[l-1], trace.A[l] (batch, n_l).

    Returns:
      ``(y_hat, trace)``; ``trace`` is a pytree and can cross a ``jit`` boundary.

    Raises:
      ValueError, TypeError: when ``x`` or ``params`` do not fit ``net``, hold NaN or inf
        (concrete arrays), or ``precision`` is not a matmul precision.
    """
    check_inputs(net, params, x)
    _args.check_precision(precision)
    a = jnp.asarray(x, dtype=params[0].W.dtype)
    Z, A = [], [a]
    for layer, act in zip(params, net.activations):
        z = dense_forward(layer, a, precision)
        a = act.fn(z)
        Z.append(z)
        A.append(a)
    return a, Trace(tuple(Z), tuple(A))


def forward(net: MLP, params: Params, x, precision: Precision = None) -> Array:
    """The network's output ŷ = A^(L) for a batch ``x`` of shape ``(batch, n_in)``.

    Math: A^(l) = sigma^(l)(W^(l) A^(l-1) + b^(l)), A^(0) = X.

    Example:
      >>> net = MLP([2, 3, 2])
      >>> forward(net, init(jax.random.key(0), net), jnp.ones((5, 2))).shape
      (5, 2)
    """
    return forward_trace(net, params, x, precision)[0]
