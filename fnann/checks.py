"""Validation at the public boundary: every check fnann makes before it computes.

Each public entry point (``forward``, ``loss_and_grad``, ``fit``, ``evaluate``, ...) calls
these once, at its door, and then runs the unchecked mathematics. Every check raises
``ValueError`` (right kind, bad value) or ``TypeError`` (wrong kind of object) with a message
that names the argument, says what was expected and what came. Shape checks are static, so
they also run (once, at trace time) under ``jax.jit``; value checks (NaN, label range) look
at concrete arrays only and are skipped for tracers.

The declarative helpers come first: :func:`integer` (an int at least ``low``) and
:func:`real` (a real number in a range with open or closed ends), each written once; then
the arguments that are not arrays (keys, dtypes, precisions), the arrays (inputs, params,
targets, the (output, loss) pair), and the composite checks of training.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from fnann.activations import is_built_in
from fnann.limits import MAX_SEED

if TYPE_CHECKING:
    from fnann.losses import Loss
    from fnann.mlp import MLP

PRECISION_NAMES = ("default", "high", "highest", "bfloat16", "bfloat16_3x", "tensorfloat32",
                   "float32", "fastest")
MONITORS = ("val_loss", "val_accuracy", "loss")
MAX_EPOCH = 2**31 - 1  # epoch e shuffles with fold_in(key, e), and steps count in int32


# --- declarative helpers ----------------------------------------------------------------


def integer(value: Any, name: str, low: int = 0, *, what: str = "an int", noun: str = "",
            hint: str = "") -> int:
    """``value`` as an int >= ``low`` (``True`` is not an int).

    ``what`` names the kind in the TypeError (``"an integer width"``), ``noun`` in the
    ValueError (``"a width"``: "must be a width >= 1"); ``hint`` follows the bound there
    (``" (1 is SGD)"``).

    Example:
      >>> integer(3, "epochs")
      3
      >>> integer(0, "chunk_size", low=1)
      Traceback (most recent call last):
      ...
      ValueError: chunk_size must be >= 1; got 0.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {what}; got {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be {noun + ' ' if noun else ''}>= {low}{hint}; got {value}.")
    return int(value)


def seed(value: Any, name: str = "seed") -> int:
    """``value`` as a seed: an int in [0, ``MAX_SEED``] (``fnann.limits``: 2**31 - 1, the int32
    that ``jax.random.key`` takes from a traced seed while x64 is off).

    Example:
      >>> seed(2**40)
      Traceback (most recent call last):
      ...
      ValueError: seed must be <= 2147483647 (2**31 - 1); got 1099511627776.
    """
    value = integer(value, name, 0)
    if value > MAX_SEED:
        raise ValueError(f"{name} must be <= {MAX_SEED} (2**31 - 1); got {value}.")
    return value


def real(value: Any, name: str, low: float = -math.inf, high: float = math.inf, *,
         low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """``value`` as a float in the range from ``low`` to ``high``, each end open or closed;
    with ``finite`` (the default) inf and NaN are refused even where the range allows them.

    Example:
      >>> real(0.5, "beta", 0, 1, high_open=True)
      0.5
      >>> real(1.0, "beta", 0, 1, high_open=True)
      Traceback (most recent call last):
      ...
      ValueError: beta must lie in [0, 1); got 1.0.
      >>> real("a", "eps")
      Traceback (most recent call last):
      ...
      TypeError: eps must be a real number; got 'a'.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}.")
    x = float(value)
    if not in_range(x, low, high, low_open=low_open, high_open=high_open, finite=finite):
        raise ValueError(f"{name} must {describe_range(low, high, low_open, high_open, finite)}; got {value!r}.")
    return x


def in_range(x: float, low: float = -math.inf, high: float = math.inf, *, low_open: bool = False,
             high_open: bool = False, finite: bool = True) -> bool:
    """Whether ``x`` lies between ``low`` and ``high`` (open or closed ends; finite if asked)."""
    above = x > low if low_open else x >= low
    below = x < high if high_open else x <= high
    return above and below and (math.isfinite(x) or not finite)


def describe_range(low: float, high: float, low_open: bool = False, high_open: bool = False,
                   finite: bool = True) -> str:
    """The words of a range after "must": ``"be a finite number >= 0"``, ``"lie in [0, 1)"``."""
    kind = "be a finite number" if finite else "be a number"
    if math.isinf(high):
        return kind if math.isinf(low) else f"{kind} {'>' if low_open else '>='} {low:g}"
    if math.isinf(low):
        return f"{kind} {'<' if high_open else '<='} {high:g}"
    return f"lie in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def one_of(value: Any, name: str, choices: Sequence) -> Any:
    """``value`` itself if it is one of ``choices``, else a ValueError listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}.")
    return value


def check_callable(value: Any, name: str) -> None:
    """Checks that ``value`` is ``None`` or callable."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable (or None); got {type(value).__name__} {value!r}.")


# --- keys, dtypes, precisions -------------------------------------------------------------

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


COMPUTE_DTYPES = ("bfloat16", "float16")
"""The compute dtypes of mixed precision (float16 with dynamic loss scaling: ``fnann.optim.loss_scale``)."""


def check_compute_dtype(compute_dtype: Any, param_dtype: Any = None) -> str | None:
    """``compute_dtype`` as its name, or None: mixed precision's dtype of the steps' arithmetic.

    None, or the params' own dtype, is plain precision. bfloat16 needs no loss scaling (its
    exponent range is float32's); float16 does (small gradients flush to 0), which the
    training entry points add (``fnann.loss_scaling``). A compute dtype wider than the
    params' is refused.
    """
    if compute_dtype is None:
        return None
    out = check_dtype(compute_dtype, "compute_dtype")
    if param_dtype is not None and out == jnp.dtype(param_dtype):
        return None
    if param_dtype is not None and jnp.finfo(param_dtype).bits <= jnp.finfo(out).bits:
        raise ValueError(f"compute_dtype={out.name!r} is not narrower than the params' {jnp.dtype(param_dtype).name}: "
                         "mixed precision keeps float32 (or float64) params and computes in bfloat16 or float16.")
    if out.name not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES} (or None: the params' dtype); "
                         f"got {out.name!r}.")
    return out.name


def memory_limit() -> tuple[int, str]:
    """``(bytes, where)``: what the default device can hold, its ``memory_stats()["bytes_limit"]``
    where it reports one (GPUs, TPUs), else the host's physical memory (a CPU device's arrays
    live there)."""
    device = jax.config.jax_default_device
    if not isinstance(device, jax.Device):
        device = jax.devices()[0]
    try:
        stats = device.memory_stats() or {}
    except Exception:  # noqa: BLE001 - a backend without memory statistics
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"device {device}"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host's physical memory"


def check_fits_memory(n_bytes: int, what: str) -> None:
    """Raises ValueError when ``what`` needs more than ``memory_limit()`` bytes: refused before
    allocating, where an allocation beyond the device aborts the process or hangs it."""
    limit, where = memory_limit()
    if n_bytes > limit:
        raise ValueError(f"{what} needs {_bytes(n_bytes)} ({n_bytes} bytes), more than the {where} holds "
                         f"({_bytes(limit)}); use smaller layers.")


def _bytes(n: int) -> str:
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n} B"


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



# --- arrays -------------------------------------------------------------------------


def is_concrete(x) -> bool:
    """True when ``x`` holds values (not a tracer inside ``jit``/``vmap``/``grad``, nor a
    ``jax.ShapeDtypeStruct`` standing for an array not yet computed)."""
    return not isinstance(x, (jax.core.Tracer, jax.ShapeDtypeStruct))


def check_sizes(sizes) -> tuple[int, ...]:
    """Checks an MLP's layer widths and returns them as a tuple of ints."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(
            f"sizes must be a list or tuple of layer widths like (64, 128, 10); got {sizes!r}."
        )
    if len(sizes) < 2:
        raise ValueError(
            f"sizes needs at least two entries (inputs and outputs), e.g. (4, 3); got {tuple(sizes)}."
        )
    return tuple(integer(n, f"sizes[{i}]", 1, what="an integer width", noun="a width") for i, n in enumerate(sizes))


def array_like(a, name: str):
    """``a`` itself if it has a shape and dtype (an array or tracer), else ``np.asarray(a)``.

    Raises:
      ValueError: for a ragged nested list, which is no array at all.
    """
    if isinstance(a, jax.ShapeDtypeStruct):
        raise TypeError(f"{name} is a jax.ShapeDtypeStruct (a shape without values); pass the data.")
    if hasattr(a, "shape") and hasattr(a, "dtype"):
        return a
    try:
        out = np.asarray(a)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name} must be a rectangular array of numbers; a ragged list or an "
                         f"object of type {type(a).__name__} is not one ({e}).") from None
    if out.dtype == object:
        holding = " holding other objects" if isinstance(a, (list, tuple)) else ""
        raise TypeError(f"{name} must be an array of numbers; got {type(a).__name__}{holding}.")
    return out


def check_real_dtype(a, name: str, allow_bool: bool = False) -> None:
    """Raises TypeError unless ``a`` holds real numbers (integers or floats)."""
    dtype = a.dtype
    ok = jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    if not (ok or (allow_bool and dtype == np.bool_)):
        raise TypeError(f"{name} must hold real numbers; got dtype {dtype}.")


def check_x(x, n_in: int, name: str = "x") -> None:
    """Checks that ``x`` is a float batch of shape ``(batch, n_in)``."""
    x = array_like(x, name)
    shape = jnp.shape(x)
    if len(shape) != 2:
        hint = f" For a single example pass {name}[None, :]." if len(shape) == 1 else ""
        raise ValueError(f"{name} must have shape (batch, {n_in}); got shape {shape}.{hint}")
    if shape[1] != n_in:
        raise ValueError(
            f"{name} has {shape[1]} features (shape {shape}) but the network's first layer "
            f"expects {n_in}."
        )
    check_real_dtype(x, name)


def check_params(params, sizes: tuple[int, ...], name: str = "params", norms: tuple = ()) -> None:
    """Checks that ``params`` is one ``Dense(W, b)`` per layer with the net's shapes (a
    ``Normed(W, gamma, beta)`` for each hidden layer whose entry in ``norms`` is not None)."""
    n_layers = len(sizes) - 1
    if not isinstance(params, (tuple, list)):
        raise TypeError(
            f"{name} must be a tuple of Dense(W, b), one per layer (from fnann.init); "
            f"got {type(params).__name__}."
        )
    if len(params) != n_layers:
        raise ValueError(
            f"{name} has {len(params)} layers but the network {sizes} has {n_layers}."
        )
    normed = tuple(n is not None for n in norms) + (False,) if norms else (False,) * n_layers
    for l, layer in enumerate(params):
        arrays = _unpack_layer(layer, l, name, normed[l])
        fields = ("W", "gamma", "beta") if normed[l] else ("W", "b")
        for field, a in zip(fields, arrays):
            if not (hasattr(a, "shape") and hasattr(a, "dtype")) or not jnp.issubdtype(a.dtype, jnp.floating):
                got = f"dtype {a.dtype}" if hasattr(a, "dtype") else type(a).__name__
                raise TypeError(f"{name}[{l}].{field} must be a floating array (from fnann.init); got {got}.")
        want = ((sizes[l + 1], sizes[l]),) + ((sizes[l + 1],),) * (len(fields) - 1)
        if tuple(jnp.shape(a) for a in arrays) != want:
            have = " and ".join(f"{f} {jnp.shape(a)}" for f, a in zip(fields, arrays))
            expect = " and ".join(f"{f} {w}" for f, w in zip(fields, want))
            raise ValueError(
                f"{name}[{l}] has {have} but the network {sizes} expects {expect} (W is (n_out, n_in))."
            )


def _unpack_layer(layer, l: int, name: str, normed: bool = False):
    """``(W, b)`` of a Dense layer, ``(W, gamma, beta)`` of a normalized one (``Normed``)."""
    fields = ("W", "gamma", "beta") if normed else ("W", "b")
    want = f"Normed({', '.join(fields)}) (a normalized layer)" if normed else "Dense(W, b)"
    try:
        return tuple(getattr(layer, f) for f in fields)
    except AttributeError:
        raise TypeError(f"{name}[{l}] must be a {want}; got {type(layer).__name__}.") from None


def check_stats(net, stats, name: str = "stats", stacked: bool = False) -> None:
    """Checks a batch-norm net's running statistics: one ``RunningStats(mean, var)`` per
    batch-norm layer (``net.batch_norm_layers``), each of shape ``(n_l,)`` (``stacked``: K
    models' stacked, ``(K, n_l)``, one K for all), floating, and (when concrete) finite with
    var >= 0."""
    layers = net.batch_norm_layers
    if not layers:
        if stats not in (None, ()):
            raise ValueError(f"{name}: {net} has no batch norm, so it keeps no running statistics; "
                             f"pass {name}=None (or ()).")
        return
    if not isinstance(stats, (tuple, list)) or len(stats) != len(layers):
        got = f"{len(stats)} entries" if isinstance(stats, (tuple, list)) else type(stats).__name__
        raise ValueError(f"{name} must be one RunningStats(mean, var) per batch-norm layer {layers} "
                         f"(fnann.init_stats(net)); got {got}.")
    lead = jnp.shape(getattr(stats[0], "mean", ()))[:1] if stacked else ()  # (K,): the first array's models
    for i, (l, s) in enumerate(zip(layers, stats)):
        if getattr(s, "_fields", None) != ("mean", "var"):
            raise TypeError(f"{name}[{i}] must be a RunningStats(mean, var); got {type(s).__name__}.")
        for field, a in (("mean", s.mean), ("var", s.var)):
            if not (hasattr(a, "shape") and hasattr(a, "dtype")) or not jnp.issubdtype(a.dtype, jnp.floating):
                raise TypeError(f"{name}[{i}].{field} must be a floating array (from fnann.init_stats).")
            want = (*lead, net.sizes[l])
            if jnp.shape(a) != want:
                raise ValueError(f"{name}[{i}].{field} has shape {jnp.shape(a)} but layer {l} has "
                                 f"{net.sizes[l]} units{' (stacked: K models first)' if stacked else ''}: "
                                 f"it must be {want}.")
            check_finite(a, f"{name}[{i}].{field}")
        if is_concrete(s.var) and np.any(np.asarray(s.var) < 0):
            raise ValueError(f"{name}[{i}].var holds a negative variance; running variances are >= 0.")


def check_norm_rows(net, x, name: str = "x") -> None:
    """A training pass of batch norm needs two rows or more: one row has no variance over the
    batch (Ẑ would be 0 and the gradient through μ, σ² degenerate)."""
    if net.has_batch_norm and jnp.shape(x)[0] == 1:
        raise ValueError(f"{name} has 1 row, but {net} has batch norm, whose training pass normalizes "
                         "by the batch's mean and variance: a batch needs 2 rows or more (use a larger "
                         "batch, or evaluate with the running statistics).")


def check_targets_values(y, n_out: int, *, labels: bool, name: str = "y") -> None:
    """Value checks on concrete targets: finite, and integer labels inside [0, n_out)."""
    if not is_concrete(y):
        return
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer):
        if labels and y.ndim == 1 and n_out > 1 and y.size:
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= n_out:
                raise ValueError(
                    f"{name} holds class labels in [{lo}, {hi}] but the network has "
                    f"{n_out} outputs, so labels must lie in [0, {n_out - 1}]."
                )
    elif not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains NaN or inf at {_first_bad(y)}.")


def check_finite(x, name: str = "x") -> None:
    """Raises if a concrete float array holds NaN or inf, naming the first bad index."""
    if not is_concrete(x):
        return
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf at {_first_bad(x)}.")


def check_representable(x, dtype, name: str = "x") -> None:
    """Raises if concrete ``x`` holds values that overflow ``dtype`` (the params' dtype it is
    cast to: float16 ends at 65504)."""
    if not is_concrete(x) or not jnp.issubdtype(dtype, jnp.floating):
        return
    x = np.asarray(x)
    high = float(jnp.finfo(dtype).max)
    if x.size and np.issubdtype(x.dtype, np.number) and float(np.max(np.abs(x))) > high:
        raise ValueError(f"{name} holds {float(np.max(np.abs(x))):.4g} in magnitude, which overflows the "
                         f"params' dtype {jnp.dtype(dtype).name} (largest {high:.4g}); scale {name} "
                         "or use float32 params.")


def _first_bad(a: np.ndarray) -> str:
    idx = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
    return f"index {idx if len(idx) > 1 else idx[0]} (value {a[idx]})"


def check_rows(x, y, x_name: str = "x", y_name: str = "y") -> None:
    """Checks that ``x`` and ``y`` have the same number of rows."""
    y = array_like(y, y_name)
    nx, ny = jnp.shape(x)[0], jnp.shape(y)[0] if jnp.ndim(y) else None
    if ny is None or nx != ny:
        raise ValueError(
            f"{x_name} has {nx} rows but {y_name} has "
            f"{'no rows (a scalar)' if ny is None else ny}; they need one row per example."
        )


def check_params_finite(params, name: str = "params", *, shapes: bool = False) -> None:
    """Raises if concrete parameters hold NaN or inf, naming the layer.

    ``shapes``: whether ``jax.ShapeDtypeStruct`` leaves (shapes without values) are accepted,
    as by ``compile_fit`` and ``compile_inference``; everything that computes refuses them.
    """
    for l, layer in enumerate(params):
        for field in getattr(layer, "_fields", ("W", "b")):  # Dense(W, b) or Normed(W, gamma, beta)
            a = getattr(layer, field)
            if isinstance(a, jax.ShapeDtypeStruct) and not shapes:
                raise TypeError(f"{name}[{l}].{field} is a jax.ShapeDtypeStruct (a shape without values); "
                                "pass the arrays (from fnann.init): only compile_fit and compile_inference "
                                "take shapes.")
            check_finite(a, f"{name}[{l}].{field}")


def check_has_rows(x, name: str = "x", needed_by: str = "the loss") -> None:
    """Raises if ``x`` has no rows: a mean over no examples is undefined."""
    if jnp.shape(x)[0] == 0:
        raise ValueError(f"{name} has no rows; {needed_by} needs at least one example.")


def check_head(net: MLP, loss: Loss) -> None:
    """Refuses the (output activation, loss) pairs that cannot work.

    A loss that needs an output (``loss.output``: cross-entropy takes the log of a
    distribution, softmax; binary cross-entropy log ŷ and log(1 - ŷ), sigmoid) refuses any
    other built-in output (-Σ y log ŷ of a tanh, ReLU or identity output takes the log of
    numbers <= 0; of a sigmoid it never penalises a false positive); a categorical head over
    one unit is the constant 1 under any loss. A custom output activation is not judged (its
    range is unknown).
    """
    out = net.output
    if not is_built_in(out):
        return
    if out.head == "categorical" and net.n_out == 1:
        raise ValueError(f"output={out.name!r} over a single unit is the constant 1 (nothing to learn); "
                         "use output='sigmoid' with loss='binary_cross_entropy' for two classes.")
    need = loss.output
    if need is not None and out != need:
        from fnann.losses import default_loss

        raise ValueError(
            f"loss={loss.name!r} needs output={need.name!r}, but the network's output is {out.name!r}"
            + (f": {loss.output_why}" if loss.output_why else "")
            + f". Use output={need.name!r}, or loss={default_loss(out).name!r} with this output.")


def check_targets(net: MLP, loss: Loss, x, y, x_name: str = "x", y_name: str = "y") -> None:
    """Shape and (for concrete arrays) value checks of the targets ``y`` of ``loss``.

    Besides the shape: targets must lie in ``loss.target_range`` (cross-entropy >= 0, binary
    cross-entropy in [0, 1]: probabilities), checked on concrete arrays.
    """
    check_target_shape(net, x, y, labels=loss.labels, x_name=x_name, y_name=y_name)
    if loss.target_range is None or not is_concrete(y):
        return
    y, (low, high) = np.asarray(y), loss.target_range
    if labels_given(net, loss, y) or not y.size:
        return
    bad = (y < low) | (y > high) if high is not None else y < low
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        want = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise ValueError(f"{y_name}: {loss.name} targets must be {want} (probabilities); "
                         f"{y_name}[{', '.join(map(str, idx))}] is {y[idx]}.")


def labels_given(net: MLP, loss: Loss, y) -> bool:
    """True when ``y`` holds integer class labels (already range-checked) for ``loss``."""
    return loss.labels and jnp.ndim(y) == 1 and net.n_out > 1 and jnp.issubdtype(
        jnp.result_type(y), jnp.integer)


def check_target_shape(net: MLP, x, y, *, labels: bool, x_name: str = "x", y_name: str = "y") -> None:
    """Checks ``y`` against ``x`` and the net: one row per example, ``n_out`` columns or, if
    ``labels``, integer labels in [0, n_out); finite values when concrete."""
    check_rows(x, y, x_name, y_name)
    y = array_like(y, y_name)
    check_real_dtype(y, y_name, allow_bool=True)
    check_targets_values(y, net.n_out, labels=labels, name=y_name)
    shape = jnp.shape(y)
    if len(shape) == 1 and net.n_out > 1 and not (labels and jnp.issubdtype(jnp.result_type(y), jnp.integer)):
        raise ValueError(
            f"{y_name} has shape {shape} but the network has {net.n_out} outputs; pass targets "
            f"of shape ({shape[0]}, {net.n_out})" + (" or integer class labels." if labels else ".")
        )
    if len(shape) == 2 and shape[1] != net.n_out:
        raise ValueError(f"{y_name} has {shape[1]} columns but the network has {net.n_out} outputs.")
    if len(shape) not in (1, 2):
        raise ValueError(f"{y_name} must have shape (batch,) or (batch, {net.n_out}); got {shape}.")


def check_net(net) -> None:
    """Raises TypeError unless ``net`` is an ``MLP``."""
    from fnann.mlp import MLP

    if not isinstance(net, MLP):
        raise TypeError(f"net must be an fnann.MLP; got {type(net).__name__}.")


def check_net_params(net: MLP, params, *, shapes: bool = False) -> None:
    """The net is an ``MLP`` and ``params`` has its shapes; concrete params must be finite.
    ``shapes``: ``jax.ShapeDtypeStruct`` leaves are accepted (``compile_*`` only)."""
    check_net(net)
    check_params(params, net.sizes, norms=net.norms)
    check_params_finite(params, shapes=shapes)


def check_inputs(net: MLP, params, x, x_name: str = "x", *, shapes: bool = False) -> None:
    """Checks shared by every public entry point: the net, params and x agree, and (for
    concrete arrays, not under ``jit``) params and x hold no NaN or inf."""
    check_net_params(net, params, shapes=shapes)
    check_x(x, net.n_in, x_name)
    check_finite(x, x_name)
    check_representable(x, jnp.result_type(params[0].W), x_name)


# --- training -----------------------------------------------------------------------


def check_training(net, loss, x, y, *, epochs, initial_epoch, batch_size, validation_data,
                   monitor: str, monitored: bool) -> None:
    """The checks of the data and the training arguments that ``fit`` and ``fit_many`` share:
    epoch counts, ``batch_size``, ``x, y`` and ``validation_data`` (``check_data``), and
    ``monitor`` (one of ``MONITORS``; when ``monitored``, a ``val_`` one needs validation data,
    and ``val_accuracy`` a classifier)."""
    integer(epochs, "epochs")
    integer(initial_epoch, "initial_epoch")
    if initial_epoch + epochs > MAX_EPOCH:
        raise ValueError(f"initial_epoch + epochs must be <= {MAX_EPOCH}; got {initial_epoch + epochs}.")
    check_batch_size(batch_size)
    one_of(monitor, "monitor", MONITORS)
    check_data(net, loss, x, y)
    check_norm_batches(net, jnp.shape(x)[0], batch_size)
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise TypeError("validation_data must be a pair (x_val, y_val).")
        check_data(net, loss, *validation_data, x_name="x_val", y_name="y_val")
    if monitor.startswith("val_") and monitored and validation_data is None:
        raise ValueError(f"monitor={monitor!r} needs validation_data (or use monitor='loss').")
    if monitor == "val_accuracy" and net.output.head is None:
        raise ValueError("monitor='val_accuracy' needs a classifier (softmax or sigmoid output).")


def check_data(net, loss, x, y, x_name: str = "x", y_name: str = "y"):
    """Validates a dataset before anything compiles (shapes, NaN/inf, label range)."""
    check_x(x, net.n_in, x_name)
    check_rows(x, y, x_name, y_name)
    check_finite(x, x_name)
    check_has_rows(x, x_name, "fit")
    check_targets(net, loss, x, y, x_name, y_name)


def check_norm_batches(net, n: int, batch_size: int | None) -> None:
    """A batch-norm net trains on batches of 2 rows or more (``check_norm_rows``): refuses a
    ``batch_size`` (or ``n`` rows, full batch) that makes a batch of 1 row, b = 1 or n mod b = 1."""
    if not net.has_batch_norm:
        return
    b = n if batch_size is None else min(batch_size, n)
    if n == 1:
        raise ValueError(f"x has 1 row, but {net} has batch norm, whose training pass normalizes by the "
                         "batch's mean and variance: a batch needs 2 rows or more.")
    if b == 1 or n % b == 1:
        which = "every batch has" if b == 1 else f"the last batch holds the n mod batch_size = {n} mod {b} ="
        raise ValueError(f"batch_size={batch_size}: {which} 1 row, but {net} has batch norm, whose "
                         "training pass normalizes by the batch's mean and variance: a batch needs 2 rows "
                         f"or more. Choose a batch_size with n mod batch_size != 1 (n = {n}).")


def check_batch_size(batch_size) -> None:
    if batch_size is not None:
        integer(batch_size, "batch_size", 1, what="a positive int or None (full batch)",
                hint=" (1 is SGD) or None (full batch)")


def check_opt_state(opt, opt_state: Any, params: Any, name: str = "opt_state") -> None:
    """Raises ValueError unless ``opt_state`` has the tree structure, shapes and dtypes of
    ``opt.init(params)`` (computed abstractly with ``jax.eval_shape``, nothing allocated)."""
    template = jax.eval_shape(opt.init, params)
    want, got = jax.tree.structure(template), jax.tree.structure(opt_state)
    if want != got:
        raise ValueError(
            f"{name} does not have the structure of opt.init(params) (an opt_state from another "
            f"optimizer, or for other params?).\n  {name}: {_short(got)}\n  opt.init(params): "
            f"{_short(want)}\nPass the opt_state that this optimizer returned, or None to start afresh.")
    for (path, leaf), ref in zip(jax.tree_util.tree_leaves_with_path(opt_state), jax.tree.leaves(template)):
        shape, dtype = jnp.shape(leaf), jnp.result_type(leaf)
        if shape != ref.shape or dtype != ref.dtype:
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)} has shape {shape} and dtype {dtype} but "
                f"opt.init(params) gives shape {ref.shape} and dtype {ref.dtype} there.")


def _short(treedef) -> str:
    text = str(treedef)
    return text if len(text) <= 300 else text[:300] + " ..."
