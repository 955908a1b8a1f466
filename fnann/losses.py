"""Losses: each value travels with its hand-derived gradient ``dL/dy_hat``.

A :class:`Loss` bundles ``fn(y_hat, y)``, a scalar reduced as DESIGN.md fixes it, with
``grad(y_hat, y)``, the gradient of that scalar with respect to ``y_hat`` (the 1/m of the
batch mean is inside it, so a backward pass never divides again).

Where the network's output activation is the loss's canonical link (softmax for
cross-entropy, sigmoid for binary cross-entropy) the two fuse: the loss is computed from
the logits ``Z^(L)`` with ``logsumexp``/``softplus`` and the output delta is simply
``dL/dZ^(L) = (A^(L) - y) / m``. Both stay finite at logits of 1e4 (no ``log(0)``, no
``inf - inf``). :class:`Loss` carries these as ``link``, ``fn_from_logits`` and
``delta_from_logits``.

Targets: one-hot rows (or any rows of the output's width) for ``cross_entropy``; integer
class labels of shape ``(batch,)`` are accepted too and one-hot encoded. A 1-D ``y`` for a
one-output network is read as ``(batch, 1)``, never broadcast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from fnann.activations import Activation, identity, sigmoid, softmax
from fnann.named import Named, member_name, real_parameter

Array = jax.Array


class Loss(NamedTuple):
    """A loss, its hand-derived gradient and, optionally, its fused canonical-link form.

    Attributes:
      name: the name it is looked up by (``"mse"``).
      fn: ``L = fn(y_hat, y)``, a scalar.
      grad: ``dL/dy_hat = grad(y_hat, y)``, shape of ``y_hat``.
      link: the output ``Activation`` with which the loss fuses, or ``None``.
      fn_from_logits: ``L = fn_from_logits(z, y)`` with ``y_hat = link.fn(z)``.
      delta_from_logits: ``dL/dz = delta_from_logits(z, y)``, the fused output delta.
      formula: the loss of one example as text, for ``fnann explain``.
      output: the output activation the loss needs (cross-entropy takes log ŷ of a
        distribution: softmax), or ``None`` when any output will do.
      output_why: why it needs that output, for the error that refuses another one.
      labels: whether integer class labels of shape ``(batch,)`` are accepted as targets
        (one-hot encoded).
      target_range: ``(low, high)`` bounds of the target values (``high`` ``None``: none
        above), checked on concrete targets; ``None`` for any real value.
      sides: for a loss with kinks (|r| at r = 0, max(0, m) at m = 0), ``sides(y_hat, y)``:
        a boolean array saying on which side of its kink each argument lies (``fnann.check_grads``
        leaves out a finite difference whose step changes it); ``None`` for a smooth loss.
    """

    name: str
    fn: Callable[[Array, Array], Array]
    grad: Callable[[Array, Array], Array]
    link: Activation | None = None
    fn_from_logits: Callable[[Array, Array], Array] | None = None
    delta_from_logits: Callable[[Array, Array], Array] | None = None
    formula: str = ""
    output: Activation | None = None
    labels: bool = False
    target_range: tuple[float, float | None] | None = None
    sides: Callable[[Array, Array], Array] | None = None
    output_why: str = ""


def as_targets(y_hat: Array, y, *, one_hot: bool = False) -> Array:
    """Brings targets ``y`` to the shape and dtype of ``y_hat``.

    Integer labels of shape ``(batch,)`` become one-hot rows when ``one_hot`` is set and
    the output has more than one unit; any 1-D ``y`` for a one-unit output becomes
    ``(batch, 1)``. Anything else must already have the shape of ``y_hat``.

    Raises:
      ValueError: when ``y`` cannot be read as targets for ``y_hat`` (named ``y``).
    """
    y = jnp.asarray(y)
    batch, n_out = y_hat.shape[0], y_hat.shape[-1]
    if y.ndim == 1 and one_hot and n_out > 1:
        if not jnp.issubdtype(y.dtype, jnp.integer):
            raise ValueError(
                f"y: 1-D targets for {n_out} classes must be integer class labels; "
                f"got dtype {y.dtype}. Pass one-hot rows of shape ({batch}, {n_out}) instead."
            )
        y = jax.nn.one_hot(y, n_out, dtype=y_hat.dtype)
    elif y.ndim == 1 and n_out == 1:
        y = y[:, None]
    if y.shape != y_hat.shape:
        raise ValueError(
            f"y has shape {y.shape} but the network's output has shape {y_hat.shape}; "
            "targets need one row per example and one column per output unit"
            + (" (or integer class labels of shape (batch,))." if one_hot else ".")
        )
    return y.astype(y_hat.dtype)


# --- mean squared error -------------------------------------------------------------


def mse_fn(y_hat: Array, y) -> Array:
    """Mean squared error over every element.

    Math: L = (1/N) Σ_i (ŷ_i - y_i)², N = batch · n_out (no ½).
    """
    y = as_targets(y_hat, y)
    return jnp.mean(jnp.square(y_hat - y))


def mse_grad(y_hat: Array, y) -> Array:
    """Math: dL/dŷ = (2/N) (ŷ - y)."""
    y = as_targets(y_hat, y)
    return 2.0 * (y_hat - y) / y_hat.size


# --- categorical cross-entropy ------------------------------------------------------


def cross_entropy_fn(y_hat: Array, y) -> Array:
    """Categorical cross-entropy, mean over the batch.

    Math: L = (1/m) Σ_i -Σ_k y_ik log ŷ_ik, with 0 log 0 = 0.
    """
    y = as_targets(y_hat, y, one_hot=True)
    safe = jnp.where(y > 0, y_hat, 1.0)  # 0 log 0 = 0 even where ŷ has exact zeros
    return -jnp.sum(jnp.where(y > 0, y * jnp.log(safe), 0.0)) / y_hat.shape[0]


def cross_entropy_grad(y_hat: Array, y) -> Array:
    """Math: dL/dŷ_ik = -y_ik / (m ŷ_ik) (0 where y_ik = 0)."""
    y = as_targets(y_hat, y, one_hot=True)
    safe = jnp.where(y > 0, y_hat, 1.0)
    return jnp.where(y > 0, -y / safe, 0.0) / y_hat.shape[0]


def cross_entropy_from_logits(z: Array, y) -> Array:
    """Softmax cross-entropy computed from the logits with ``logsumexp``.

    Math: L = (1/m) Σ_i [ (Σ_k y_ik) logsumexp(z_i) - Σ_k y_ik z_ik ]
            = (1/m) Σ_i -Σ_k y_ik log softmax(z_i)_k.
    """
    y = as_targets(z, y, one_hot=True)
    lse = jax.nn.logsumexp(z, axis=-1)
    return jnp.sum(jnp.sum(y, axis=-1) * lse - jnp.sum(y * z, axis=-1)) / z.shape[0]


def cross_entropy_delta(z: Array, y) -> Array:
    """Fused output delta of softmax + cross-entropy.

    Math: δ^(L) = dL/dZ^(L) = (A^(L) - y) / m   (for rows of y that sum to 1;
          in general (Σ_k y_k) A^(L) - y, over m).
    """
    y = as_targets(z, y, one_hot=True)
    return (jnp.sum(y, axis=-1, keepdims=True) * softmax.fn(z) - y) / z.shape[0]


# --- binary cross-entropy -----------------------------------------------------------


def binary_cross_entropy_fn(y_hat: Array, y) -> Array:
    """Binary cross-entropy, mean over every element.

    Math: L = -(1/N) Σ_i [ y_i log ŷ_i + (1 - y_i) log(1 - ŷ_i) ], with 0 log 0 = 0.
    """
    y = as_targets(y_hat, y)
    pos = jnp.where(y > 0, y * jnp.log(jnp.where(y > 0, y_hat, 1.0)), 0.0)
    neg = jnp.where(y < 1, (1 - y) * jnp.log(jnp.where(y < 1, 1 - y_hat, 1.0)), 0.0)
    return -jnp.mean(pos + neg)


def binary_cross_entropy_grad(y_hat: Array, y) -> Array:
    """Math: dL/dŷ_i = (1/N) [ -y_i / ŷ_i + (1 - y_i) / (1 - ŷ_i) ]."""
    y = as_targets(y_hat, y)
    pos = jnp.where(y > 0, -y / jnp.where(y > 0, y_hat, 1.0), 0.0)
    neg = jnp.where(y < 1, (1 - y) / jnp.where(y < 1, 1 - y_hat, 1.0), 0.0)
    return (pos + neg) / y_hat.size


def binary_cross_entropy_from_logits(z: Array, y) -> Array:
    """Sigmoid binary cross-entropy computed from the logits.

    Math: -[y log σ(z) + (1 - y) log(1 - σ(z))] = softplus(z) - y z, mean over N elements.
    """
    y = as_targets(z, y)
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z)


def binary_cross_entropy_delta(z: Array, y) -> Array:
    """Fused output delta of sigmoid + binary cross-entropy.

    Math: δ^(L) = dL/dZ^(L) = (σ(Z^(L)) - y) / N.
    """
    y = as_targets(z, y)
    return (sigmoid.fn(z) - y) / z.size


# --- mean absolute error ---------------------------------------------------------------


def mae_fn(y_hat: Array, y) -> Array:
    """Mean absolute error over every element.

    Math: L = (1/N) Σ_i |ŷ_i - y_i|, N = batch · n_out. |r| is written as 0 where r = 0, so
    that ``jax.grad`` takes the subgradient 0 there too (its own |r| takes 1).
    """
    r = y_hat - as_targets(y_hat, y)
    return jnp.mean(jnp.where(r == 0, jnp.zeros_like(r), jnp.abs(r)))


def mae_grad(y_hat: Array, y) -> Array:
    """Math: dL/dŷ = (1/N) sign(ŷ - y), with the subgradient 0 at ŷ = y (as ``jax.grad`` of |r|)."""
    y = as_targets(y_hat, y)
    return jnp.sign(y_hat - y) / y_hat.size


def _residual_sides(y_hat: Array, y) -> Array:
    return y_hat > as_targets(y_hat, y)


# --- Huber ------------------------------------------------------------------------------

HUBER_DELTA = 1.0
"""Huber's δ by default (PyTorch's ``HuberLoss`` and optax's ``huber_loss``)."""


@functools.cache
def _huber(delta: float) -> Loss:
    def fn(y_hat: Array, y) -> Array:
        r = y_hat - as_targets(y_hat, y)
        a = jnp.abs(r)
        return jnp.mean(jnp.where(a <= delta, 0.5 * jnp.square(r), delta * (a - 0.5 * delta)))

    def grad(y_hat: Array, y) -> Array:
        r = y_hat - as_targets(y_hat, y)
        return jnp.clip(r, -delta, delta) / y_hat.size

    return Loss(member_name("huber", delta, HUBER_DELTA), fn, grad,
                formula=f"L = (1/n) Σ_k h(ŷ_k - y_k),  h(r) = r²/2 if |r| <= {delta:g} else {delta:g}(|r| - {delta:g}/2)")


def huber_with(delta: float = HUBER_DELTA) -> Loss:
    """The Huber loss of ``delta``: quadratic within δ of the target, linear beyond.

    Math: L = (1/N) Σ_i h(r_i), r = ŷ - y, h(r) = ½ r² if |r| <= δ else δ (|r| - ½ δ);
          dL/dŷ = (1/N) clip(r, -δ, δ) (continuous: h is once differentiable everywhere).
    Its name carries δ (``"huber(0.5)"``; the default 1.0 is plain ``"huber"``).

    Args:
      delta: a finite number > 0.

    Example:
      >>> import jax.numpy as jnp
      >>> float(huber_with(1.0).fn(jnp.array([[3.0]]), jnp.array([[0.0]])))  # 1 (3 - 1/2)
      2.5
    """
    return _huber(real_parameter("delta", delta, 0.0, low_open=True))


# --- multi-class hinge ------------------------------------------------------------------


def _margins(s: Array, y) -> tuple[Array, Array]:
    """``(y one-hot, s_j - s_y + 1)`` per example and class."""
    y = as_targets(s, y, one_hot=True)
    return y, s - jnp.sum(y * s, axis=-1, keepdims=True) + 1.0


def hinge_fn(s: Array, y) -> Array:
    """The multi-class hinge (SVM) loss of scores ``s`` (Weston & Watkins; CS231n), mean over the batch.

    Math: L = (1/m) Σ_i Σ_{j ≠ y_i} max(0, s_ij - s_iy_i + 1).
    """
    y, margin = _margins(s, y)
    return jnp.sum((1.0 - y) * jnp.where(margin > 0, margin, 0.0)) / s.shape[0]


def hinge_grad(s: Array, y) -> Array:
    """Math: with M_ij = 1[s_ij - s_iy + 1 > 0] for j ≠ y_i (0 at the kink, as ``jax.grad`` of
    ``where``): dL/ds_ij = (1/m) M_ij for j ≠ y_i, dL/ds_iy = -(1/m) Σ_j M_ij."""
    y, margin = _margins(s, y)
    M = (1.0 - y) * (margin > 0)
    return (M - y * jnp.sum(M, axis=-1, keepdims=True)) / s.shape[0]


def _margin_sides(s: Array, y) -> Array:
    return _margins(s, y)[1] > 0


_LOG_OF_PROBABILITIES = "the loss would take the log of outputs that are not probabilities (NaN or a wrong objective)"
mse = Loss("mse", mse_fn, mse_grad, formula="L = (1/n) Σ_k (ŷ_k - y_k)²")
mae = Loss("mae", mae_fn, mae_grad, formula="L = (1/n) Σ_k |ŷ_k - y_k|", sides=_residual_sides)
huber = huber_with(HUBER_DELTA)
cross_entropy = Loss(
    "cross_entropy",
    cross_entropy_fn,
    cross_entropy_grad,
    softmax,
    cross_entropy_from_logits,
    cross_entropy_delta,
    formula="L = -Σ_k y_k log ŷ_k",
    output=softmax,  # log ŷ of a distribution over >= 2 units
    labels=True,
    target_range=(0.0, None),
    output_why=_LOG_OF_PROBABILITIES,
)
binary_cross_entropy = Loss(
    "binary_cross_entropy",
    binary_cross_entropy_fn,
    binary_cross_entropy_grad,
    sigmoid,
    binary_cross_entropy_from_logits,
    binary_cross_entropy_delta,
    formula="L = -(1/n) Σ_k [y_k log ŷ_k + (1 - y_k) log(1 - ŷ_k)]",
    output=sigmoid,  # log ŷ and log(1 - ŷ): 0 < ŷ < 1 per unit
    target_range=(0.0, 1.0),
    output_why=_LOG_OF_PROBABILITIES,
)

hinge = Loss(
    "hinge",
    hinge_fn,
    hinge_grad,
    formula="L = Σ_{j≠y} max(0, s_j - s_y + 1)",
    output=identity,  # raw scores s = Z^(L): a squashed output caps every margin
    labels=True,
    target_range=(0.0, 1.0),
    sides=_margin_sides,
    output_why="its margins s_j - s_y + 1 compare raw scores; a squashed output (sigmoid, tanh, softmax) "
               "caps every margin, so the loss cannot reach 0 on a correct example",
)

LOSSES: Mapping[str, Loss] = Named({l.name: l for l in (cross_entropy, binary_cross_entropy, mse, mae, huber, hinge)},
                                   {"huber": huber_with}, "loss")
"""Read-only map from name to the built-in :class:`Loss`, a family's members by their names
(``"huber(0.5)"``, listed only as the family's default)."""

_ALIASES = {"ce": "cross_entropy", "bce": "binary_cross_entropy", "crossentropy": "cross_entropy",
            "l1": "mae", "smooth_l1": "huber", "multiclass_hinge": "hinge", "svm": "hinge"}


def get_loss(loss: str | Loss, *, argname: str = "loss") -> Loss:
    """Looks up a loss by name (``"mse"``, ``"cross_entropy"``, ``"binary_cross_entropy"``,
    or the short ``"ce"``/``"bce"``), or checks and returns a ``Loss`` as it is.

    Raises:
      ValueError: for an unknown name; the message lists the known names.
      TypeError: for anything that is neither a name nor a ``Loss``.
    """
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        key = loss.lower().replace("-", "_")
        key = _ALIASES.get(key, key)
        member = LOSSES.member(key, argname)
        if member is not None:
            return member
        if key in LOSSES:
            return LOSSES[key]
        known = ", ".join(repr(k) for k in LOSSES)
        raise ValueError(f"{argname}: unknown loss {loss!r}; known names are {known}.")
    raise TypeError(f"{argname} must be a loss name or an fnann.Loss; got {type(loss).__name__}.")


def default_loss(output: str | Activation) -> Loss:
    """The loss that goes with an output activation: the built-in loss whose canonical link it
    is (softmax: cross-entropy, sigmoid: binary cross-entropy), else ``mse``.

    Example:
      >>> default_loss("softmax").name, default_loss("identity").name
      ('cross_entropy', 'mse')
    """
    from fnann.activations import get_activation

    output = get_activation(output, argname="output")
    return next((l for l in LOSSES.values() if l.link == output), mse)


def random_targets(loss: Loss, key: Array, batch: int, n_out: int, dtype=jnp.float32) -> Array:
    """Random targets that ``loss`` accepts, for gradient checks and demonstrations: class
    labels where it takes labels, 0/1 where its targets lie in [0, 1], else standard normals.
    Shapes: ``(batch,)`` for labels (``()`` for ``batch=None``), else ``(batch, n_out)``
    (``(n_out,)``)."""
    lead = () if batch is None else (batch,)
    if loss.labels:
        return jax.random.randint(key, lead, 0, n_out)
    if loss.target_range == (0.0, 1.0):
        return jax.random.bernoulli(key, 0.5, (*lead, n_out)).astype(dtype)
    return jax.random.normal(key, (*lead, n_out), dtype)


def constant_loss(loss: Loss, y, n_out: int, dtype=jnp.float32) -> Array:
    """The loss of the best constant prediction: every row predicts the mean target row.

    Math: ŷ_i = ȳ = (1/m) Σ_j y_j for every i; L(ȳ, y) is the variance of y for MSE, the
    entropy of the class frequencies for cross-entropy, the per-unit Bernoulli entropy for
    binary cross-entropy: what a network that learned nothing from x achieves.
    """
    t = as_targets(jnp.zeros((jnp.shape(y)[0], n_out), dtype), y, one_hot=loss.labels)
    return loss.fn(jnp.broadcast_to(jnp.mean(t, axis=0), t.shape), y)


def is_fused(loss: Loss, output: Activation) -> bool:
    """True when ``loss`` has a fused form for the output activation ``output``."""
    return loss.link is not None and loss.delta_from_logits is not None and loss.link == output
