"""Dynamic loss scaling: float16 mixed precision's guard against gradients that flush to 0.

float16 has 5 exponent bits: its smallest normal number is 2^-14 ≈ 6e-5 and its largest
65504, so the small δ^(l) of a float16 backward pass underflow to 0. Scaling the loss by S
scales every δ^(l) and every gradient by S (the backward pass is linear in δ^(L)), which
lifts them into float16's range; the gradients are unscaled in float32 before the update.
Too large an S overflows instead, which the unscaled gradient shows as inf or NaN: that step
is skipped and S halved. The rule (torch.cuda.amp.GradScaler's, with a floor at 1)::

    θ_c = f16(θ), x_c = f16(x)           the forward pass in float16; L and δ^(L) in float32
    S·δ^(L) (manual) or S·L (autodiff)    scaled in float32, then cast to float16
    g_S = f32(∂(S·L)/∂θ_c)                the backward pass of the scaled loss, in float16
    g   = g_S / S                         unscaled in float32
    finite:  (u, s) = opt.update(g, s, θ);  k <- k + 1;  if k = N: S <- S · growth_factor, k <- 0
    else:    u = 0, s unchanged (the step is skipped);  S <- max(S · backoff_factor, 1), k <- 0

with N = ``growth_interval`` good steps in a row. ``loss_scaling(opt)`` wraps an optimizer
so that (S, k) live in its state, ``LossScaleState(scale, good_steps, inner)``: ``save``,
``load`` and ``--resume`` carry them, and a resumed run is bit-identical to an unbroken one.
Its ``update`` takes the *scaled* gradients g_S; ``fnann.train.update_step`` scales the loss
by the state's S (``fnann.backprop.value_and_grad``'s ``scale``) and keeps θ when the step
is skipped.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnann.optim.base import Optimizer, as_optimizer, check_hyperparameter, configured
from fnann.tree_codec import register_checkpoint_type

__all__ = ["LossScaleState", "LossScaling", "loss_scaling", "with_loss_scaling", "all_finite", "inner_state", "state_for",
           "INITIAL_SCALE", "GROWTH_INTERVAL", "GROWTH_FACTOR", "BACKOFF_FACTOR"]

INITIAL_SCALE = 2.0**15  # S_0, torch.cuda.amp.GradScaler's init_scale
GROWTH_INTERVAL = 2000  # N: good steps in a row before S grows (GradScaler's growth_interval)
GROWTH_FACTOR = 2.0  # S <- 2 S after N good steps
BACKOFF_FACTOR = 0.5  # S <- S / 2 (at least 1) after a step with a non-finite gradient


@register_checkpoint_type
class LossScaleState(NamedTuple):
    """State of ``loss_scaling``: the scale, the good steps since it last changed, the inner state."""

    scale: jax.Array  # float32 scalar: S, the factor of the loss
    good_steps: jax.Array  # int32 scalar: k, finite steps in a row since S last changed
    inner: Any  # the wrapped optimizer's state, unchanged by a skipped step


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class LossScaling(Optimizer):
    """An ``Optimizer`` whose ``update`` takes scaled gradients g_S (built by :func:`loss_scaling`)."""


def all_finite(tree: Any) -> jax.Array:
    """True (a bool scalar) when every entry of every leaf of ``tree`` is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def next_scale(state: LossScaleState, finite: jax.Array, growth_interval: int, growth_factor: float,
               backoff_factor: float) -> tuple[jax.Array, jax.Array]:
    """``(S', k')`` after a step: finite: k' = k + 1, and S' = growth_factor · S, k' = 0 once
    k + 1 = N (unless growth_factor · S overflows float32); else S' = max(backoff_factor · S, 1), k' = 0."""
    k = state.good_steps + 1
    grown = state.scale * growth_factor
    grow = (k >= growth_interval) & jnp.isfinite(grown)
    good_scale = jnp.where(grow, grown, state.scale)
    good_k = jnp.where(k >= growth_interval, 0, k)
    scale = jnp.where(finite, good_scale, jnp.maximum(state.scale * backoff_factor, 1.0))
    return scale.astype(jnp.float32), jnp.where(finite, good_k, 0).astype(jnp.int32)


@configured
def loss_scaling(opt: Any, initial_scale: float = INITIAL_SCALE, growth_interval: int = GROWTH_INTERVAL,
                 growth_factor: float = GROWTH_FACTOR, backoff_factor: float = BACKOFF_FACTOR) -> LossScaling:
    """``opt`` behind dynamic loss scaling (the module docstring gives the rule).

    Math: g = g_S / S (float32); finite g: (u, s) = opt.update(g, s, θ), S doubles after
    ``growth_interval`` good steps; else u = 0, s kept, S <- max(S/2, 1).

    ``fit(..., compute_dtype="float16")`` wraps its optimizer with the defaults; wrap it
    yourself for other settings, or for ``train_step``.

    Args:
      opt: the optimizer of the unscaled gradients.
      initial_scale: S_0, >= 1 and a finite float32 (default 2^15).
      growth_interval: N >= 1, the good steps in a row after which S grows (default 2000).
      growth_factor: > 1, S's factor after N good steps (default 2).
      backoff_factor: in (0, 1), S's factor after a non-finite gradient (default 0.5).

    Raises:
      ValueError: a setting out of its range, naming it; TypeError: ``opt`` is no optimizer.
    """
    inner = as_optimizer(opt)
    check_hyperparameter("initial_scale", initial_scale, 1.0, float(jnp.finfo(jnp.float32).max))
    if isinstance(growth_interval, bool) or not isinstance(growth_interval, numbers.Integral) or growth_interval < 1:
        raise ValueError(f"growth_interval must be an int >= 1 (good steps before the scale grows); "
                         f"got {growth_interval!r}.")
    check_hyperparameter("growth_factor", growth_factor, 1.0, low_open=True)
    check_hyperparameter("backoff_factor", backoff_factor, 0.0, 1.0, low_open=True, high_open=True)

    def init(params) -> LossScaleState:
        return LossScaleState(jnp.asarray(initial_scale, jnp.float32), jnp.zeros((), jnp.int32), inner.init(params))

    def update(scaled_grads, state: LossScaleState, params=None):
        grads = jax.tree.map(lambda g: g.astype(jnp.promote_types(g.dtype, jnp.float32)) / state.scale, scaled_grads)
        finite = all_finite(grads)  # g = g_S / S, in float32
        updates, inner_state = inner.update(grads, state.inner, params)
        updates = jax.tree.map(lambda u: jnp.where(finite, u, jnp.zeros_like(u)), updates)
        inner_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), inner_state, state.inner)
        scale, good = next_scale(state, finite, growth_interval, growth_factor, backoff_factor)
        return updates, LossScaleState(scale, good, inner_state)

    return LossScaling(init, update)


def with_loss_scaling(opt: Any, compute_dtype: str | None) -> Any:
    """``loss_scaling(opt)`` for float16 compute unless ``opt`` scales already; else ``opt``."""
    if compute_dtype == "float16" and not isinstance(opt, LossScaling):
        return loss_scaling(opt)
    return opt


def inner_state(opt_state: Any) -> Any:
    """The wrapped optimizer's state of a ``LossScaleState``; any other state as it is."""
    return opt_state.inner if isinstance(opt_state, LossScaleState) else opt_state


def state_for(opt_state: Any, compute_dtype: str | None) -> Any:
    """``opt_state`` for a run (resumed) in ``compute_dtype``: for float16 a plain state gets a
    fresh scale, ``LossScaleState(S_0, 0, opt_state)`` (the default settings); for any other
    compute dtype a ``LossScaleState`` gives its inner state (the moments are kept either way)."""
    if opt_state is None or compute_dtype != "float16":
        return inner_state(opt_state)
    if isinstance(opt_state, LossScaleState):
        return opt_state
    return LossScaleState(jnp.asarray(INITIAL_SCALE, jnp.float32), jnp.zeros((), jnp.int32), opt_state)
