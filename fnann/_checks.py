"""Input validation at the public boundary.

Every check raises ``ValueError`` (bad shape or value) or ``TypeError`` (wrong kind of
object) with a message that names the argument, says what was expected and what came.
Shape checks are static, so they also run (once, at trace time) under ``jax.jit``; value
checks (NaN, label range) look at concrete arrays only and are skipped for tracers.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from fnann.activations import ACTIVATIONS

if TYPE_CHECKING:
    from fnann.losses import Loss
    from fnann.mlp import MLP


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
    out = []
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"sizes[{i}] must be an integer width; got {n!r}.")
        if n < 1:
            raise ValueError(f"sizes[{i}] must be a width >= 1; got {n}.")
        out.append(int(n))
    return tuple(out)


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


def check_params(params, sizes: tuple[int, ...], name: str = "params") -> None:
    """Checks that ``params`` is one ``Dense(W, b)`` per layer with the net's shapes."""
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
    for l, layer in enumerate(params):
        W, b = _unpack_layer(layer, l, name)
        for field, a in (("W", W), ("b", b)):
            if not (hasattr(a, "shape") and hasattr(a, "dtype")) or not jnp.issubdtype(a.dtype, jnp.floating):
                got = f"dtype {a.dtype}" if hasattr(a, "dtype") else type(a).__name__
                raise TypeError(f"{name}[{l}].{field} must be a floating array (from fnann.init); got {got}.")
        want_W, want_b = (sizes[l + 1], sizes[l]), (sizes[l + 1],)
        if jnp.shape(W) != want_W or jnp.shape(b) != want_b:
            raise ValueError(
                f"{name}[{l}] has W {jnp.shape(W)} and b {jnp.shape(b)} but the network "
                f"{sizes} expects W {want_W} (n_out, n_in) and b {want_b}."
            )


def _unpack_layer(layer, l: int, name: str):
    try:
        W, b = layer.W, layer.b
    except AttributeError:
        raise TypeError(
            f"{name}[{l}] must be a Dense(W, b); got {type(layer).__name__}."
        ) from None
    return W, b


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
        for field in ("W", "b"):
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


# The output activation each built-in loss needs: cross-entropy takes log ŷ (ŷ > 0 and the
# rows a distribution: softmax), binary cross-entropy log ŷ and log(1 - ŷ) (0 < ŷ < 1 per unit).
LOSS_OUTPUTS = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}


def check_head(net: MLP, loss: Loss) -> None:
    """Refuses the (output activation, loss) pairs that cannot work.

    Cross-entropy needs a softmax output over >= 2 units (-Σ y log ŷ of a tanh, ReLU or identity
    output takes the log of numbers <= 0; of a sigmoid it never penalises a false positive:
    for one unit use binary cross-entropy); binary cross-entropy needs a sigmoid output; a
    softmax over one unit is the constant 1 under any loss. A custom output activation is
    not judged (its range is unknown).
    """
    out = net.output
    if ACTIVATIONS.get(out.name) is not out:
        return
    if out.name == "softmax" and net.n_out == 1:
        raise ValueError("output='softmax' over a single unit is the constant 1 (nothing to learn); "
                         "use output='sigmoid' with loss='binary_cross_entropy' for two classes.")
    need = LOSS_OUTPUTS.get(loss.name)
    if need is not None and out.name != need:
        other = {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy"}.get(out.name, "mse")
        raise ValueError(
            f"loss={loss.name!r} needs output={need!r}, but the network's output is {out.name!r}: "
            f"the loss would take the log of outputs that are not probabilities (NaN or a wrong "
            f"objective). Use output={need!r}, or loss={other!r} with this output.")


def check_targets(net: MLP, loss: Loss, x, y, x_name: str = "x", y_name: str = "y") -> None:
    """Shape and (for concrete arrays) value checks of the targets ``y`` of ``loss``.

    Besides the shape: cross-entropy targets must be >= 0 and binary cross-entropy targets
    in [0, 1] (probabilities), checked on concrete arrays.
    """
    check_target_shape(net, x, y, labels=reads_labels(loss), x_name=x_name, y_name=y_name)
    low_high = {"cross_entropy": (0.0, None), "binary_cross_entropy": (0.0, 1.0)}.get(loss.name)
    if low_high is None or not is_concrete(y):
        return
    y, (low, high) = np.asarray(y), low_high
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
    return reads_labels(loss) and jnp.ndim(y) == 1 and net.n_out > 1 and jnp.issubdtype(
        jnp.result_type(y), jnp.integer)


def reads_labels(loss: Loss) -> bool:
    """Whether ``loss`` accepts integer class labels (softmax cross-entropy) as targets."""
    return loss.link is not None and loss.link.name == "softmax"


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
