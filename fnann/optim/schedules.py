"""Learning-rate schedules: factories returning a ``Schedule``, called as ``schedule(step) -> lr``.

A schedule is called by an optimizer with its int32 ``step``, the number of updates already
applied, so update k (k = 0, 1, ...) uses ``schedule(k)`` (optax's convention). Every
schedule is pure ``jax.numpy``: it works on Python ints and on traced int32 steps under
``jit``, ``vmap`` and ``lax.scan``, and returns a float array in the default float dtype
(float32, or float64 under ``jax.enable_x64``), which the optimizer casts to each
parameter's dtype. A ``Schedule`` compares and hashes by its factory and arguments, like
the optimizers, so ``adam(cosine_decay(1e-3, 100))`` built twice is one configuration. Any
plain callable ``step -> lr`` is accepted by the optimizers as well.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from fnann.optim.base import ByConfig, configured


@dataclasses.dataclass(frozen=True, eq=False)
class Schedule(ByConfig):
    """A learning-rate schedule ``step -> lr`` that compares by its configuration.

    Attributes:
        fn: the function of the step.
        config: ``(factory, arguments)`` when a factory of this module built it.
    """

    fn: Callable[[jax.typing.ArrayLike], jax.Array]
    config: Hashable | None = None
    _functions = ("fn",)

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        return self.fn(step)

__all__ = [
    "Schedule",
    "constant",
    "exponential_decay",
    "cosine_decay",
    "linear_warmup",
    "join_schedules",
    "warmup_cosine_decay",
]


def _float(name: str, value: Any, low: float = 0.0, high: float = math.inf) -> float:
    """``value`` as a finite float in [low, high], or a ValueError/TypeError naming it."""
    scalar = isinstance(value, (int, float)) or (hasattr(value, "dtype") and jnp.ndim(value) == 0)
    if isinstance(value, bool) or not scalar:
        raise TypeError(f"{name} must be a real number; got {value!r}.")
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be a finite number in [{low}, {high}]; got {value!r}.")
    return value


def _steps(name: str, value: Any, low: int = 1) -> int:
    """``value`` as an int >= low, or a ValueError/TypeError naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int; got {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}.")
    return value


def _as_float(step: jax.typing.ArrayLike) -> jax.Array:
    return jnp.asarray(step, dtype=float)  # default float dtype (int32 / int is float32)


@configured
def constant(value: float) -> Schedule:
    """lr(step) = value.

    Example:
        >>> constant(0.1)(5)
        Array(0.1, dtype=float32)
    """
    value = _float("value", value)
    return Schedule(lambda step: jnp.full(jnp.shape(step), value, dtype=float))


@configured
def exponential_decay(
    init_value: float, decay_rate: float, transition_steps: int, staircase: bool = False
) -> Schedule:
    """lr(step) = init_value * decay_rate ** (step / transition_steps).

    With ``staircase=True`` the exponent is floor(step / transition_steps), so the rate
    drops once every ``transition_steps`` updates. Note the argument order differs from
    optax's ``exponential_decay(init_value, transition_steps, decay_rate)``.

    Args:
        init_value: lr(0), finite and >= 0.
        decay_rate: factor per ``transition_steps`` updates, finite and > 0.
        transition_steps: int >= 1.
        staircase: decay in discrete jumps.

    Example:
        >>> exponential_decay(1.0, 0.5, transition_steps=10)(20)
        Array(0.25, dtype=float32)
    """
    init_value = _float("init_value", init_value)
    decay_rate = _float("decay_rate", decay_rate)
    if decay_rate == 0:
        raise ValueError("decay_rate must be > 0; got 0.")
    transition_steps = _steps("transition_steps", transition_steps)

    def schedule(step):
        if staircase:  # integer division: float32 k / T may round to just below an integer
            p = _as_float(jnp.asarray(step) // transition_steps)
        else:
            p = _as_float(step) / transition_steps
        return init_value * decay_rate**p

    return Schedule(schedule)


@configured
def cosine_decay(init_value: float, decay_steps: int, alpha: float = 0.0) -> Schedule:
    """Cosine decay from ``init_value`` to ``alpha * init_value`` (optax's formula).

    Math: t = min(step, decay_steps);
    lr(step) = init_value * ((1 - alpha) * 0.5 * (1 + cos(pi t / decay_steps)) + alpha),
    constant at ``alpha * init_value`` after ``decay_steps``. Evaluated as cos^2(pi t / 2T),
    the same number without the cancellation of 1 + cos near the end of the decay.

    Reference: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
    Restarts" (ICLR 2017).

    Args:
        init_value: lr(0), finite and >= 0.
        decay_steps: int >= 1.
        alpha: final fraction of ``init_value``, in [0, 1].

    Example:
        >>> [round(float(cosine_decay(1.0, decay_steps=10, alpha=0.1)(k)), 4) for k in (0, 5, 99)]
        [1.0, 0.55, 0.1]
    """
    init_value = _float("init_value", init_value)
    decay_steps = _steps("decay_steps", decay_steps)
    alpha = _float("alpha", alpha, high=1.0)

    def schedule(step):
        t = jnp.minimum(_as_float(step), decay_steps)
        cosine = jnp.cos(0.5 * jnp.pi * t / decay_steps) ** 2  # = 0.5 (1 + cos(pi t / T))
        return init_value * ((1 - alpha) * cosine + alpha)

    return Schedule(schedule)


@configured
def linear_warmup(init_value: float, end_value: float, warmup_steps: int) -> Schedule:
    """Linear ramp from ``init_value`` to ``end_value``, then constant.

    Math: lr(step) = init_value + (end_value - init_value) * min(step, warmup_steps)
    / warmup_steps.

    Args:
        init_value: lr(0), finite and >= 0.
        end_value: lr(step) for step >= warmup_steps, finite and >= 0.
        warmup_steps: int >= 1.

    Example:
        >>> linear_warmup(0.0, 1.0, warmup_steps=4)(1)
        Array(0.25, dtype=float32)
    """
    init_value = _float("init_value", init_value)
    end_value = _float("end_value", end_value)
    warmup_steps = _steps("warmup_steps", warmup_steps)

    def schedule(step):
        t = jnp.clip(_as_float(step), 0, warmup_steps)
        return init_value + (end_value - init_value) * t / warmup_steps

    return Schedule(schedule)


@configured
def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]``, and so on.

    Math: for b_{i-1} <= step < b_i (b_{-1} = 0), lr(step) = schedules[i](step - b_{i-1}):
    each schedule restarts its own count at its boundary, as in optax.

    Args:
        schedules: callables ``step -> lr``, at least one.
        boundaries: ``len(schedules) - 1`` strictly increasing ints >= 0.

    Example:
        >>> sched = join_schedules([constant(1.0), linear_warmup(0.0, 1.0, 10)], [5])
        >>> [round(float(sched(k)), 2) for k in (4, 5, 6)]
        [1.0, 0.0, 0.1]
    """
    schedules, boundaries = list(schedules), list(boundaries)
    if not schedules or not all(callable(s) for s in schedules):
        raise TypeError(f"schedules must be non-empty callables step -> lr; got {schedules!r}.")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"boundaries must have len(schedules) - 1 = {len(schedules) - 1} entries; "
            f"got {len(boundaries)}."
        )
    for b in boundaries:
        _steps("boundaries", b, low=0)
    if any(b >= c for b, c in zip(boundaries, boundaries[1:])):
        raise ValueError(f"boundaries must be strictly increasing; got {boundaries}.")

    def schedule(step):
        lr = _as_float(schedules[0](step))
        for b, s in zip(boundaries, schedules[1:]):
            lr = jnp.where(jnp.asarray(step) < b, lr, _as_float(s(step - b)))
        return lr

    return Schedule(schedule)


@configured
def warmup_cosine_decay(
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    init_value: float = 0.0,
    end_value: float = 0.0,
) -> Schedule:
    """Linear warmup to ``peak_value``, then cosine decay to ``end_value``.

    ``decay_steps`` is the total length including the warmup (as in optax's
    ``warmup_cosine_decay_schedule``): lr(0) = init_value, lr(warmup_steps) = peak_value,
    lr(step) = end_value for step >= decay_steps. Built as
    ``join_schedules([linear_warmup(init_value, peak_value, warmup_steps),
    cosine_decay(peak_value, decay_steps - warmup_steps, end_value / peak_value)],
    [warmup_steps])``; with ``warmup_steps=0`` it is the cosine decay alone.

    Args:
        peak_value: lr at the end of the warmup, finite and > 0.
        warmup_steps: int >= 0.
        decay_steps: int > warmup_steps.
        init_value: lr(0), finite and >= 0.
        end_value: final lr, in [0, peak_value].

    Example:
        >>> sched = warmup_cosine_decay(1.0, warmup_steps=2, decay_steps=6)
        >>> [round(float(sched(k)), 2) for k in range(8)]
        [0.0, 0.5, 1.0, 0.85, 0.5, 0.15, 0.0, 0.0]
    """
    peak_value = _float("peak_value", peak_value)
    if peak_value == 0:
        raise ValueError("peak_value must be > 0; got 0.")
    warmup_steps = _steps("warmup_steps", warmup_steps, low=0)
    decay_steps = _steps("decay_steps", decay_steps)
    if decay_steps <= warmup_steps:
        raise ValueError(
            f"decay_steps (the total length, warmup included) must exceed warmup_steps; "
            f"got decay_steps={decay_steps}, warmup_steps={warmup_steps}."
        )
    init_value = _float("init_value", init_value)
    end_value = _float("end_value", end_value, high=peak_value)
    decay = cosine_decay(peak_value, decay_steps - warmup_steps, end_value / peak_value)
    if warmup_steps == 0:
        return decay
    warmup = linear_warmup(init_value, peak_value, warmup_steps)
    return join_schedules([warmup, decay], [warmup_steps])
