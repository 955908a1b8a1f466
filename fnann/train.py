"""Training: one fused step, epochs compiled with ``lax.scan``, and ``fit``.

``train_step`` builds the pure step ``(params, opt_state, x, y) -> (params, opt_state,
loss)``: forward, backward (hand-derived or autodiff) and the optimizer update, which
``jax.jit`` compiles into one XLA program.

``fit`` runs gradient descent by epochs. Each epoch draws a fresh permutation from
``jax.random.fold_in(key, epoch)`` (``epoch_order``) and runs as one compiled function: a ``lax.scan``
over the ``n // b`` full batches, then one step on the last ``n mod b`` examples, whose
gradient is the mean over those examples alone (no example is dropped, no batch is
padded, no batch is larger than ``batch_size``). ``batch_size=1`` is stochastic gradient
descent, ``None`` the full batch. The epoch function is cached, so neither a new epoch
nor a new ``fit`` call with the same shapes compiles again. Because epoch ``e`` always
uses ``fold_in(key, e)``, training N epochs, then M more from ``initial_epoch=N``, gives
bit-identical params to N + M epochs in one go.

Dropout (``MLP(dropout=...)``): step i of epoch e draws its masks from
``dropout_key(key, e, i)`` = fold_in(fold_in(fold_in(key, DROPOUT_STREAM), e), i), a stream
apart from the shuffle's fold_in(key, e), so the same key gives the same run bit for bit and
resuming stays exact.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from fnann import checks, parallel
from fnann.backprop import check_batch, check_loss_and_grad, loss_value, value_grad_and_norms
from fnann.caches import compiled_cache
from fnann.inference import accuracy_metric, as_device, compile_inference, evaluate_chunks, to_device
from fnann.losses import Loss, constant_loss, get_loss
from fnann.mlp import MLP, Params, feedforward, init_stats
from fnann.norms import update_running
from fnann.optim import Optimizer, apply_updates, as_optimizer, descends
from fnann.optim.loss_scale import LossScaleState, LossScaling, all_finite, state_for, with_loss_scaling

Array = jax.Array


class TrainState(NamedTuple):
    """Everything needed to continue training: pass it back to ``fit`` or to ``save``.

    Attributes:
      params: the parameters.
      opt_state: the optimizer state.
      epoch: epochs completed so far (the next epoch's index).
      key: the ``key`` given to ``fit``; epoch ``e`` shuffles with ``fold_in(key, e)``.
      stats: a batch-norm net's running statistics (``init_stats``); ``()`` for other nets.
    """

    params: Params
    opt_state: Any
    epoch: int
    key: Array
    stats: Any = ()


class TrainingDivergedError(FloatingPointError):
    """Raised by ``fit`` when training diverges: the loss or the parameters stop being finite,
    or the loss exceeds ``DIVERGENCE_FACTOR`` (1e6) times the reference loss (``reference_loss``).
    The message says which.

    Attributes:
      epoch: the epoch (counted from 0) in which it happened.
      params: the last finite parameters (those at the start of that epoch).
      opt_state: the optimizer state that went with them.
      history: the history up to the last finite epoch.
      cause: what diverged ("the loss grew to 5e+14, more than ..."), or None.
      stats: the running statistics that went with ``params`` (batch norm), else ``()``.
    """

    def __init__(self, message: str, epoch: int, params: Params, opt_state: Any, history: dict,
                 cause: str | None = None, stats: Any = ()):
        super().__init__(message)
        self.epoch, self.params, self.opt_state, self.history = epoch, params, opt_state, history
        self.cause = cause  # what diverged (``divergence``'s words), where one cause is known
        self.stats = stats


def train_step(net: MLP, loss: Loss | str, opt: Optimizer, method: str = "manual", compute_dtype=None):
    """Builds one pure training step, closed over the static configuration.

    Math: L, g = L(θ; x, y), ∂L/∂θ;  (u, s) = opt.update(g, s, θ);  θ <- θ + u.

    Args:
      net: the network.
      loss: a ``Loss`` or its name.
      opt: an ``fnann.optim.Optimizer``, or any object with optax's ``init``/``update``.
      method: ``"manual"`` (hand-derived backward) or ``"autodiff"``.
      compute_dtype: ``"bfloat16"`` or ``"float16"`` for mixed precision: the params and
        optimizer state keep their dtype (float32 master weights), the forward and backward
        passes run in the compute dtype, the loss and δ^(L) in float32 (see
        ``fnann.backprop.value_and_grad``). float16 needs ``opt = fnann.loss_scaling(opt)``
        (dynamic loss scaling, ``fnann.optim.loss_scale``): a step whose gradient overflows
        leaves the params and inner state as they were.

    Returns:
      ``step(params, opt_state, x, y, key=None) -> (params, opt_state, loss_value)``, where
      ``loss_value`` is the loss at the params that went in. Jit it once and call it many
      times; its buffers can be donated: ``jax.jit(step, donate_argnums=(0, 1))``.
      ``key``: a net with dropout needs one per step (a traced argument: a new key does
      not compile again); the masks are ``dropout_masks(net, key, batch)`` and both
      methods use them. Ignored by a net without dropout.
      A net with batch norm carries its running statistics through the step:
      ``step(params, opt_state, x, y, key=None, stats=stats) -> (params, opt_state, loss_value,
      stats)``, the batch normalized by its own statistics (two rows or more) and the running
      ones updated from them (``fnann.norms.update_running``; ``init_stats(net)`` to start).

    Example:
      >>> from fnann import MLP, init, optim
      >>> net = MLP([2, 4, 2])
      >>> opt = optim.sgd(0.1)
      >>> step = jax.jit(train_step(net, "cross_entropy", opt))
      >>> params = init(jax.random.key(0), net)
      >>> params, state, value = step(params, opt.init(params), jnp.ones((3, 2)), jnp.array([0, 1, 1]))
    """
    opt = as_optimizer(opt)
    loss = check_loss_and_grad(net, loss, method)
    check_optimizer(opt)
    checks.check_compute_dtype(compute_dtype)

    def checked(params: Params, opt_state, x, y, key=None, stats=None):
        check_batch(net, loss, params, x, y)
        checks.check_norm_rows(net, x)
        if net.has_batch_norm and stats is None:
            raise ValueError(f"{net} has batch norm: its training step carries the running statistics, "
                             "step(params, opt_state, x, y, key, stats=stats) -> (params, opt_state, loss, "
                             "stats); start from fnann.init_stats(net).")
        checks.check_stats(net, stats)
        if net.has_dropout:
            if key is None:
                raise ValueError(f"{net} has dropout: its training step needs a key, "
                                 "step(params, opt_state, x, y, key), one per step (e.g. "
                                 "jax.random.fold_in(key, step_number)).")
            checks.check_key(key)
        else:
            key = None  # no masks to draw: the step is the textbook one
        checks.check_opt_state(opt, opt_state, params)  # static: once per trace
        wanted = checks.check_compute_dtype(compute_dtype, params[0].W.dtype)
        if wanted == "float16" and not isinstance(opt, LossScaling):
            raise ValueError("compute_dtype='float16' needs dynamic loss scaling: pass opt=fnann.loss_scaling(opt) "
                             "(and its init's state), or use compute_dtype='bfloat16'.")
        return update_step(net, loss, opt, method, wanted)(params, opt_state, x, y, key, stats)

    return checked


def update_step(net: MLP, loss: Loss, opt: Optimizer, method: str = "manual", compute_dtype: str | None = None):
    """The step of :func:`train_step`, unchecked (``fit`` checks its data once, before epoch 0).

    Math: L, g = L(θ; x, y), ∂L/∂θ;  (u, s) = opt.update(g, s, θ);  θ <- θ + u
          (g in the params' dtype; with ``compute_dtype``, computed from cast(θ), cast(x)).
    With a loss-scaled state (``LossScaleState``, float16): g_S = ∂(S·L)/∂θ for the state's S,
    (u, s) = opt.update(g_S, s, θ), and θ is kept, bit for bit, when g_S is not finite.
    ``step(params, opt_state, x, y, key=None)``: ``key`` draws the dropout masks (ignored
    without dropout).
    """
    loss_and_grads = value_grad_and_norms(net, loss, method, compute_dtype)

    def step(params: Params, opt_state, x, y, key=None, stats=None):
        if isinstance(opt_state, LossScaleState):
            return scaled_step(params, opt_state, x, y, key, stats)
        value, grads, norms = loss_and_grads(params, x, y, None, key)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (apply_updates(params, updates), opt_state, value, *running(stats, norms))

    def scaled_step(params: Params, opt_state: LossScaleState, x, y, key=None, stats=None):
        value, scaled_grads, norms = loss_and_grads(params, x, y, opt_state.scale, key)  # g_S = ∂(S·L)/∂θ
        updates, opt_state = opt.update(scaled_grads, opt_state, params)  # g = g_S / S; skip if not finite
        finite = all_finite(scaled_grads)
        new = apply_updates(params, updates)
        keep = lambda old, new: jax.tree.map(lambda p, q: jnp.where(finite, q, p), old, new)  # noqa: E731
        kept = keep(params, new)
        if not net.has_batch_norm:
            return kept, opt_state, value
        return kept, opt_state, value, keep(stats, running(stats, norms)[0])  # a skipped step keeps the stats too

    def running(stats, norms) -> tuple:
        """``(stats',)`` updated from the step's batch statistics (batch norm), else ``()``."""
        if not net.has_batch_norm:
            return ()
        return (tuple(update_running(net.norms[l - 1], s, t)
                      for l, s, t in zip(net.batch_norm_layers, stats, norms)),)

    return step


DROPOUT_STREAM = 0xFFFFFFFF
"""``fit``'s dropout keys fold this into its key first; the shuffle folds in the epoch, 0 <= e < 2^32 - 1."""


def dropout_key(key: Array, epoch, step) -> Array:
    """The key of step ``step`` (0-based, within the epoch) of epoch ``epoch`` in ``fit``.

    Math: k_(e,i) = fold_in(fold_in(fold_in(key, DROPOUT_STREAM), e), i): a function of the
    key, the epoch and the step only (resume is exact), apart from the shuffle's fold_in(key, e).
    """
    return jax.random.fold_in(dropout_epoch_key(key, epoch), step)


@jax.jit
def dropout_epoch_key(key: Array, epoch) -> Array:
    """fold_in(fold_in(key, DROPOUT_STREAM), epoch): the epoch's dropout key, from which step i
    folds in i (inside the compiled epoch); one small program for every epoch."""
    return jax.random.fold_in(jax.random.fold_in(key, DROPOUT_STREAM), epoch)


def epoch_order(key: Array, epoch: int, n: int) -> Array:
    """The shuffled order of the examples in epoch ``epoch``: a permutation of ``range(n)``.

    It depends only on ``jax.random.fold_in(key, epoch)``, whose bits seed a numpy
    generator on the host: a uniform random permutation in microseconds, where sorting n
    random keys inside XLA costs milliseconds on a CPU (as much as a short epoch's steps).
    """
    return to_device(permutation(_folded_bits(key, epoch), n))


@jax.jit
def _folded_bits(key: Array, epoch) -> Array:
    """``key_data(fold_in(key, epoch))``: one small program, the same for every epoch."""
    k = jax.random.fold_in(key, epoch)
    return jax.random.key_data(k) if jnp.issubdtype(k.dtype, jax.dtypes.prng_key) else k


def permutation(k: Array, n: int) -> np.ndarray:
    """The permutation of ``range(n)`` that ``epoch_order`` draws for the folded key ``k``
    (one key), on the host; ``fit_many`` folds K keys at once and calls it per model."""
    bits = jax.random.key_data(k) if jnp.issubdtype(k.dtype, jax.dtypes.prng_key) else k
    rng = np.random.default_rng(np.asarray(bits, np.uint32).ravel().tolist())
    return rng.permutation(n).astype(np.int32)


@compiled_cache(maxsize=32)
def compiled_epoch(net: MLP, loss: Loss, opt: Optimizer, method: str, batch_size: int | None,
                   mesh: Mesh | None = None, data_axis: str = "data", compute_dtype: str | None = None):
    """The jitted function that runs one epoch; cached so that it compiles once per shape.

    ``epoch(params, opt_state, order, x, y, key=None) -> (params, opt_state, mean_batch_loss, finite)``,
    where ``order`` is the epoch's permutation of the examples (``epoch_order``) and ``key``
    the epoch's dropout key (``dropout_epoch_key``; nets with dropout). With a ``mesh``, every
    batch's rows are sharded over ``data_axis`` (``fnann.parallel``); the masks are drawn for
    the whole batch, so they do not depend on the sharding. A batch-norm net's epoch takes and
    returns its running statistics too (``epoch_function``): ``epoch(..., stats=stats) -> (...,
    finite, stats)``; on a mesh they are replicated like the params.
    """
    step = update_step(net, loss, opt, method, compute_dtype)
    if mesh is None:
        return jax.jit(epoch_function(step, batch_size))
    return jax.jit(epoch_function(parallel.sharded_step(step, mesh, data_axis), batch_size,
                                  parallel.replicated_rows(mesh)))


@compiled_cache(maxsize=32)
def compiled_start(net: MLP, loss: Loss, opt: Optimizer):
    """``start(params, x, y) -> (opt.init(params), reference_loss(...))`` as one program: what
    ``fit`` needs before its first step (the state built by one program, not one per leaf)."""
    return jax.jit(lambda params, x, y: (opt.init(params), reference_loss(net, loss, params, x, y)))


def reference_loss(net: MLP, loss: Loss, params: Params, x, y) -> Array:
    """The loss that bounds a sane run, known before its first step.

    Math: L_ref = max(L(θ_0; x, y), L(ȳ; y)): the loss at the params training starts from and
    that of the best constant prediction (``losses.constant_loss``). A run whose epoch loss
    exceeds ``DIVERGENCE_FACTOR`` · L_ref has diverged, even in its first epoch, when no
    earlier epoch could serve as the reference.
    """
    y_hat, trace = feedforward(net, params, x)
    return jnp.maximum(loss_value(net, loss, y_hat, trace, y), constant_loss(loss, y, net.n_out, y_hat.dtype))


def epoch_function(step: Callable, batch_size: int | None,
                   shuffled: Callable = lambda a: a) -> Callable:
    """One epoch of ``step`` over the shuffled data, not yet jitted (``fit_many`` vmaps it).

    ``epoch(params, opt_state, order, x, y, key=None) -> (params, opt_state, mean_batch_loss, finite)``:
    a ``lax.scan`` over the n // b full batches of ``x[order]``, then one step on the last
    n mod b rows. ``shuffled`` is applied to ``x[order]`` and ``y[order]`` (a sharding
    constraint on a mesh). ``key`` (dropout): step i gets ``fold_in(key, i)``.
    Batch norm: ``epoch(..., stats=stats) -> (params, opt_state, mean_batch_loss, finite, stats)``,
    the running statistics carried through the scan with the params (each step updates them:
    μ_run <- (1 - m) μ_run + m μ_B, σ²_run <- (1 - m) σ²_run + m n/(n - 1) σ²_B), and ``finite``
    covering them too.
    """

    def epoch(params, opt_state, order, x, y, key=None, stats=None):
        running = () if stats is None else (stats,)  # batch norm: carried with the params
        n = x.shape[0]
        b = n if batch_size is None else min(batch_size, n)
        n_full, rest = divmod(n, b)
        x, y = shuffled(x[order]), shuffled(y[order])  # one gather per epoch; contiguous batches

        def body(carry, batch):  # carry: (params, opt_state), and the running stats with batch norm
            params, opt_state, *carried = carry
            given = {"stats": carried[0]} if carried else {}
            if key is None:
                params, opt_state, value, *carried = step(params, opt_state, *batch, **given)
            else:  # batch = (x_i, y_i, i): the step's dropout key is fold_in(key, i)
                *xy, i = batch
                params, opt_state, value, *carried = step(params, opt_state, *xy, jax.random.fold_in(key, i),
                                                          **given)
            return (params, opt_state, *carried), value

        full = (x[: n_full * b].reshape(n_full, b, *x.shape[1:]),
                y[: n_full * b].reshape(n_full, b, *y.shape[1:]))
        if key is not None:
            full = (*full, jnp.arange(n_full, dtype=jnp.uint32))
        carry, values = jax.lax.scan(body, (params, opt_state, *running), full)
        if rest:  # the last n mod b examples: one more step, averaged over their own count
            last_batch = (x[n_full * b:], y[n_full * b:])
            if key is not None:
                last_batch = (*last_batch, jnp.uint32(n_full))
            carry, last = body(carry, last_batch)
            values = jnp.concatenate([values, last[None]])
        params, opt_state, *running = carry
        mean_loss = jnp.mean(values)
        return params, opt_state, mean_loss, jnp.isfinite(mean_loss) & all_finite((params, *running)), *running

    return epoch


def compile_fit(net: MLP, loss: Loss | str, opt: Optimizer, params: Params, x, y, *,
                batch_size: int | None = 32, method: str = "manual",
                validation_data: tuple | None = None, key: Array | None = None, compute_dtype=None,
                stats=None) -> None:
    """Compiles, without training, what ``fit`` runs for these arguments (no mesh): the
    optimizer's ``init``, the epoch, the validation pass and, given ``fit``'s ``key``, the
    epoch's shuffle. ``stats``: a batch-norm net's running statistics, as ``fit`` takes them
    (arrays or ``jax.ShapeDtypeStruct`` leaves; default ``init_stats(net)`` in the params' dtype).

    A later ``fit`` with the same net, loss, optimizer configuration, batch size and array
    shapes finds every program compiled. XLA compiles without holding Python's GIL, so
    start-up code can run this on a thread while it does other work: ``fnann train``
    compiles the epoch while it draws the params and checks the gradients.

    ``params`` (and ``key``) may be the arrays or only their shapes and dtypes, as
    ``jax.ShapeDtypeStruct`` leaves (``jax.eval_shape(lambda k: fnann.init(k, net), key)``),
    so compilation can start before the params exist.
    """
    loss, opt = check_loss_and_grad(net, loss, method), as_optimizer(opt)
    checks.check_net_params(net, params, shapes=True)
    checks.check_batch_size(batch_size)
    checks.check_data(net, loss, x, y)
    checks.check_norm_batches(net, jnp.shape(x)[0], batch_size)
    dtype = params[0].W.dtype
    compute_dtype = checks.check_compute_dtype(compute_dtype, dtype)
    opt = with_loss_scaling(opt, compute_dtype)  # as fit wraps it
    x, y = as_device(x, y, dtype)
    params = jax.tree.map(_on_device, params)
    stats = jax.tree.map(_on_device, start_stats(net, stats, dtype))
    running = {"stats": stats} if net.has_batch_norm else {}
    compiled_start(net, loss, opt).lower(params, x, y).compile()
    opt_state = jax.eval_shape(opt.init, params)
    order = to_device(np.arange(x.shape[0], dtype=np.int32))
    run_epoch = compiled_epoch(net, loss, opt, method, batch_size, None, "data", compute_dtype)  # fit's cache key
    if key is not None:
        checks.check_key(key)
    dropout = () if not net.has_dropout else (jax.eval_shape(
        dropout_epoch_key, key if key is not None else jax.random.key(0), 0),)
    run_epoch.lower(params, opt_state, order, x, y, *dropout, **running).compile()
    if validation_data is not None:
        compile_inference(net, params, validation_data[0], validation_data[1], loss, predicting=False,
                          **running)
    if key is not None:
        _folded_bits.lower(key, 0).compile()
        if net.has_dropout:
            dropout_epoch_key.lower(key, 0).compile()


def start_stats(net: MLP, stats, dtype, name: str = "stats"):
    """The checked running statistics training starts from: ``stats``, or for a batch-norm net
    ``init_stats(net, dtype)`` (μ_run = 0, σ²_run = 1); ``()`` for a net without batch norm."""
    if net.has_batch_norm and stats is None:
        return init_stats(net, dtype)
    checks.check_stats(net, stats, name)
    return tuple(stats) if net.has_batch_norm else ()


def _on_device(a):
    """A concrete array on the device; a ``jax.ShapeDtypeStruct`` as it is (for lowering)."""
    return a if isinstance(a, jax.ShapeDtypeStruct) else to_device(a)


def _check_patience(patience, min_delta) -> float:
    if patience is not None:
        checks.integer(patience, "patience")
    return checks.real(min_delta, "min_delta", low=0.0)


def fit(net: MLP, loss: Loss | str, opt: Optimizer, params: Params, x, y, *, key: Array,
        epochs: int, batch_size: int | None = 32, method: str = "manual",
        validation_data: tuple | None = None, opt_state: Any = None, initial_epoch: int = 0,
        patience: int | None = None, monitor: str = "val_loss", min_delta: float = 0.0,
        restore_best: bool = True, callback: Callable[[int, dict], Any] | None = None,
        verbose: bool = False, return_state: bool = False,
        params_callback: Callable[[int, Params, Any], Any] | None = None, mesh: Mesh | None = None,
        data_axis: str = "data", compute_dtype=None, stats=None):
    """Trains ``params`` by gradient descent over epochs; every epoch runs compiled.

    Math: per batch B of the shuffled data, θ <- opt(θ, (1/|B|) Σ_{i∈B} ∇_θ L_i);
    batch norm also updates its running statistics from every batch,
    μ_run <- (1 - m) μ_run + m μ_B,  σ²_run <- (1 - m) σ²_run + m n_B/(n_B - 1) σ²_B.

    Args:
      net, loss, opt: the network, the loss (or its name) and the optimizer.
      params: initial parameters (not modified).
      x, y: training data, ``x`` of shape ``(n, n_in)``; ``y`` one-hot rows, integer
        labels or regression targets.
      key: PRNG key; epoch ``e`` is shuffled by ``epoch_order(key, e, n)``, which depends
        only on ``jax.random.fold_in(key, e)``. With dropout, step i of epoch e draws its
        masks from ``dropout_key(key, e, i)`` (a stream apart from the shuffle's).
      epochs: number of epochs to run in this call.
      batch_size: 1 is SGD, ``None`` the full batch, anything else mini-batches; the last
        batch holds the ``n mod batch_size`` remaining examples and is averaged over them.
      method: ``"manual"`` or ``"autodiff"`` gradients.
      validation_data: optional ``(x_val, y_val)``; adds ``val_loss`` (and, for
        classification, ``val_accuracy``) to the history.
      opt_state: optimizer state to continue from (default ``opt.init(params)``); across compute
        dtypes it is converted as ``fnann.optim.loss_scale.state_for`` says (float16 adds a fresh
        loss scale to a plain state, another dtype unwraps a loss-scaled one; the moments stay).
      initial_epoch: index of the first epoch (to resume: the number already done).
      patience: stop after this many epochs without improvement of ``monitor``.
      monitor: ``"val_loss"``, ``"val_accuracy"`` or ``"loss"``.
      min_delta: the least change that counts as an improvement (finite, >= 0).
      restore_best: with ``patience``, return the best params seen rather than the last.
      callback: called after every epoch as ``callback(epoch, logs)``, or, if it takes a
        third positional argument, as ``callback(epoch, logs, state)`` with the
        :class:`TrainState` after that epoch (params, optimizer state, epochs done, key, running
        statistics: everything to checkpoint or inspect the run). Returning ``True`` stops training.
      verbose: print one line per epoch.
      return_state: also return a :class:`TrainState` to continue from.
      params_callback: called as ``params_callback(epoch, params, opt_state)`` after every
        epoch with the new params and optimizer state, e.g. a ``fnann.diagnostics.Recorder``.
      mesh: a ``jax.sharding.Mesh`` for data parallelism: every batch's rows are sharded
        over its axis ``data_axis``, params and optimizer state are replicated (see
        ``fnann.parallel``; under ``jax.distributed`` pass each process's own shard of
        ``x``, ``y`` and ``validation_data``). The result equals the one-device ``fit``.
      data_axis: the mesh axis that splits the batches.
      compute_dtype: ``"bfloat16"`` or ``"float16"``: mixed precision. The params and
        optimizer state keep their dtype (float32 master weights); every step computes the
        forward pass and the delta recursion in the compute dtype from cast(θ), cast(x), the
        loss and δ^(L) in float32, and hands float32 gradients to the optimizer. float16
        adds dynamic loss scaling: ``opt`` is wrapped in ``fnann.loss_scaling(opt)`` (unless
        it is one), whose state ``LossScaleState(scale, good_steps, inner)`` is the
        ``opt_state`` this returns and takes back. ``None``: the params' dtype throughout.
      stats: a batch-norm net's running statistics to start from (default
        ``init_stats(net, params' dtype)``); every batch (2 rows or more: a ``batch_size``
        giving a 1-row batch is refused) updates them, validation evaluates with them, the
        divergence check covers them, ``restore_best`` restores those of the best epoch.
        ``None`` (or ``()``) for other nets.

    Returns:
      ``(params, history)``, or ``(params, history, state)`` with ``return_state``; for a
      batch-norm net ``(params, stats, history)`` or ``(params, stats, history, state)``.
      ``history`` is a dict of per-epoch lists of floats: ``"epoch"``, ``"loss"`` (the
      epoch's mean batch loss) and, with validation data, ``"val_loss"`` and
      ``"val_accuracy"``.

    Raises:
      ValueError, TypeError: on bad data or arguments (among them an ``opt_state`` that
        does not fit ``opt.init(params)``, a learning-rate schedule of fnann's optimizers
        that is negative or NaN on a step this call runs), before anything compiles.
      TrainingDivergedError: when the loss or params become NaN/inf, or the loss exceeds
        ``DIVERGENCE_FACTOR`` (1e6) times the reference loss (the larger of the loss at the
        starting params and that of the best constant prediction), even in the first epoch;
        it carries the epoch, the last finite params and the history, and its message says
        which cause it was.
    """
    loss = get_loss(loss)
    opt = as_optimizer(opt)
    checks.check_net_params(net, params)
    checks.check_head(net, loss)
    checks.check_key(key)
    checks.check_callable(callback, "callback")
    check_loss_and_grad(net, loss, method)
    min_delta = _check_patience(patience, min_delta)
    checks.check_training(net, loss, x, y, epochs=epochs, initial_epoch=initial_epoch,
                               batch_size=batch_size, validation_data=validation_data,
                               monitor=monitor, monitored=patience is not None)
    classify = accuracy_metric(net) is not None

    dtype = params[0].W.dtype
    compute_dtype = checks.check_compute_dtype(compute_dtype, dtype)
    opt = with_loss_scaling(opt, compute_dtype)  # float16: the state holds the loss scale
    checks.check_representable(x, dtype, "x")
    x, y = as_device(x, y, dtype)
    if validation_data is not None:
        checks.check_representable(validation_data[0], dtype, "x_val")
        x_val, y_val = as_device(*validation_data, dtype)
    params = jax.tree.map(to_device, params)
    stats = jax.tree.map(to_device, start_stats(net, stats, dtype))
    if opt_state is not None:
        opt_state = state_for(opt_state, compute_dtype)  # a float16 run's state holds a scale; others none
        checks.check_opt_state(opt, opt_state, params)
    if mesh is not None:  # batches sharded over data_axis; params and opt_state replicated
        mesh = parallel.check_mesh(mesh, data_axis)
        x, y = parallel.put_data(x, mesh, data_axis), parallel.put_data(y, mesh, data_axis, "y")
        if validation_data is not None:
            x_val, y_val = (parallel.put_data(x_val, mesh, data_axis, "x_val"),
                            parallel.put_data(y_val, mesh, data_axis, "y_val"))
        params, stats = parallel.replicate((params, stats), mesh)
    n = x.shape[0]  # all processes' rows together under jax.distributed
    steps_per_epoch = 1 if batch_size is None else -(-n // batch_size)
    check_optimizer(opt, 0 if opt_state is None else state_step(opt_state), epochs * steps_per_epoch)
    first_state, reference = compiled_start(net, loss, opt)(params, x, y)  # over all processes' rows
    opt_state = first_state if opt_state is None else opt_state
    if mesh is not None:
        opt_state = parallel.replicate(opt_state, mesh)
    reference = float(reference)
    call_back = callback_caller(callback)
    run_epoch = compiled_epoch(net, loss, opt, method, batch_size, mesh, data_axis, compute_dtype)
    shuffle = (lambda e: epoch_order(key, e, n)) if mesh is None else (
        lambda e: parallel.replicate(epoch_order(key, e, n), mesh))
    if not net.has_dropout:
        drop_key = lambda e: ()  # noqa: E731 - the textbook epoch takes no key
    elif mesh is None:
        drop_key = lambda e: (dropout_epoch_key(key, e),)  # noqa: E731
    else:
        drop_key = lambda e: (parallel.replicate(dropout_epoch_key(key, e), mesh),)  # noqa: E731
    bn = net.has_batch_norm
    running = lambda stats: {"stats": stats} if bn else {}  # noqa: E731 - the epoch's stats= argument

    history: dict[str, list] = {"epoch": [], "loss": []}
    if validation_data is not None:
        history["val_loss"] = []
        if classify:
            history["val_accuracy"] = []
    sign = -1.0 if monitor == "val_accuracy" else 1.0
    best, best_params, best_state, best_stats, waited = math.inf, params, opt_state, stats, 0
    for epoch in range(initial_epoch, initial_epoch + epochs):
        new_params, new_state, train_loss, finite, *new_stats = run_epoch(
            params, opt_state, shuffle(epoch), x, y, *drop_key(epoch), **running(stats))
        cause = divergence(float(train_loss), bool(finite), reference, dtype)
        if cause is not None:
            raise TrainingDivergedError(
                f"training diverged in epoch {epoch}: {cause}; {divergence_hint(dtype)}. The parameters at "
                "the start of that epoch (the last good ones) are kept on this error as .params.", epoch,
                params, opt_state, history, cause=cause, stats=stats)
        params, opt_state, stats = new_params, new_state, (new_stats[0] if bn else ())
        if params_callback is not None:
            params_callback(epoch, params, opt_state)
        logs = {"epoch": epoch, "loss": float(train_loss)}
        if validation_data is not None:
            metrics = evaluate_chunks(net, loss, params, x_val, y_val,  # checked before epoch 0
                                      mesh=mesh, data_axis=data_axis, stats=stats if bn else None)
            logs["val_loss"] = metrics["loss"]
            if classify:
                logs["val_accuracy"] = metrics["accuracy"]
        for name, value in logs.items():
            history[name].append(value)
        if verbose:
            print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in logs.items()))
        stop = call_back(epoch, logs, lambda: TrainState(params, opt_state, epoch + 1, key, stats))
        if patience is not None:
            score = sign * logs[monitor]
            if score < best - min_delta:
                best, best_params, best_state, best_stats, waited = score, params, opt_state, stats, 0
            else:
                waited += 1
                stop = stop or waited > patience
        if stop:
            break
    if patience is not None and restore_best and history["loss"]:
        params, opt_state, stats = best_params, best_state, best_stats
    done = initial_epoch + len(history["loss"])
    trained = (params, stats) if bn else (params,)
    if return_state:
        return *trained, history, TrainState(params, opt_state, done, key, stats)
    return *trained, history


# --- training policy: schedules, divergence, callbacks ------------------------------------

DIVERGENCE_FACTOR = 1e6
"""``fit`` stops when an epoch's loss exceeds this many times the ``reference_loss``."""

_SCHEDULE_BLOCK = 1 << 20  # steps evaluated per vmapped call of a schedule


LR_ARGUMENTS = ("lr", "learning_rate")  # fnann's factories' name, and the presets' of optax and Keras


def check_optimizer(opt: Any, first_step: int = 0, n_steps: int = 0, where: str = "opt") -> None:
    """The one check of an optimizer before training, for every entry point (``fit``,
    ``fit_many`` per model, ``train_step``): it must descend (a chain of fnann's gradient-only
    transforms climbs the loss), and each schedule fnann can see must give a finite rate >= 0 on
    the updates ``first_step, ..., first_step + n_steps - 1`` (:func:`check_schedules`)."""
    if descends(opt) is False:
        raise ValueError(
            f"{where} = {opt!r} takes no learning-rate step: it only transforms the gradient, and "
            "its updates added to the params would climb the loss. Chain an optimizer after it, e.g. "
            f"chain(..., fnann.adam(1e-3)) or chain(..., fnann.sgd(0.1)).")
    check_schedules(opt, first_step, n_steps, where)


def learning_rates(opt: Any, where: str = "opt") -> list[tuple[str, Callable]]:
    """The callable learning rates inside an fnann optimizer, found through its ``config``.

    Walks fnann's factories' configurations, ``chain`` included; an optax transform or an
    ``Optimizer(init, update)`` built by hand hides its schedule and contributes nothing.
    """
    found: list[tuple[str, Callable]] = []
    if isinstance(opt, Optimizer) and opt.config is not None:
        factory, args = opt.config
        for arg, value in args:
            if arg in LR_ARGUMENTS and callable(value):
                found.append((f"{where} = {factory}({arg}=...)", value))
            for i, inner in enumerate(value if isinstance(value, tuple) else (value,)):
                if isinstance(inner, Optimizer):
                    found += learning_rates(inner, f"{where} argument {i} of {factory}")
    return found


def state_step(opt_state: Any) -> int:
    """The update count held by fnann's optimizer states (their ``step``), else 0."""
    if isinstance(opt_state, tuple) and "step" in getattr(opt_state, "_fields", ()):
        return int(np.min(np.asarray(opt_state.step)))  # the earliest of stacked models' counts
    if isinstance(opt_state, (tuple, list)):
        return max((state_step(s) for s in opt_state), default=0)
    return 0


def check_schedules(opt: Optimizer, first_step: int, n_steps: int, where: str = "opt") -> None:
    """Raises ValueError if a schedule of ``opt`` gives a negative or non-finite rate at one
    of the updates ``first_step, ..., first_step + n_steps - 1``.

    A schedule is evaluated with ``jax.vmap`` over the steps, on the host, before training;
    one that cannot be vmapped is not checked (the divergence check still stands).
    """
    end = min(first_step + n_steps, 2**31 - 1)  # the optimizers count steps in int32
    for found, schedule in learning_rates(opt, where):
        for start in range(first_step, end, _SCHEDULE_BLOCK):
            steps = np.arange(start, min(start + _SCHEDULE_BLOCK, end), dtype=np.int32)
            try:
                rates = np.asarray(jax.vmap(schedule)(jnp.asarray(steps)), dtype=np.float64)
            except Exception:  # noqa: BLE001 - not vmappable: nothing to judge here
                break
            bad = ~(np.isfinite(rates) & (rates >= 0))
            if np.any(bad):
                k = int(np.argmax(bad))
                raise ValueError(
                    f"{where}: the learning-rate schedule of {found} gives lr = {rates[k]:.6g} at step "
                    f"{int(steps[k])}, one of the updates this fit would run; a negative rate "
                    "trains uphill and a NaN or inf one destroys the parameters. Fix the schedule.")


def divergence(loss: float, finite: bool, reference: float, dtype: Any) -> str | None:
    """Why an epoch diverged, or ``None`` if it did not.

    Diverged means: the parameters or the epoch's loss are NaN or inf, or the loss exceeds
    ``DIVERGENCE_FACTOR`` times the ``reference_loss`` (when that is finite and > 0): the larger
    of the loss at the params the call started from and that of the best constant prediction.
    """
    if not math.isfinite(loss):
        cause = f"the loss became {loss}"
    elif not finite:
        cause = f"the parameters became NaN or inf (epoch loss {loss:.4g})"
    elif 0 < reference < math.inf and loss > DIVERGENCE_FACTOR * reference:
        cause = (f"the loss grew to {loss:.4g}, more than {DIVERGENCE_FACTOR:g} times the reference "
                 f"{reference:.4g} (the larger of the loss at the starting params and that of the best "
                 "constant prediction)")
    else:
        return None
    return cause


def divergence_hint(dtype: Any) -> str:
    """What to try after a divergence: a smaller learning rate; for 16-bit params, float32."""
    hint = "try a smaller learning rate"
    if jnp.dtype(dtype).itemsize < 4:
        hint += f", or float32 params ({jnp.dtype(dtype).name} overflows above {float(jnp.finfo(dtype).max):.4g})"
    return hint


def callback_caller(callback: Callable | None) -> Callable[[int, dict, Callable], bool]:
    """``call(epoch, logs, state)`` -> whether ``callback`` asked to stop.

    A callback that takes three positional arguments is called as ``callback(epoch, logs,
    state)`` with the ``TrainState`` after that epoch (``state`` is a function building it,
    so nothing is built for two-argument callbacks); otherwise as ``callback(epoch, logs)``.
    """
    if callback is None:
        return lambda epoch, logs, state: False
    try:
        inspect.signature(callback).bind(0, {}, None)
        with_state = True
    except (TypeError, ValueError):
        with_state = False
    if with_state:
        return lambda epoch, logs, state: bool(callback(epoch, logs, state()))
    return lambda epoch, logs, state: bool(callback(epoch, logs))
