"""Inference on data of any size: ``predict``, ``accuracy`` and ``evaluate`` in chunks.

Each runs a jitted function over fixed-size chunks of ``x`` (the last chunk may be
smaller), so memory stays bounded by the chunk size and at most two programs compile per
chunk size, whatever the number of rows.

A batch-norm net is evaluated with its running statistics (``stats=``, required):
Ẑ = (Z - μ_run) / √(σ²_run + ε), row by row, so a chunk's output does not depend on the
other rows of the chunk (never the chunk's own statistics).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fnann import checks, parallel
from fnann.backprop import loss_value
from fnann.caches import compiled_cache
from fnann.checks import check_has_rows, check_head, check_inputs, check_target_shape, check_targets
from fnann.losses import Loss, as_targets, get_loss
from fnann.mlp import MLP, Params, feedforward

Array = jax.Array

DEFAULT_CHUNK = 8192


def accuracy_metric(net: MLP) -> Callable[[Array, Array], Array] | None:
    """The per-batch count of correct predictions for a classifier, or ``None``.

    A categorical head (softmax): argmax of ŷ against the label (or the argmax of a one-hot
    row); a binary head (sigmoid): ŷ > 0.5 against each 0/1 target (binary or multi-label).
    Any other output activation is a regressor and has no accuracy.
    """
    if net.output.head == "categorical":
        def correct(y_hat, y):
            labels = y if y.ndim == 1 else jnp.argmax(y, axis=-1)
            return jnp.sum(jnp.argmax(y_hat, axis=-1) == labels)
        return correct
    if net.output.head == "binary":
        def correct(y_hat, y):
            y = as_targets(y_hat, y)
            return jnp.sum((y_hat > 0.5) == (y > 0.5)) / y_hat.shape[-1]
        return correct
    return None


@compiled_cache(maxsize=32)
def _chunk_fns(net: MLP, loss: Loss | None, mesh=None, data_axis=None):
    """``(out(params, x, *running), totals(params, x, y, *running))``, jitted; ``running`` is
    ``running_stats``'s: ``()``, or ``(stats,)`` for batch norm (evaluated with them)."""
    def out(params, x, *running):
        return feedforward(net, params, parallel.constrain_rows(x, mesh, data_axis), stats=_first(running))[0]

    def totals(params, x, y, *running):
        y_hat, trace = feedforward(net, params, parallel.constrain_rows(x, mesh, data_axis),
                                   stats=_first(running))
        total = loss_value(net, loss, y_hat, trace, y) * x.shape[0]  # undo the batch mean
        metric = accuracy_metric(net)
        return total, (metric(y_hat, y) if metric else jnp.zeros(()))

    return jax.jit(out), jax.jit(totals)


def _first(running: tuple):
    return running[0] if running else None


def running_stats(net: MLP, stats, name: str = "stats") -> tuple:
    """The checked running statistics as the chunk functions' trailing arguments: ``(stats,)``
    for a batch-norm net (required: a clear ValueError naming ``stats`` without them), ``()``
    for other nets (which accept ``None`` or ``()``)."""
    if net.has_batch_norm and stats is None:
        raise ValueError(f"{name}: {net} has batch norm, so evaluating it needs its running statistics: "
                         f"pass {name}=stats (those fit returned, or fnann.init_stats(net)).")
    checks.check_stats(net, stats, name)
    return (stats,) if net.has_batch_norm else ()


def to_device(a) -> jax.Array:
    """``a`` as a jax array. A host array goes over with ``jax.device_put``: in JAX 0.10,
    ``jnp.asarray`` of a numpy array runs a small copy program, compiled (or looked up in the
    compilation cache) once per shape and dtype, which adds up at a command's start-up."""
    if isinstance(a, jax.Array):
        return a
    return jax.device_put(np.asarray(a))


def as_device(x, y, dtype):
    """x in the params' dtype, integer labels as int32, other targets in the params' dtype
    (``y`` may be None); host arrays are cast on the host, where a cast on the device would
    be one more small program to compile."""
    x = jnp.asarray(np.asarray(x, dtype) if isinstance(x, np.ndarray) else x, dtype)
    if y is None:
        return x, None
    if isinstance(y, np.ndarray):
        y = y.astype(np.int32 if np.issubdtype(y.dtype, np.integer) else dtype, copy=False)
    y = to_device(y)
    return x, (y.astype(jnp.int32) if jnp.issubdtype(y.dtype, jnp.integer) else y.astype(dtype))


def chunks(n: int, chunk: int):
    return [slice(i, min(i + chunk, n)) for i in range(0, n, chunk)]


def predict(net: MLP, params: Params, x, chunk_size: int = DEFAULT_CHUNK, *, mesh=None,
            data_axis: str = "data", stats=None) -> Array:
    """The network's output ŷ for ``x`` of shape ``(n, n_in)``, computed chunk by chunk.

    ``stats``: a batch-norm net's running statistics (required for one): every batch-norm
    layer computes Y = γ ⊙ (Z - μ_run) / √(σ²_run + ε) + β.

    With a ``mesh`` (a ``jax.sharding.Mesh``), each chunk's rows are sharded over its axis
    ``data_axis`` and the params replicated, as in ``fit``; under ``jax.distributed``, ``x``
    is this process's shard and the result is the global array.

    ``x`` with no rows gives an output with no rows, of shape ``(0, n_out)``.

    Raises:
      ValueError, TypeError: ``x``, ``params`` or ``stats`` do not fit ``net`` or hold NaN or
        inf; ``chunk_size`` is not an int >= 1.

    Example:
      >>> from fnann import MLP, init
      >>> net = MLP([3, 4, 2])
      >>> predict(net, init(jax.random.key(0), net), jnp.ones((10, 3)), chunk_size=4).shape
      (10, 2)
    """
    check_inputs(net, params, x)
    running = running_stats(net, stats)
    checks.integer(chunk_size, "chunk_size", 1)
    x, _ = as_device(x, None, params[0].W.dtype)
    if mesh is not None:
        mesh = parallel.check_mesh(mesh, data_axis)
        params, x = parallel.replicate(params, mesh), parallel.put_data(x, mesh, data_axis)
        running = parallel.replicate(running, mesh)
    out, _ = _chunk_fns(net, None, mesh, data_axis if mesh is not None else None)
    parts = [out(params, x[s], *running) for s in chunks(x.shape[0], chunk_size)]
    return jnp.concatenate(parts) if parts else jnp.zeros((0, net.n_out), x.dtype)


def evaluate(net: MLP, params: Params, x, y, loss: Loss | str,
             chunk_size: int = DEFAULT_CHUNK, *, mesh=None, data_axis: str = "data",
             stats=None) -> dict[str, float]:
    """Loss (batch mean over all of ``x``) and, for classifiers, accuracy, in chunks.

    ``mesh``, ``data_axis``, ``stats``: as for ``predict`` (under ``jax.distributed`` the
    metrics are those of all processes' data together).

    Returns:
      ``{"loss": float, "accuracy": float}`` (``accuracy`` only for classifiers).

    Raises:
      ValueError, TypeError: bad data (as for ``fit``: shapes, NaN/inf, no rows, targets
        out of range), an (output, loss) pair that cannot work, a bad ``chunk_size``.
    """
    loss = get_loss(loss)
    check_inputs(net, params, x)
    running = running_stats(net, stats)
    check_head(net, loss)
    check_has_rows(x, needed_by="evaluate")
    check_targets(net, loss, x, y)
    checks.integer(chunk_size, "chunk_size", 1)
    x, y = as_device(x, y, params[0].W.dtype)
    if mesh is not None:
        mesh = parallel.check_mesh(mesh, data_axis)
        params, running = parallel.replicate((params, running), mesh)
        x, y = parallel.put_data(x, mesh, data_axis), parallel.put_data(y, mesh, data_axis, "y")
    return evaluate_chunks(net, loss, params, x, y, chunk_size, mesh=mesh, data_axis=data_axis,
                           stats=_first(running))


def evaluate_chunks(net: MLP, loss: Loss, params: Params, x: Array, y: Array,
                    chunk_size: int = DEFAULT_CHUNK, *, mesh=None,
                    data_axis: str = "data", stats=None) -> dict[str, float]:
    """``evaluate`` without the input checks, for data already checked (``fit``'s epochs)
    and already placed on ``mesh`` (when given); ``stats``: a batch-norm net's running ones."""
    _, totals = _chunk_fns(net, loss, mesh, data_axis if mesh is not None else None)
    running = () if stats is None else (stats,)
    n = x.shape[0]
    total, correct = 0.0, 0.0
    for s in chunks(n, chunk_size):
        t, c = totals(params, x[s], y[s], *running)
        total, correct = total + float(t), correct + float(c)
    result = {"loss": total / n}
    if accuracy_metric(net) is not None:
        result["accuracy"] = correct / n
    return result


def accuracy(net: MLP, params: Params, x, y, chunk_size: int = DEFAULT_CHUNK, *, stats=None) -> float:
    """Fraction of correctly classified examples (argmax for softmax, 0.5 for sigmoid).
    ``stats``: a batch-norm net's running statistics, as for ``predict``.

    Raises:
      ValueError: for a network without a softmax or sigmoid output (a regressor), or
        targets that do not fit it.
    """
    check_inputs(net, params, x)
    running_stats(net, stats)
    metric = accuracy_metric(net)
    if metric is None:
        raise ValueError(
            f"accuracy needs a classifier (softmax or sigmoid output); this net's output is "
            f"{net.output.name!r}. Use evaluate(..., loss) for regression.")
    check_has_rows(x, needed_by="accuracy")
    check_target_shape(net, x, y, labels=net.output.head == "categorical")
    checks.integer(chunk_size, "chunk_size", 1)
    y_hat = predict(net, params, x, chunk_size, stats=stats)
    return float(metric(y_hat, jnp.asarray(y))) / jnp.shape(x)[0]


def compile_inference(net: MLP, params: Params, x, y=None, loss: Loss | str | None = None,
                      chunk_size: int = DEFAULT_CHUNK, *, predicting: bool = True, stats=None) -> None:
    """Compiles, without running them, the programs ``predict(net, params, x)`` runs (unless
    ``predicting=False``) and, given ``y`` and ``loss``, those of ``evaluate(net, params, x,
    y, loss)``: one of each per chunk shape.

    A later call with arrays of the same shapes and dtypes finds them compiled. XLA compiles
    without holding Python's GIL, so start-up code can call this on a thread while it does
    other work (``fnann train`` compiles the test-set programs while it trains). ``params``
    may be ``jax.ShapeDtypeStruct`` leaves (their shapes and dtypes), as for ``compile_fit``;
    so may ``stats``, a batch-norm net's running statistics (required for one).
    """
    check_inputs(net, params, x, shapes=True)
    running = running_stats(net, stats)
    checks.integer(chunk_size, "chunk_size", 1)
    evaluating = y is not None and loss is not None
    loss = get_loss(loss) if evaluating else None
    x, y = as_device(x, y if evaluating else None, params[0].W.dtype)
    out, _ = _chunk_fns(net, None, None, None)  # the cache keys predict and evaluate use
    totals = _chunk_fns(net, loss, None, None)[1] if evaluating else None
    shapes = {s.stop - s.start: s for s in chunks(x.shape[0], chunk_size)}
    for s in shapes.values():
        if predicting:
            out.lower(params, x[s], *running).compile()
        if totals is not None:
            totals.lower(params, x[s], y[s], *running).compile()
