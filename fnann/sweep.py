"""Many models in one compiled program: seed and hyperparameter sweeps with ``jax.vmap``.

``fit_many`` trains K networks of the same shape on the same data at once. The epoch of
``fit`` (a ``lax.scan`` over the shuffled batches, then the n mod b rest) is vmapped over a
leading model axis, so the K models run in one XLA program, one compilation and one
dispatch per epoch. Each model has its own initial params, its own shuffle (epoch e of
model k uses ``epoch_order(key[k], e, n)``, as ``fit`` does with ``key[k]``) and its own
optimizer hyperparameters: ``opt`` is then a factory such as ``fnann.adam`` and
``hyperparams`` maps its keyword names to K values, e.g. ``{"lr": [1e-3, 3e-3, 1e-2]}``.
The factory is called inside the vmapped function with traced scalars (the way optax's
``inject_hyperparams`` works); the optimizers check a traced hyperparameter's type only,
so ``fit_many`` first calls the factory with every model's concrete values on the host,
where their full validation runs. Model k ends with the params of
``fit(net, loss, opt(**hyperparams[k]), params[k], x, y, key=key[k], ...)``.

A model that diverges by `fit`'s rule (loss or params not finite, or the loss past 1e6 times
its first epoch's) is frozen at its last good params (its
history ends there, ``diverged[k]`` records the epoch) while the others train on.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from fnann import checks, parallel
from fnann.backprop import check_loss_and_grad
from fnann.caches import compiled_cache
from fnann.checks import check_inputs, check_training
from fnann.inference import _chunk_fns, accuracy_metric, as_device, chunks
from fnann.losses import Loss, get_loss
from fnann.mlp import MLP, Params
from fnann.optim import Optimizer, as_optimizer
from fnann.optim.loss_scale import with_loss_scaling
from fnann.train import (DIVERGENCE_FACTOR, TrainingDivergedError, dropout_epoch_key, epoch_function,
                         permutation, check_optimizer, reference_loss, start_stats, state_step, update_step)

Array = jax.Array


class FitManyResult(NamedTuple):
    """What ``fit_many`` returns.

    Attributes:
      params: the K models' params, stacked: every leaf has a leading axis of size K.
      histories: one ``fit``-style history (a dict of per-epoch lists) per model.
      best: index of the model with the best ``monitor`` value after the last epoch
        (lowest loss, highest accuracy; diverged models never count); ``None`` if no
        epoch ran.
      opt_state: the K optimizer states, stacked (to continue with ``opt_state=``).
      diverged: per model, the epoch in which it diverged, or ``None``.
      stats: a batch-norm net's K running statistics, stacked like ``params``; ``()`` for
        other nets.
    """

    params: Params
    histories: list
    best: int | None
    opt_state: Any
    diverged: tuple
    stats: Any = ()

    def model(self, k: int) -> Params:
        """The params of model ``k`` alone (no model axis)."""
        return jax.tree.map(lambda a: a[k], self.params)


def _keys(key) -> tuple[np.ndarray, Any, int | None]:
    """The key(s) as raw bits ``(K, m)`` or ``(m,)``, their PRNG implementation (``None``:
    the default), and K (``None`` for a single key, to be broadcast)."""
    given, impl = key, None
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        impl, key = jax.random.key_impl(key), jax.random.key_data(key)
    key = np.asarray(key) if isinstance(key, (jax.Array, np.ndarray)) else None
    if key is None or key.dtype != np.uint32 or key.ndim not in (1, 2):
        raise TypeError(f"key must be a jax.random key or an array of K keys; got {given!r}.")
    return key, impl, (key.shape[0] if key.ndim == 2 else None)


@compiled_cache(maxsize=32)
def _fold_all(n_keys: int, impl) -> Callable[[Array, Any], Array]:
    """``fold(bits, epoch)``: the bits of ``fold_in(key[k], epoch)`` for each of ``n_keys``
    models, in one dispatch (one program per number of models and key implementation)."""
    def fold(bits: Array, epoch) -> Array:
        keys = jax.random.wrap_key_data(bits, impl=impl)
        return jax.random.key_data(jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, epoch))

    return jax.jit(fold)


@compiled_cache(maxsize=32)
def _dropout_keys_all(n_keys: int, impl) -> Callable[[Array, Any], Array]:
    """``keys(bits, epoch)``: the bits of ``fnann.train.dropout_epoch_key(key[k], epoch)`` for
    each of ``n_keys`` models (dropout; model k's masks are those of ``fit`` with ``key[k]``)."""
    def keys(bits: Array, epoch) -> Array:
        k = jax.random.wrap_key_data(bits, impl=impl)
        return jax.random.key_data(jax.vmap(dropout_epoch_key, in_axes=(0, None))(k, epoch))

    return jax.jit(keys)


def _hyperparams(hyperparams) -> tuple[tuple[str, ...], tuple[np.ndarray, ...], int | None]:
    if hyperparams is None:
        return (), (), None
    if not isinstance(hyperparams, Mapping) or not hyperparams:
        raise TypeError("hyperparams must be a non-empty dict {name: K values}, e.g. "
                        "{'lr': [1e-3, 1e-2]}.")
    names = tuple(sorted(hyperparams))
    values = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"hyperparams keys must be keyword names (str); got {name!r}.")
        v = np.asarray(hyperparams[name])
        if v.ndim != 1 or not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
            raise ValueError(f"hyperparams[{name!r}] must be a 1-D array of K real numbers; got "
                             f"shape {v.shape} dtype {v.dtype}.")
        values.append(v.astype(np.float64))
    sizes = {len(v) for v in values}
    if len(sizes) != 1:
        raise ValueError(f"hyperparams arrays must all have K entries; got lengths "
                         f"{dict(zip(names, map(len, values)))}.")
    return names, tuple(values), sizes.pop()


def _optimizer(opt, names: tuple[str, ...], values, compute_dtype: str | None = None) -> Optimizer:
    """Model k's optimizer, ``opt(**hyperparams_k)`` (or ``opt``), loss-scaled for float16 as ``fit`` does."""
    return with_loss_scaling(as_optimizer(opt(**dict(zip(names, values))) if names else opt), compute_dtype)


def _check_optimizers(opt, names, values, K: int, first_step: int, n_steps: int) -> None:
    """Builds every model's optimizer from concrete values: their own checks run here, and
    ``fit``'s (``fnann.train.check_optimizer``: it descends, its schedules stay finite and >= 0
    over the steps this call runs)."""
    if not names:
        check_optimizer(as_optimizer(opt), first_step, n_steps)  # fnann's, or any optax-protocol one
        return
    if isinstance(opt, Optimizer) or not callable(opt):
        raise TypeError("with hyperparams, opt must be a factory called as opt(**hyperparams) "
                        f"(e.g. fnann.adam or lambda lr, gamma: ...); got {type(opt).__name__}.")
    for k in range(K):
        given = {n: float(v[k]) for n, v in zip(names, values)}
        try:
            built = opt(**given)
        except (TypeError, ValueError) as e:
            raise type(e)(f"hyperparams of model {k} {given}: {e}") from e
        check_optimizer(as_optimizer(built, "opt(**hyperparams)"), first_step, n_steps, f"model {k}'s opt")


def _stacked(tree, K: int, stacked: bool):
    """K copies of one set of params (a host copy: no compiling per leaf shape)."""
    return tree if stacked else jax.tree.map(lambda a: np.broadcast_to(a, (K, *np.shape(a))), tree)


def _model_count(counts: dict) -> int:
    given = {name: k for name, k in counts.items() if k is not None}
    if len(set(given.values())) > 1:
        raise ValueError(f"the model axis sizes K disagree: {given}.")
    if not given:
        raise ValueError("fit_many needs K models: pass stacked params (leading axis K), K keys "
                         "or hyperparams with K values each.")
    return given.popitem()[1]


@compiled_cache(maxsize=32)
def compiled_many(net: MLP, loss: Loss, opt, names: tuple[str, ...], method: str,
                  batch_size: int | None, mesh: Mesh | None, model_axis: str | None,
                  data_axis: str | None, shared_order: bool = False, compute_dtype: str | None = None,
                  dropout_impl: Any = None):
    """The jitted, vmapped epoch of K models (cached: one compilation per configuration).

    ``run(params, opt_state, orders, hyper, active, limit, x, y) -> (params, opt_state,
    losses, ok)``, every argument but ``x, y`` with a leading model axis (``orders`` too,
    unless ``shared_order``: one order for all models, whose batches are then shared, so
    that ``jax.vmap`` makes the first layer's products one matrix product over all K
    models, rather than K small ones); a model that is not
    ``active``, or whose epoch diverged (loss or params not finite, or the loss above its
    ``limit``: ``fit``'s rule, see ``fnann.train.divergence``) keeps the params and
    state it came with. A net with dropout takes one more argument, each model's epoch
    dropout key as raw bits (``dropout_epoch_key``, of the key implementation ``dropout_impl``).
    A batch-norm net's models carry their running statistics: ``run(..., stats=stats) -> (params,
    opt_state, losses, ok, stats)``, ``stats`` stacked (a keyword: vmapped over its leading axis).
    """

    def one(params, opt_state, order, hyper, active, limit, x, y, *dkey, **running):
        step = update_step(net, loss, _optimizer(opt, names, hyper, compute_dtype), method, compute_dtype)
        shuffled = lambda a: a
        if data_axis is not None:
            step, shuffled = parallel.sharded_step(step, mesh, data_axis), parallel.replicated_rows(mesh)
        key = (jax.random.wrap_key_data(dkey[0], impl=dropout_impl),) if dkey else ()
        new = epoch_function(step, batch_size, shuffled)(params, opt_state, order, x, y, *key, **running)
        ok = new[3] & (new[2] <= limit)
        keep = active & ok
        kept = jax.tree.map(lambda a, b: jnp.where(keep, a, b), (*new[:2], *new[4:]),
                            (params, opt_state, *running.values()))  # params, opt_state (, stats)
        return kept[0], kept[1], new[2], ok, *kept[2:]

    axes = (0, 0, None if shared_order else 0, 0, 0, 0, None, None) + ((0,) if net.has_dropout else ())
    return jax.jit(jax.vmap(one, in_axes=axes, spmd_axis_name=model_axis))


@compiled_cache(maxsize=32)
def _references_many(net: MLP, loss: Loss):
    """``fnann.train.reference_loss`` of each of K stacked models, in one program."""
    return jax.jit(jax.vmap(lambda p, x, y: reference_loss(net, loss, p, x, y), in_axes=(0, None, None)))


@compiled_cache(maxsize=32)
def _stats_many(net: MLP, loss: Loss, mesh, data_axis):
    _, totals = _chunk_fns(net, loss, mesh, data_axis)  # batch norm: each model's running stats too
    return jax.jit(jax.vmap(totals, in_axes=(0, None, None) + ((0,) if net.has_batch_norm else ())))


def _evaluate_many(net, loss, params, x, y, mesh, data_axis, running=()) -> Callable[[], dict]:
    """Per-model validation loss and accuracy, as ``fnann.evaluate`` computes them: dispatched
    now, returned as a function that waits for them (so that the host works meanwhile).
    ``running``: ``(stats,)``, the models' stacked running statistics (batch norm), else ``()``."""
    totals = _stats_many(net, loss, mesh, data_axis)
    pending = [totals(params, x[s], y[s], *running) for s in chunks(x.shape[0], 8192)]
    return lambda: _collect(net, pending, x.shape[0])


def _collect(net, pending, n) -> dict[str, np.ndarray]:
    total = correct = 0.0
    for t, c in pending:
        total, correct = total + np.asarray(t, np.float64), correct + np.asarray(c, np.float64)
    out = {"val_loss": total / n}
    if accuracy_metric(net) is not None:
        out["val_accuracy"] = correct / n
    return out


def _place(mesh, model_axis, data_axis, K, stacked, shared):
    """Places the per-model arrays and the shared data; returns them and ``put``, which
    places a new per-model array (each epoch's orders) like the others."""
    if mesh is None:
        return stacked, shared, jnp.asarray  # uncommitted, as fit's arrays: no recompiling
    if model_axis is None and data_axis is None:
        raise ValueError("with a mesh, name model_axis (to split the K models over devices) "
                         "and/or data_axis (to split every batch's rows).")
    if model_axis is not None and model_axis == data_axis:
        raise ValueError(f"model_axis and data_axis must be different mesh axes; got {model_axis!r}.")
    if parallel.spans_processes(mesh):
        raise ValueError("fit_many runs on one process: its mesh cannot span several processes "
                         "(use fit(..., mesh=...) for multi-process data parallelism).")
    if model_axis is not None:
        parallel.check_divisible(K, mesh, model_axis, "the number of models K")
    put = functools.partial(jax.device_put, device=NamedSharding(mesh, P(model_axis)))
    return put(stacked), parallel.replicate(shared, mesh), put


def fit_many(net: MLP, loss: Loss | str, opt: Optimizer | Callable[..., Optimizer], params: Params,
             x, y, *, key, epochs: int, batch_size: int | None = 32, method: str = "manual",
             hyperparams: Mapping[str, Any] | None = None, validation_data: tuple | None = None,
             monitor: str | None = None, opt_state: Any = None, initial_epoch: int = 0,
             mesh: Mesh | None = None, model_axis: str | None = None,
             data_axis: str | None = None, compute_dtype=None, stats=None) -> FitManyResult:
    """Trains K models of one shape on the same data in one compiled program (``jax.vmap``).

    Math: for every model k, per batch B of its own shuffle,
    θ_k <- opt_k(θ_k, (1/|B|) Σ_{i∈B} ∇_θ L_i), exactly as ``fit`` trains one model.

    Args:
      net, loss: the network and the loss (or its name), shared by all models.
      opt: an ``Optimizer`` shared by all models or, with ``hyperparams``, a factory called
        as ``opt(**{name: value_k})`` (``fnann.adam``, ``fnann.momentum``, or e.g.
        ``lambda lr, weight_decay: chain(add_decayed_weights(weight_decay), sgd(lr))``).
      params: one set of params (every model starts from it) or K sets stacked along a
        leading axis, e.g. ``jax.vmap(lambda k: fnann.init(k, net))(jax.random.split(key, K))``.
      x, y: training data shared by all models.
      key: one key (every model shuffles alike: the models then share their batches, and
        the first layer's products of all K models are one matrix product) or K keys
        (``jax.random.split(key, K)``).
      epochs, batch_size, method, validation_data, opt_state, initial_epoch, compute_dtype: as for ``fit``
        (``opt_state`` stacked, as ``FitManyResult.opt_state`` gives it).
      stats: a batch-norm net's running statistics: one set (every model starts from it) or K
        stacked, as ``FitManyResult.stats`` gives them; default ``init_stats(net)`` for each.
      hyperparams: ``{name: K values}`` for the keywords of ``opt``.
      monitor: ``"val_loss"`` (the default with validation data), ``"val_accuracy"`` or
        ``"loss"`` (the default without): how ``best`` is chosen.
      mesh: a ``jax.sharding.Mesh`` of this process's devices (several processes are not
        supported: a clear ValueError). ``model_axis`` splits the K models over its devices
        (K must be a multiple of its size; the models then train without communicating),
        ``data_axis`` splits every batch's rows as ``fit(mesh=...)`` does; name one or both.

    Returns:
      A :class:`FitManyResult` ``(params, histories, best, opt_state, diverged, stats)``; the
      best model's params are ``result.model(result.best)``.

    Raises:
      ValueError, TypeError: bad data, arguments, hyperparameters (each model's optimizer is
        built and checked on the host first), or mesh, before anything compiles.
      TrainingDivergedError: when every model has diverged.

    Example:
      >>> import fnann
      >>> net = fnann.MLP([2, 4, 2])
      >>> x, y = jnp.ones((6, 2)), jnp.array([0, 1, 1, 0, 1, 0])
      >>> params = fnann.init(jax.random.key(0), net)
      >>> result = fit_many(net, "cross_entropy", fnann.sgd, params, x, y, key=jax.random.key(1),
      ...                   epochs=2, batch_size=3, hyperparams={"lr": [0.01, 0.1, 1.0]})
      >>> result.params[0].W.shape, len(result.histories), result.model(result.best)[0].W.shape
      ((3, 4, 2), 3, (4, 2))
    """
    loss = get_loss(loss)
    names, values, k_hyper = _hyperparams(hyperparams)
    stacked = isinstance(params, (tuple, list)) and bool(params) and jnp.ndim(
        getattr(params[0], "W", 0)) == 3
    one_params = jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a)[1:], jnp.result_type(a)),
                              params) if stacked else params
    check_inputs(net, one_params, x, shapes=stacked)  # a stack is checked by one model's shapes
    checks.check_params_finite(params)
    stats, stats_stacked = _check_stats(net, stats, stacked, one_params[0].W.dtype)
    check_loss_and_grad(net, loss, method)
    keys, impl, k_keys = _keys(key)
    K = _model_count({"params": params[0].W.shape[0] if stacked else None, "key": k_keys,
                      "hyperparams": k_hyper, "stats": stats[0].mean.shape[0] if stats_stacked else None})
    monitor = monitor or ("val_loss" if validation_data is not None else "loss")
    check_training(net, loss, x, y, epochs=epochs, initial_epoch=initial_epoch,
                   batch_size=batch_size, validation_data=validation_data, monitor=monitor,
                   monitored=True)
    n_rows = jnp.shape(x)[0]
    steps_per_epoch = 1 if batch_size is None else -(-n_rows // batch_size)
    _check_optimizers(opt, names, values, K, state_step(opt_state), epochs * steps_per_epoch)
    if mesh is None:
        model_axis = data_axis = None
    else:
        mesh = parallel.check_mesh(mesh, model_axis, "model_axis")
        parallel.check_mesh(mesh, data_axis, "data_axis")

    dtype = one_params[0].W.dtype
    compute_dtype = checks.check_compute_dtype(compute_dtype, dtype)
    x, y = as_device(x, y, dtype)
    val = None if validation_data is None else as_device(*validation_data, dtype)
    params = _stacked(params, K, stacked)
    stats = _stacked(stats, K, stats_stacked)
    keys = keys if k_keys is not None else np.broadcast_to(keys, (K, *keys.shape))
    hyper = tuple(np.asarray(v, jnp.promote_types(dtype, jnp.float32)) for v in values)
    init_all = jax.vmap(lambda p, h: _optimizer(opt, names, h, compute_dtype).init(p))
    if opt_state is None:
        opt_state = init_all(params, hyper)
    elif not _same_shapes(opt_state, jax.eval_shape(init_all, params, hyper)):
        raise ValueError("opt_state must be the stacked state of the K optimizers, as "
                         "FitManyResult.opt_state returns it.")
    active = np.ones((K,), bool)
    (params, opt_state, hyper, active, stats), (x, y, val), put = _place(
        mesh, model_axis, data_axis, K, (params, opt_state, hyper, active, stats), (x, y, val))
    running = (lambda: {"stats": stats}) if net.has_batch_norm else dict  # the epoch's stats= argument
    shared = k_keys is None  # one key: every model shuffles alike, with shared batches
    run = compiled_many(net, loss, opt, names, method, batch_size, mesh, model_axis, data_axis,
                        shared, compute_dtype, impl if net.has_dropout else None)
    n = x.shape[0]

    def drop_keys(epoch):  # model k: fnann.train.dropout_epoch_key(key[k], epoch), as fit draws it
        if not net.has_dropout:
            return ()
        return (put(np.asarray(_dropout_keys_all(K, impl)(jnp.asarray(keys), epoch))),)

    def orders(epoch):  # model k: epoch_order(key[k], epoch, n)
        folded = keys[:1] if shared else keys
        bits = np.asarray(_fold_all(len(folded), impl)(folded, epoch))
        if shared:
            order = permutation(bits[0], n)
            return jnp.asarray(order) if mesh is None else parallel.replicate(order, mesh)
        return put(np.stack([permutation(b, n) for b in bits]))

    histories = [{"epoch": [], "loss": []} for _ in range(K)]
    if val is not None:
        for h in histories:
            h.update({name: [] for name in _evaluate_many_names(net)})
    diverged: list[int | None] = [None] * K
    references = np.asarray(_references_many(net, loss)(params, x, y), np.float64)  # fit's bound, per model
    limit = np.where(np.isfinite(references) & (references > 0), DIVERGENCE_FACTOR * references,
                     np.inf).astype(np.float32)
    end = initial_epoch + epochs
    order = orders(initial_epoch) if epochs else None
    for epoch in range(initial_epoch, end):
        params, opt_state, losses, finite, *new_stats = run(
            params, opt_state, order, hyper, active, put(limit), x, y, *drop_keys(epoch), **running())
        stats = new_stats[0] if new_stats else stats
        metrics = (_evaluate_many(net, loss, params, *val, mesh, data_axis, tuple(new_stats))
                   if val is not None else dict)  # dispatched: the next epoch's shuffle is drawn while they run
        order = orders(epoch + 1) if epoch + 1 < end else None
        losses, finite, was_active = np.asarray(losses), np.asarray(finite), np.asarray(active)
        metrics = metrics()
        for k in np.flatnonzero(was_active):
            if not finite[k]:
                diverged[k] = epoch
                continue
            histories[k]["epoch"].append(epoch)
            histories[k]["loss"].append(float(losses[k]))
            for name, v in metrics.items():
                histories[k][name].append(float(v[k]))
        now_active = was_active & finite
        if not now_active.any():
            raise TrainingDivergedError(
                f"all {K} models diverged (the last in epoch {epoch}): the loss or the parameters "
                f"became NaN or inf, or the loss grew past {DIVERGENCE_FACTOR:g} times its reference "
                "(fnann.train.reference_loss). The last finite parameters are kept on this error as "
                ".params (stacked); try smaller learning rates.", epoch, params, opt_state,
                histories, stats=stats)
        if not now_active.all():
            active = put(now_active)
    return FitManyResult(params, histories, _best(histories, diverged, monitor), opt_state,
                         tuple(diverged), stats)


def _check_stats(net: MLP, stats, stacked: bool, dtype) -> tuple[Any, bool]:
    """The models' starting running statistics and whether they are stacked: ``stats`` (one
    set, or K stacked when the params are) checked as one model's, or ``init_stats(net, dtype)``
    (batch norm); ``()`` for other nets."""
    if net.has_batch_norm and stats is not None and stacked and _is_stacked(stats):
        checks.check_stats(net, stats, stacked=True)
        return tuple(stats), True
    return start_stats(net, stats, dtype), False


def _is_stacked(stats) -> bool:
    return isinstance(stats, (tuple, list)) and bool(stats) and jnp.ndim(getattr(stats[0], "mean", 0)) == 2


def _same_shapes(tree, want) -> bool:
    return jax.tree.structure(tree) == jax.tree.structure(want) and all(
        jnp.shape(a) == b.shape for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(want)))


def _evaluate_many_names(net: MLP) -> tuple[str, ...]:
    return ("val_loss", "val_accuracy") if accuracy_metric(net) is not None else ("val_loss",)


def _best(histories, diverged, monitor: str) -> int | None:
    sign = -1.0 if monitor == "val_accuracy" else 1.0
    scores = [sign * h[monitor][-1] if h[monitor] and d is None else math.inf
              for h, d in zip(histories, diverged)]
    finite = [s for s in scores if math.isfinite(s)]
    return int(np.argmin(scores)) if finite else None
