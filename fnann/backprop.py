"""Backpropagation written by hand: the delta recursion.

Notation: a ``d`` prefix always means ∂L/∂(that): ``dW`` is ∂L/∂W, ``da`` is ∂L/∂A.
``delta`` is δ^(l) = ∂L/∂Z^(l). With batch-first rows (see ``fnann.mlp``) the textbook
equations read

    δ^(L) = ∂L/∂A^(L) ⊙ σ'(Z^(L))              delta = act.backward(z, da)
    δ^(l) = (W^(l+1))ᵀ δ^(l+1) ⊙ σ'(Z^(l))     delta = act.backward(z, delta @ W)
    ∂L/∂W^(l) = δ^(l) (A^(l-1))ᵀ               dW = delta.T @ a_prev
    ∂L/∂b^(l) = δ^(l)                          db = delta.sum(axis=0)

The sum over the batch in ``db`` (and the matrix product in ``dW``) adds the per-example
gradients; the 1/m of the batch-mean loss already sits in ∂L/∂A^(L) (``loss.grad``), so
no layer divides again. Some texts (Ng) put the 1/m into dW instead; the totals agree.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from fnann import _args
from fnann._checks import check_has_rows, check_head, check_targets
from fnann.activations import Activation
from fnann.losses import Loss, get_loss, is_fused
from fnann.mlp import MLP, Dense, Params, Precision, Trace, check_inputs, check_net, forward_trace

Array = jax.Array
Deltas = tuple[Array, ...]  # (δ^(1), ..., δ^(L)), δ^(l) = ∂L/∂Z^(l) of shape (batch, n_l)

METHODS = ("manual", "autodiff")


def dense_backward(layer: Dense, a_prev: Array, delta: Array,
                   precision: Precision = None) -> tuple[Dense, Array]:
    """Gradients of one affine layer, given its delta (an exact vector-Jacobian product).

    Math: ∂L/∂W = δ A_prevᵀ,  ∂L/∂b = Σ_examples δ,  ∂L/∂A_prev = Wᵀ δ.
    Shapes: a_prev (batch, n_in), delta (batch, n_out), layer.W (n_out, n_in)
      -> (Dense(dW (n_out, n_in), db (n_out,)), da_prev (batch, n_in)).
    """
    dW = jnp.matmul(delta.T, a_prev, precision=precision)
    db = jnp.sum(delta, axis=0)
    da_prev = jnp.matmul(delta, layer.W, precision=precision)
    return Dense(dW, db), da_prev


def output_delta(output: Activation, loss: Loss, z: Array, a: Array, y,
                 fused: bool = True) -> Array:
    """δ^(L) = ∂L/∂Z^(L) for the output layer.

    Math: δ^(L) = ∂L/∂A^(L) ⊙ σ'(Z^(L)) (the VJP of σ for softmax), or, where the loss is
    the output activation's canonical link (softmax + cross-entropy, sigmoid + binary
    cross-entropy) and ``fused`` is set, the fused δ^(L) = (A^(L) - y) / m.
    """
    if fused and is_fused(loss, output):
        return loss.delta_from_logits(z, y)
    return output.backward(z, loss.grad(a, y))


def backward(net: MLP, params: Params, trace: Trace, y, loss: Loss | str,
             precision: Precision = None, fused: bool = True) -> Params:
    """Hand-derived gradients of the batch-mean loss: the delta recursion.

    Math: δ^(L) = ∂L/∂A^(L) ⊙ σ'(Z^(L));  δ^(l) = (W^(l+1))ᵀ δ^(l+1) ⊙ σ'(Z^(l));
          ∂L/∂W^(l) = δ^(l) (A^(l-1))ᵀ;  ∂L/∂b^(l) = δ^(l) (summed over the batch).

    Args:
      net: the network.
      params: its parameters.
      trace: from ``forward_trace(net, params, x)``.
      y: targets (one-hot rows, integer labels or values; see ``fnann.losses``).
      loss: a ``Loss`` or its name.
      precision: matmul precision (``"highest"`` for gradient checks on GPU/TPU).
      fused: use the fused output delta where the loss and output activation allow it.
        ``False`` runs the textbook chain ∂L/∂A^(L) then σ's VJP (for teaching and tests).

    Returns:
      Gradients with the structure of ``params``: one ``Dense(dW, db)`` per layer.
    """
    return backward_trace(net, params, trace, y, loss, precision, fused)[0]


def backward_trace(net: MLP, params: Params, trace: Trace, y, loss: Loss | str,
                   precision: Precision = None, fused: bool = True) -> tuple[Params, Deltas]:
    """The delta recursion of :func:`backward`, returning every layer's δ^(l) as well.

    Math: δ^(l) = ∂L/∂Z^(l), the error signal of layer l (see :func:`backward`).
    Shapes: deltas[l-1] is δ^(l), of shape (batch, n_l) like trace.Z[l-1]. With the batch-mean
      loss the 1/m is inside every δ, so a row of δ^(l) is the example's share of ∂L/∂Z^(l).

    Args:
      net, params, trace, y, loss, precision, fused: as for :func:`backward`.

    Returns:
      ``(grads, deltas)``: ``grads`` as from :func:`backward`, ``deltas`` the tuple
      ``(δ^(1), ..., δ^(L))``; both are pytrees and can cross a ``jit`` boundary.

    Example:
      >>> net = MLP([3, 4, 2], hidden="sigmoid")
      >>> params = (Dense(jnp.ones((4, 3)), jnp.zeros(4)), Dense(jnp.ones((2, 4)), jnp.zeros(2)))
      >>> x, y = jnp.ones((5, 3)), jnp.array([0, 1, 1, 0, 1])
      >>> _, trace = jax.jit(forward_trace, static_argnums=0)(net, params, x)
      >>> grads, deltas = jax.jit(backward_trace, static_argnums=(0, 4))(net, params, trace, y, "cross_entropy")
      >>> [d.shape for d in deltas]  # deltas[l - 1] is δ^(l) = ∂L/∂Z^(l)
      [(5, 4), (5, 2)]
    """
    loss = get_loss(loss)
    check_inputs(net, params, trace.A[0])
    _args.check_precision(precision)
    L = net.n_layers
    sigma = net.activations
    delta = output_delta(sigma[L - 1], loss, trace.Z[L - 1], trace.A[L], y, fused)  # δ^(L)
    grads, deltas = [None] * L, [None] * L
    for l in reversed(range(L)):  # layer l + 1 of the textbook
        deltas[l] = delta
        grads[l], da_prev = dense_backward(params[l], trace.A[l], delta, precision)
        if l > 0:
            delta = sigma[l - 1].backward(trace.Z[l - 1], da_prev)  # δ^(l) = Wᵀδ^(l+1) ⊙ σ'(Z^(l))
    return tuple(grads), tuple(deltas)


def loss_value(net: MLP, loss: Loss, y_hat: Array, trace: Trace, y) -> Array:
    """The loss of a forward pass, from the logits when the loss fuses with the output."""
    if is_fused(loss, net.output):
        return loss.fn_from_logits(trace.Z[-1], y)
    return loss.fn(y_hat, y)


def objective(net: MLP, loss: Loss | str, params: Params, x, y,
              precision: Precision = None) -> Array:
    """The scalar L(params; x, y) that both gradient methods differentiate."""
    loss = get_loss(loss)
    y_hat, trace = forward_trace(net, params, x, precision)
    return loss_value(net, loss, y_hat, trace, y)


def loss_and_grad(net: MLP, loss: Loss | str, method: str = "manual",
                  precision: Precision = None) -> Callable[[Params, Array, Array], tuple[Array, Params]]:
    """Builds ``f(params, x, y) -> (loss_value, grads)`` by hand-derived or automatic backprop.

    Args:
      net: the network.
      loss: a ``Loss`` or its name.
      method: ``"manual"`` (``forward_trace`` + ``backward``, the delta recursion) or
        ``"autodiff"`` (``jax.value_and_grad`` of the same scalar).
      precision: matmul precision for both passes.

    Returns:
      A pure function, safe to ``jit`` and ``vmap``; ``grads`` has the structure of params.
      Called on concrete arrays it first checks them (shapes, targets, no NaN/inf, at least
      one row); under ``jit`` only the shapes are checked, once, at trace time.

    Raises:
      ValueError: an (output, loss) pair that cannot work (cross-entropy needs a softmax
        output, binary cross-entropy a sigmoid; see ``fnann._checks.check_head``), an unknown
        ``method`` or ``precision``.

    Example:
      >>> from fnann.mlp import init
      >>> net = MLP([3, 4, 2])
      >>> params = init(jax.random.key(0), net)
      >>> x, y = jnp.ones((5, 3)), jnp.array([0, 1, 1, 0, 1])
      >>> value, grads = jax.jit(loss_and_grad(net, "cross_entropy"))(params, x, y)
      >>> grads[0].W.shape
      (4, 3)
    """
    loss = get_loss(loss)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    check_net(net)
    check_head(net, loss)
    _args.check_precision(precision)

    def check(params: Params, x, y) -> None:
        check_inputs(net, params, x)
        check_has_rows(x)
        check_targets(net, loss, x, y)

    def manual(params: Params, x, y) -> tuple[Array, Params]:
        check(params, x, y)
        y_hat, trace = forward_trace(net, params, x, precision)
        return loss_value(net, loss, y_hat, trace, y), backward(net, params, trace, y, loss, precision)

    def autodiff(params: Params, x, y) -> tuple[Array, Params]:
        check(params, x, y)
        return jax.value_and_grad(lambda p: objective(net, loss, p, x, y, precision))(params)

    return manual if method == "manual" else autodiff
