"""Checks of the non-array arguments at the public boundary: keys, dtypes, counts, options.

Each check raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind, bad
value) naming the argument, before anything is traced or compiled. The array checks
(shapes, NaN, targets) are in ``fnann._checks``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PRECISION_NAMES = ("default", "high", "highest", "bfloat16", "bfloat16_3x", "tensorfloat32",
                   "float32", "fastest")


def check_key(key: Any, name: str = "key") -> None:
    """Checks that ``key`` is one PRNG key: ``jax.random.key(s)`` or a raw ``PRNGKey(s)``.

    Example:
      >>> check_key(jax.random.key(0))
      >>> check_key(0)
      Traceback (most recent call last):
      ...
      TypeError: key must be a PRNG key such as jax.random.key(0); got int 0.
    """
    dtype = getattr(key, "dtype", None)
    if dtype is None or isinstance(key, (numbers.Number, np.generic)):
        raise TypeError(f"{name} must be a PRNG key such as jax.random.key(0); got "
                        f"{type(key).__name__} {key!r}.")
    shape = tuple(jnp.shape(key))
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if shape != ():
            raise ValueError(f"{name} must be a single PRNG key; got an array of keys of shape "
                             f"{shape} (from jax.random.split?). Pass one of them, e.g. {name}[0].")
        return
    if dtype == jnp.uint32 and len(shape) == 1 and shape[0] in (2, 4):
        return  # a raw (legacy) key: jax.random.PRNGKey(0)
    if dtype == jnp.uint32 and len(shape) == 2:
        raise ValueError(f"{name} must be a single PRNG key; got {shape[0]} raw keys (shape "
                         f"{shape}, from jax.random.split?). Pass one of them, e.g. {name}[0].")
    raise TypeError(f"{name} must be a PRNG key such as jax.random.key(0); got an array of dtype "
                    f"{dtype} and shape {shape}.")


def check_dtype(dtype: Any, name: str = "dtype") -> jnp.dtype:
    """``dtype`` as a floating ``numpy`` dtype (float16, bfloat16, float32, float64)."""
    try:
        out = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be a floating dtype such as jnp.float32, 'float64' or "
                        f"'bfloat16'; got {dtype!r}.") from None
    if not jnp.issubdtype(out, jnp.floating):
        raise TypeError(f"{name} must be a floating dtype; got {out}.")
    return out


def check_precision(precision: Any, name: str = "precision") -> None:
    """Checks a matmul ``precision``: ``None``, a ``jax.lax.Precision``, its name, or a pair."""
    if precision is None or isinstance(precision, (jax.lax.Precision, jax.lax.DotAlgorithmPreset)):
        return
    if isinstance(precision, str):
        if precision not in PRECISION_NAMES:
            raise ValueError(f"{name} must be None, a jax.lax.Precision or one of "
                             f"{PRECISION_NAMES}; got {precision!r}.")
        return
    if isinstance(precision, (tuple, list)) and len(precision) == 2:
        for p in precision:
            check_precision(p, name)
        return
    raise TypeError(f"{name} must be None, a jax.lax.Precision or one of {PRECISION_NAMES}; "
                    f"got {type(precision).__name__} {precision!r}.")


def check_count(value: Any, name: str, low: int = 0) -> int:
    """``value`` as an int >= ``low`` (``True`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be >= {low}; got {value}.")
    return int(value)


def check_real(value: Any, name: str, low: float = -math.inf) -> float:
    """``value`` as a finite float >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}.")
    if not (math.isfinite(value) and value >= low):
        raise ValueError(f"{name} must be a finite number >= {low:g}; got {value!r}.")
    return float(value)


def check_callable(value: Any, name: str) -> None:
    """Checks that ``value`` is ``None`` or callable."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable (or None); got {type(value).__name__} {value!r}.")


def to_device(a) -> jax.Array:
    """``a`` as a jax array. A host array goes over with ``jax.device_put``: in JAX 0.10,
    ``jnp.asarray`` of a numpy array runs a small copy program, compiled (or looked up in the
    compilation cache) once per shape and dtype, which adds up at a command's start-up."""
    if isinstance(a, jax.Array):
        return a
    return jax.device_put(np.asarray(a))
