"""Backpropagation written by hand: the delta recursion.

Notation: a ``d`` prefix always means ∂L/∂(that): ``dW`` is ∂L/∂W, ``da`` is ∂L/∂A.
``delta`` is δ^(l) = ∂L/∂Z^(l). With batch-first rows (see ``fnann.mlp``) the textbook
equations read

    δ^(L) = ∂L/∂A^(L) ⊙ σ'(Z^(L))              delta[L] = sigma[L].backward(Z[L], dL/dA)
    δ^(l) = (W^(l+1))ᵀ δ^(l+1) ⊙ σ'(Z^(l))     delta[l] = sigma[l].backward(Z[l], delta[l + 1] @ W[l + 1])
    ∂L/∂W^(l) = δ^(l) (A^(l-1))ᵀ               dW[l] = delta[l].T @ A[l - 1]
    ∂L/∂b^(l) = δ^(l)                          db[l] = delta[l].sum(axis=0)

A skip at layer l (A^(l) = A^(l-1) + σ(Z^(l)), ``MLP(residual=...)``) adds its path to
∂L/∂A^(l-1): δ^(l-1) = ((W^(l))ᵀ δ^(l) + ∂L/∂A^(l)) ⊙ σ'(Z^(l-1)).

Dropout at hidden layer l in training (A^(l) = σ(Z^(l)) ⊙ M^(l) / (1 - p_l), the mask in
``trace.M``) multiplies the path into σ by the same mask: ∂L/∂σ^(l) = ∂L/∂A^(l) ⊙ M^(l) / (1 - p_l),
δ^(l) = ∂L/∂σ^(l) ⊙ σ'(Z^(l)); a skip's path ∂L/∂A^(l) -> ∂L/∂A^(l-1) is not dropped.

A normalized hidden layer l (``MLP(norm=...)``: Z^(l) = W^(l) A^(l-1), Y^(l) = γ ⊙ Ẑ^(l) + β,
A^(l) = σ(Y^(l)), ``fnann.norms``) puts the norm's backward between σ' and δ:
∂L/∂Y^(l) = ∂L/∂σ^(l) ⊙ σ'(Y^(l)), then δ^(l) = ∂L/∂Z^(l) = (1/√(σ² + ε)) (dẐ - mean(dẐ) -
Ẑ ⊙ mean(dẐ ⊙ Ẑ)) with dẐ = γ ⊙ ∂L/∂Y^(l), ∂L/∂γ = Σ ∂L/∂Y ⊙ Ẑ, ∂L/∂β = Σ ∂L/∂Y
(``fnann.norms.norm_backward``); ∂L/∂W^(l) = δ^(l) (A^(l-1))ᵀ as for every layer.

The sum over the batch in ``db`` (and the matrix product in ``dW``) adds the per-example
gradients; the 1/m of the batch-mean loss already sits in ∂L/∂A^(L) (``loss.grad``), so
no layer divides again. Some texts (Ng) put the 1/m into dW instead; the totals agree.

:func:`backpropagate` and :func:`value_and_grad` are the unchecked mathematics; the public
``backward``, ``backward_trace``, ``objective`` and ``loss_and_grad`` check their arguments
once, at the door, and call them.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from fnann import checks
from fnann.activations import Activation
from fnann.losses import Loss, get_loss, is_fused
from fnann.mlp import MLP, Dense, Normed, Params, Precision, Trace, dropout_masks, feedforward, precision_scope
from fnann.norms import norm_backward

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
    with precision_scope(precision):
        return Dense(delta.T @ a_prev, jnp.sum(delta, axis=0)), delta @ layer.W


def dropout_backward(da: Array, mask: Array | None, p: float) -> Array:
    """The backward of inverted dropout A = σ ⊙ M / (1 - p): ∂L/∂σ = ∂L/∂A ⊙ M / (1 - p).

    The same product as the forward (``fnann.mlp.dropout_forward``, with the same mask M):
    dropout is linear in σ and diagonal, so its VJP is itself. No mask (evaluation): the identity.
    """
    if mask is None:
        return da
    return da * mask / (1.0 - p)


def output_delta(output: Activation, loss: Loss, z: Array, a: Array, y,
                 fused: bool = True) -> Array:
    """δ^(L) = ∂L/∂Z^(L) for the output layer.

    Math: δ^(L) = ∂L/∂A^(L) ⊙ σ'(Z^(L)) (the VJP of σ for softmax), or, where the loss is
    the output activation's canonical link (softmax + cross-entropy, sigmoid + binary
    cross-entropy) and ``fused`` is set, the fused δ^(L) = (A^(L) - y) / m.
    """
    z, a = widened(z), widened(a)  # the loss and its delta in float32 at least (mixed precision)
    if fused and is_fused(loss, output):
        return loss.delta_from_logits(z, y)
    return output.backward(z, loss.grad(a, y))


def widened(a: Array) -> Array:
    """``a`` in float32 if it is narrower (bfloat16, float16), else as it is: where fnann
    computes a loss and its output delta, so that 16-bit compute keeps a float32 loss."""
    return a.astype(jnp.float32) if jnp.finfo(a.dtype).bits < 32 else a


def backpropagate(net: MLP, params: Params, trace: Trace, y, loss: Loss,
                  fused: bool = True, scale: Array | None = None) -> tuple[Params, Deltas]:
    """The delta recursion, unchecked (callers check at their door): ``(grads, deltas)``.

    Indices are the textbook's, 1-based: ``sigma[l]``, ``W[l]``, ``Z[l]`` belong to layer
    l = 1..L and ``A[0]`` is the input (section 5.4 of the textbook, line by line).
    ``scale`` S (loss scaling) gives the gradients of S·L: δ^(L) <- S δ^(L), in float32,
    before the cast to the params' dtype (the recursion is linear in δ^(L)).
    """
    delta_L = output_delta(net.output, loss, trace.Z[-1], trace.A[-1], y, fused)  # δ^(L) = ∂L/∂A^(L) ⊙ σ'(Z^(L))
    if scale is not None:
        delta_L = delta_L * scale  # δ^(L) of S·L, still float32 (loss scaling)
    return delta_recursion(net, params, trace, delta_L)


def delta_recursion(net: MLP, params: Params, trace: Trace, delta_L: Array) -> tuple[Params, Deltas]:
    """The delta recursion from a given δ^(L) = ∂L/∂Z^(L), unchecked: ``(grads, deltas)``.

    Math: δ^(l-1) = (W^(l))ᵀ δ^(l) ⊙ σ'(Z^(l-1));  ∂L/∂W^(l) = δ^(l) (A^(l-1))ᵀ;  ∂L/∂b^(l) = Σ δ^(l);
          with dropout masks in ``trace.M``: δ^(l-1) = (∂L/∂A^(l-1) ⊙ M^(l-1) / (1 - p_(l-1))) ⊙ σ'(Z^(l-1)).
    :func:`backpropagate` starts it from a loss's δ^(L); ``fnann.sklearn`` from scikit-learn's
    weighted δ^(L) = s ⊙ (A^(L) - Y) / Σ s.
    """
    L = net.n_layers
    sigma = (None, *net.activations)  # σ^(1), ..., σ^(L)
    layer = (None, *params)  # (W^(1), b^(1)), ..., (W^(L), b^(L))
    Z, A = (None, *trace.Z), trace.A  # Z^(1), ..., Z^(L);  A^(0) = x, ..., A^(L) = ŷ
    M = (None, *trace.M) if trace.M else (None,) * L  # M^(1), ..., M^(L-1): dropout masks (training)
    N = (None, *trace.layer_norms)  # the normalized layers' Ẑ, 1/√(σ² + ε), Y
    norm = (None, *net.norms)  # the hidden layers' norms (None: none)
    p = (None, *net.dropout_rates)  # p_1, ..., p_(L-1)
    delta, grads, dA = [None] * (L + 1), [None] * (L + 1), [None] * (L + 1)  # dA[l] = ∂L/∂A^(l)
    d_norm = [None] * (L + 1)  # (∂L/∂γ^(l), ∂L/∂β^(l)) of a normalized layer
    delta[L] = delta_L
    for l in range(L, 0, -1):
        d = delta[l].astype(layer[l].W.dtype)  # δ^(L) is float32 under 16-bit compute: back to the params' dtype
        grads[l], dA[l - 1] = dense_backward(layer[l], A[l - 1], d)  # δ^(l) A^(l-1)ᵀ, Σ δ^(l), W^(l)ᵀ δ^(l)
        if d_norm[l] is not None:  # Z^(l) = W^(l) A^(l-1), no b: the norm's ∂L/∂γ, ∂L/∂β beside ∂L/∂W
            grads[l] = Normed(grads[l].W, *d_norm[l])
        if l in net.residual:
            dA[l - 1] = dA[l - 1] + dA[l]  # + ∂L/∂A^(l), through the skip A^(l) = A^(l-1) + σ(Z^(l))
        if l > 1:
            d_sigma = dropout_backward(dA[l - 1], M[l - 1], p[l - 1])  # ∂L/∂σ^(l-1) = ∂L/∂A^(l-1) ⊙ M / (1 - p)
            if norm[l - 1] is None:
                delta[l - 1] = sigma[l - 1].backward(Z[l - 1], d_sigma)  # δ^(l-1) = (W^(l))ᵀ δ^(l) ⊙ σ'(Z^(l-1))
            else:
                dY = sigma[l - 1].backward(N[l - 1].Y, d_sigma)  # ∂L/∂Y^(l-1) = ∂L/∂σ ⊙ σ'(Y^(l-1))
                delta[l - 1], *d_norm[l - 1] = norm_backward(norm[l - 1], N[l - 1], layer[l - 1].gamma, dY)
    return tuple(grads[1:]), tuple(delta[1:])


def backward(net: MLP, params: Params, trace: Trace, y, loss: Loss | str,
             precision: Precision = None, fused: bool = True) -> Params:
    """Hand-derived gradients of the batch-mean loss: the delta recursion.

    Math: δ^(L) = ∂L/∂A^(L) ⊙ σ'(Z^(L));  δ^(l) = (W^(l+1))ᵀ δ^(l+1) ⊙ σ'(Z^(l));
          ∂L/∂W^(l) = δ^(l) (A^(l-1))ᵀ;  ∂L/∂b^(l) = δ^(l) (summed over the batch).

    Args:
      net: the network.
      params: its parameters.
      trace: from ``forward_trace(net, params, x)``; ``forward_trace(..., key=key)`` gives a
        dropout net's training pass, whose masks ``trace.M`` the recursion applies:
        ∂L/∂σ^(l) = ∂L/∂A^(l) ⊙ M^(l) / (1 - p_l) before σ'.
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
      >>> from fnann.mlp import forward_trace
      >>> net = MLP([3, 4, 2], hidden="sigmoid")
      >>> params = (Dense(jnp.ones((4, 3)), jnp.zeros(4)), Dense(jnp.ones((2, 4)), jnp.zeros(2)))
      >>> x, y = jnp.ones((5, 3)), jnp.array([0, 1, 1, 0, 1])
      >>> _, trace = jax.jit(forward_trace, static_argnums=0)(net, params, x)
      >>> grads, deltas = jax.jit(backward_trace, static_argnums=(0, 4))(net, params, trace, y, "cross_entropy")
      >>> [d.shape for d in deltas]  # deltas[l - 1] is δ^(l) = ∂L/∂Z^(l)
      [(5, 4), (5, 2)]
    """
    loss = get_loss(loss)
    checks.check_inputs(net, params, trace.A[0])
    normed = [l for l, n in enumerate(net.norms, start=1) if n is not None]
    if normed and (len(trace.N) != net.n_layers - 1 or any(trace.N[l - 1] is None for l in normed)):
        raise ValueError(f"trace: {net} normalizes layers {normed}, whose backward needs the training "
                         "pass's statistics (trace.N); pass forward_trace(net, params, x) without stats.")
    with precision_scope(precision):
        return backpropagate(net, params, trace, y, loss, fused)


def loss_value(net: MLP, loss: Loss, y_hat: Array, trace: Trace, y) -> Array:
    """The loss of a forward pass, from the logits when the loss fuses with the output."""
    if is_fused(loss, net.output):
        return loss.fn_from_logits(widened(trace.Z[-1]), y)
    return loss.fn(widened(y_hat), y)


def objective_value(net: MLP, loss: Loss, params: Params, x, y, masks=None) -> Array:
    """L(params; x, y), unchecked: the scalar both gradient methods differentiate
    (with dropout ``masks``, the training pass's loss for those masks)."""
    return objective_and_trace(net, loss, params, x, y, masks)[0]


def objective_and_trace(net: MLP, loss: Loss, params: Params, x, y, masks=None) -> tuple[Array, Trace]:
    """``(L(params; x, y), trace)`` of the training pass, unchecked."""
    y_hat, trace = feedforward(net, params, x, masks=masks)
    return loss_value(net, loss, y_hat, trace, y), trace


def batch_norm_traces(net: MLP, trace: Trace) -> tuple:
    """The batch-norm layers' ``NormTrace`` of a training pass (their batch μ_B, σ²_B), in
    ``net.batch_norm_layers`` order: what the running statistics are updated from."""
    return tuple(trace.N[l - 1] for l in net.batch_norm_layers)


def objective(net: MLP, loss: Loss | str, params: Params, x, y,
              precision: Precision = None) -> Array:
    """The scalar L(params; x, y) that both gradient methods differentiate."""
    loss = get_loss(loss)
    checks.check_inputs(net, params, x)
    with precision_scope(precision):
        return objective_value(net, loss, params, x, y)


def value_and_grad(net: MLP, loss: Loss, method: str = "manual",
                   compute_dtype=None) -> Callable[..., tuple[Array, Params]]:
    """``f(params, x, y, scale=None, key=None) -> (L, ∂L/∂params)``, unchecked: the delta
    recursion (``"manual"``) or ``jax.value_and_grad`` of the same scalar (``"autodiff"``).
    (:func:`value_grad_and_norms` also returns the batch-norm layers' batch statistics.)

    ``key`` (a net with dropout, training): the masks M^(l) = ``dropout_masks(net, key, batch)``
    are drawn once, outside the differentiation, and both methods use them: L is the loss of
    the dropped-out pass and the gradients are its exact ones. Ignored without dropout.

    ``compute_dtype`` (mixed precision, e.g. bfloat16 with float32 params, the "master
    weights"): θ_c = cast(θ), x_c = cast(x); the forward pass and the delta recursion run in
    the compute dtype (the matrix products accumulate in float32 on every XLA backend), the
    loss and δ^(L) in float32 (``widened``); the gradients come back in the params' dtype:
    g = cast_back(∂L/∂θ_c). ``None``: the params' dtype throughout.

    ``scale`` S (dynamic loss scaling, ``fnann.optim.loss_scale``): the gradients are those
    of S·L, g_S = cast_back(∂(S·L)/∂θ_c), S multiplying the float32 δ^(L) (``"manual"``) or
    the float32 loss (``"autodiff"``) before the backward pass; L itself is returned unscaled.
    """
    f = value_grad_and_norms(net, loss, method, compute_dtype)
    return lambda params, x, y, scale=None, key=None: f(params, x, y, scale, key)[:2]


def value_grad_and_norms(net: MLP, loss: Loss, method: str = "manual",
                         compute_dtype=None) -> Callable[..., tuple[Array, Params, tuple]]:
    """``f(params, x, y, scale=None, key=None) -> (L, ∂L/∂params, norms)``: :func:`value_and_grad`'s
    function, with the batch-norm layers' ``NormTrace`` of the same pass (``batch_norm_traces``;
    ``()`` without batch norm), from which a training step updates the running statistics."""
    if compute_dtype is not None:
        f = value_grad_and_norms(net, loss, method)

        def mixed(params: Params, x, y, scale=None, key=None) -> tuple[Array, Params, tuple]:
            low = jax.tree.map(lambda a: a.astype(compute_dtype), params)  # θ_c = cast(θ)
            value, grads, norms = f(low, jnp.asarray(x).astype(compute_dtype), y, scale, key)
            return value, jax.tree.map(lambda g, p: g.astype(p.dtype), grads, params), norms  # back to the params' dtype

        return mixed

    def masks_for(params: Params, x, key):
        if key is None or not net.has_dropout:
            return None
        return dropout_masks(net, key, jnp.shape(x)[0], params[0].W.dtype)

    def manual(params: Params, x, y, scale=None, key=None) -> tuple[Array, Params, tuple]:
        y_hat, trace = feedforward(net, params, x, masks=masks_for(params, x, key))
        scaled = {} if scale is None else {"scale": scale}  # S·δ^(L) only under loss scaling
        grads = backpropagate(net, params, trace, y, loss, **scaled)[0]
        return loss_value(net, loss, y_hat, trace, y), grads, batch_norm_traces(net, trace)

    def autodiff(params: Params, x, y, scale=None, key=None) -> tuple[Array, Params, tuple]:
        masks = masks_for(params, x, key)  # drawn once, outside jax.grad: the same masks as "manual"

        def scaled(p):  # (S·L, (L, norms)): the gradient of S·L (S = 1 unscaled), the value L
            value, trace = objective_and_trace(net, loss, p, x, y, masks)
            aux = (value, jax.lax.stop_gradient(batch_norm_traces(net, trace)))
            return (value if scale is None else value * scale), aux

        (_, (value, norms)), grads = jax.value_and_grad(scaled, has_aux=True)(params)
        return value, grads, norms

    return manual if method == "manual" else autodiff


def check_loss_and_grad(net: MLP, loss: Loss | str, method: str, precision: Precision = None) -> Loss:
    """The static checks of :func:`loss_and_grad` (and ``train_step``): the loss, the method,
    the (output, loss) pair and the precision; returns the ``Loss``."""
    loss = get_loss(loss)
    checks.one_of(method, "method", METHODS)
    checks.check_net(net)
    checks.check_head(net, loss)
    checks.check_precision(precision)
    return loss


def check_batch(net: MLP, loss: Loss, params: Params, x, y) -> None:
    """The checks of one batch at the door: params, x (finite, at least one row) and y."""
    checks.check_inputs(net, params, x)
    checks.check_has_rows(x)
    checks.check_targets(net, loss, x, y)


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
      A net with dropout takes ``f(params, x, y, key)``: the loss and gradients of the pass
      with the masks ``dropout_masks(net, key, batch)``; without ``key``, of the evaluation pass.
      Called on concrete arrays it first checks them (shapes, targets, no NaN/inf, at least
      one row); under ``jit`` only the shapes are checked, once, at trace time.

    Raises:
      ValueError: an (output, loss) pair that cannot work (cross-entropy needs a softmax
        output, binary cross-entropy a sigmoid; see ``fnann.checks.check_head``), an unknown
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
    loss = check_loss_and_grad(net, loss, method, precision)
    f = value_and_grad(net, loss, method)

    def checked(params: Params, x, y, key=None) -> tuple[Array, Params]:
        check_batch(net, loss, params, x, y)
        if key is not None:
            checks.check_key(key)
        with precision_scope(precision):
            return f(params, x, y, None, key)

    return checked
