"""Normalization of a hidden layer's pre-activations: layer norm and batch norm, each with
its hand-derived backward rule.

A normalized hidden layer l (``MLP(norm=...)``) computes, rows being examples,

    Z = W A_prev                          (no b: β is the layer's shift; batch norm would cancel b)
    μ, σ² = mean and variance of Z        over the units of each row (layer norm, Ba et al. 2016)
                                          or over the batch for each unit (batch norm, Ioffe & Szegedy 2015)
    Ẑ = (Z - μ) / √(σ² + ε)
    Y = γ ⊙ Ẑ + β                         (γ, β learned, one per unit)
    A = σ(Y)

and its backward, given dY = ∂L/∂Y (the means over the axis μ was taken over):

    ∂L/∂γ = Σ_batch dY ⊙ Ẑ,   ∂L/∂β = Σ_batch dY,   dẐ = γ ⊙ dY,
    ∂L/∂Z = (1/√(σ² + ε)) (dẐ - mean(dẐ) - Ẑ ⊙ mean(dẐ ⊙ Ẑ)).

Batch norm normalizes by the batch's statistics in training and by running ones at
evaluation, Ẑ = (Z - μ_run) / √(σ²_run + ε); each training step updates them (PyTorch's rule:
the unbiased batch variance in the running estimate, the biased one to normalize):

    μ_run <- (1 - m) μ_run + m μ_B,   σ²_run <- (1 - m) σ²_run + m · n/(n - 1) · σ²_B.

The statistics are computed in float32 at least (a float16 variance of squares overflows
long before the values do); Y comes back in Z's dtype.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from fnann import checks
from fnann.tree_codec import register_checkpoint_type

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class LayerNorm:
    """Layer normalization: each example's pre-activations normalized over the layer's units.

    Math: μ_i = mean_j Z_ij, σ²_i = mean_j (Z_ij - μ_i)², Ẑ = (Z - μ) / √(σ² + ε); the same in
    training and at evaluation (no running state).
    """

    eps: float = 1e-5
    name = "layer"
    axis = -1  # the units of each row
    equation = "Ẑ = (Z - μ) / √(σ² + ε), μ, σ² over the units of each example"

    def __post_init__(self):
        object.__setattr__(self, "eps", checks.real(self.eps, "LayerNorm eps", 0.0, 1.0, low_open=True))


@dataclasses.dataclass(frozen=True)
class BatchNorm:
    """Batch normalization: each unit's pre-activations normalized over the batch.

    Math: μ_j = mean_i Z_ij, σ²_j = mean_i (Z_ij - μ_j)² in training (a batch needs two rows
    or more); the running μ_run, σ²_run at evaluation, updated with ``momentum`` m per step.
    """

    momentum: float = 0.1
    eps: float = 1e-5
    name = "batch"
    axis = 0  # the batch, for each unit
    equation = "Ẑ = (Z - μ_B) / √(σ²_B + ε), μ_B, σ²_B over the batch for each unit"

    def __post_init__(self):
        object.__setattr__(self, "momentum", checks.real(self.momentum, "BatchNorm momentum", 0.0, 1.0))
        object.__setattr__(self, "eps", checks.real(self.eps, "BatchNorm eps", 0.0, 1.0, low_open=True))


Norm = LayerNorm | BatchNorm
NORMS = {"layer": LayerNorm, "batch": BatchNorm}


def get_norm(norm, argname: str = "norm") -> Norm | None:
    """A ``LayerNorm``/``BatchNorm`` from itself, its name (``"layer"``, ``"batch"``) or
    ``None``/``"none"`` (no normalization)."""
    if norm is None or isinstance(norm, (LayerNorm, BatchNorm)):
        return norm
    if isinstance(norm, str):
        if norm == "none":
            return None
        if norm in NORMS:
            return NORMS[norm]()
        raise ValueError(f"{argname} = {norm!r} is not a normalization; choose one of "
                         f"{sorted(NORMS)} or None (or give fnann.LayerNorm(...)/fnann.BatchNorm(...)).")
    raise TypeError(f"{argname} must be 'layer', 'batch', None, or a fnann.LayerNorm/BatchNorm; "
                    f"got {type(norm).__name__}.")


@register_checkpoint_type
class RunningStats(NamedTuple):
    """One batch-norm layer's running statistics (non-trained state): ``mean`` μ_run and
    ``var`` σ²_run, each of shape ``(n_l,)``."""

    mean: Array
    var: Array


class NormTrace(NamedTuple):
    """What a training pass of a normalized layer keeps for its backward (a pytree).

    Attributes:
      Z_hat: Ẑ, shape ``(batch, n)``, in float32 at least.
      inv_sigma: 1 / √(σ² + ε): ``(batch, 1)`` for layer norm, ``(1, n)`` for batch norm.
      mean, var: μ and the biased σ², of the same shape as ``inv_sigma``.
      Y: γ ⊙ Ẑ + β, the activation's input, in Z's dtype.
    """

    Z_hat: Array
    inv_sigma: Array
    mean: Array
    var: Array
    Y: Array


def _wide(a: Array) -> Array:
    return a.astype(jnp.float32) if jnp.finfo(a.dtype).bits < 32 else a


def normalize(norm: Norm, z: Array, gamma: Array, beta: Array) -> tuple[Array, NormTrace]:
    """The training pass: ``(Y, NormTrace)`` with Y = γ ⊙ (Z - μ) / √(σ² + ε) + β, μ and σ²
    of this Z (over its units: layer norm; over its batch: batch norm), unchecked."""
    zw = _wide(z)
    mean = jnp.mean(zw, axis=norm.axis, keepdims=True)
    var = jnp.mean(jnp.square(zw - mean), axis=norm.axis, keepdims=True)  # two passes: no cancellation
    inv_sigma = jax.lax.rsqrt(var + norm.eps)
    z_hat = (zw - mean) * inv_sigma
    y = (_wide(gamma) * z_hat + _wide(beta)).astype(z.dtype)
    return y, NormTrace(z_hat, inv_sigma, mean, var, y)


def normalize_running(norm: BatchNorm, stats: RunningStats, z: Array, gamma: Array, beta: Array) -> Array:
    """Batch norm at evaluation: Y = γ ⊙ (Z - μ_run) / √(σ²_run + ε) + β, unchecked."""
    zw = _wide(z)
    z_hat = (zw - _wide(stats.mean)) * jax.lax.rsqrt(_wide(stats.var) + norm.eps)
    return (_wide(gamma) * z_hat + _wide(beta)).astype(z.dtype)


def norm_backward(norm: Norm, trace: NormTrace, gamma: Array, dy: Array) -> tuple[Array, Array, Array]:
    """The hand-derived backward of :func:`normalize`: ``(∂L/∂Z, ∂L/∂γ, ∂L/∂β)`` from dY = ∂L/∂Y.

    Math: dẐ = γ ⊙ dY;  ∂L/∂Z = (1/√(σ² + ε)) (dẐ - mean(dẐ) - Ẑ ⊙ mean(dẐ ⊙ Ẑ)), the means
          over the axis of μ (units: layer norm; batch: batch norm);
          ∂L/∂γ = Σ_batch dY ⊙ Ẑ;  ∂L/∂β = Σ_batch dY.
    Ẑ has mean 0 and mean square σ²/(σ² + ε) over that axis; the two means remove the
    components of dẐ along 1 and Ẑ, through which μ and σ² depend on Z.
    """
    dyw, z_hat = _wide(dy), trace.Z_hat
    dz_hat = _wide(gamma) * dyw
    mean_dz_hat = jnp.mean(dz_hat, axis=norm.axis, keepdims=True)
    mean_dz_hat_z_hat = jnp.mean(dz_hat * z_hat, axis=norm.axis, keepdims=True)
    dz = trace.inv_sigma * (dz_hat - mean_dz_hat - z_hat * mean_dz_hat_z_hat)
    dgamma, dbeta = jnp.sum(dyw * z_hat, axis=0), jnp.sum(dyw, axis=0)
    return dz.astype(dy.dtype), dgamma.astype(gamma.dtype), dbeta.astype(gamma.dtype)


def update_running(norm: BatchNorm, stats: RunningStats, trace: NormTrace) -> RunningStats:
    """One training step's update of the running statistics, unchecked.

    Math: μ_run <- (1 - m) μ_run + m μ_B;  σ²_run <- (1 - m) σ²_run + m · n/(n - 1) · σ²_B,
          n the batch's rows (two or more: a one-row batch has no variance).
    """
    n = trace.Z_hat.shape[0]
    m = norm.momentum
    mean_b = trace.mean[0].astype(stats.mean.dtype)
    var_b = (trace.var[0] * (n / (n - 1))).astype(stats.var.dtype)
    return RunningStats((1 - m) * stats.mean + m * mean_b, (1 - m) * stats.var + m * var_b)
