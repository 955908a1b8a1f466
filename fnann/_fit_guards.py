"""What ``fit`` checks before it compiles anything, and after every epoch.

Before: the data and the training arguments (``check_training``, shared with ``fit_many``), the optimizer state against ``opt.init(params)`` (an ``opt_state`` of another
optimizer would fail deep inside tracing), and the learning-rate schedules of fnann's own
optimizers over every step the call will run (a negative or NaN rate trains uphill or
diverges). After each epoch: divergence, with its cause. And the callback's two forms.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnann import _args, _checks
from fnann.optim import Optimizer
from fnann.inference import accuracy_metric

DIVERGENCE_FACTOR = 1e6
"""``fit`` stops when an epoch's loss exceeds this many times the first epoch's loss."""

_SCHEDULE_BLOCK = 1 << 20  # steps evaluated per vmapped call of a schedule

MONITORS = ("val_loss", "val_accuracy", "loss")
MAX_EPOCH = 2**31 - 1  # epoch e shuffles with fold_in(key, e), and steps count in int32


def check_training(net, loss, x, y, *, epochs, initial_epoch, batch_size, validation_data,
                   monitor: str, monitored: bool) -> None:
    """The checks of the data and the training arguments that ``fit`` and ``fit_many`` share:
    epoch counts, ``batch_size``, ``x, y`` and ``validation_data`` (``check_data``), and
    ``monitor`` (one of ``MONITORS``; when ``monitored``, a ``val_`` one needs validation data,
    and ``val_accuracy`` a classifier)."""
    _args.check_count(epochs, "epochs")
    _args.check_count(initial_epoch, "initial_epoch")
    if initial_epoch + epochs > MAX_EPOCH:
        raise ValueError(f"initial_epoch + epochs must be <= {MAX_EPOCH}; got {initial_epoch + epochs}.")
    check_batch_size(batch_size)
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {MONITORS}; got {monitor!r}.")
    check_data(net, loss, x, y)
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise TypeError("validation_data must be a pair (x_val, y_val).")
        check_data(net, loss, *validation_data, x_name="x_val", y_name="y_val")
    if monitor.startswith("val_") and monitored and validation_data is None:
        raise ValueError(f"monitor={monitor!r} needs validation_data (or use monitor='loss').")
    if monitor == "val_accuracy" and accuracy_metric(net) is None:
        raise ValueError("monitor='val_accuracy' needs a classifier (softmax or sigmoid output).")


def check_data(net, loss, x, y, x_name: str = "x", y_name: str = "y"):
    """Validates a dataset before anything compiles (shapes, NaN/inf, label range)."""
    _checks.check_x(x, net.n_in, x_name)
    _checks.check_rows(x, y, x_name, y_name)
    _checks.check_finite(x, x_name)
    _checks.check_has_rows(x, x_name, "fit")
    _checks.check_targets(net, loss, x, y, x_name, y_name)


def check_batch_size(batch_size) -> None:
    if batch_size is None:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be a positive int or None (full batch); got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (1 is SGD) or None (full batch); got {batch_size}.")


def check_opt_state(opt: Optimizer, opt_state: Any, params: Any, name: str = "opt_state") -> None:
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


def learning_rates(opt: Any, where: str = "opt") -> list[tuple[str, Callable]]:
    """The callable learning rates inside an fnann optimizer, found through its ``config``.

    Walks fnann's factories' configurations, ``chain`` included; an optax transform or an
    ``Optimizer(init, update)`` built by hand hides its schedule and contributes nothing.
    """
    found: list[tuple[str, Callable]] = []
    if isinstance(opt, Optimizer) and opt.config is not None:
        factory, args = opt.config
        for arg, value in args:
            if arg == "lr" and callable(value):
                found.append((f"{where} = {factory}(lr=...)", value))
            for i, inner in enumerate(value if isinstance(value, tuple) else (value,)):
                if isinstance(inner, Optimizer):
                    found += learning_rates(inner, f"{where} argument {i} of {factory}")
    return found


def state_step(opt_state: Any) -> int:
    """The update count held by fnann's optimizer states (their ``step``), else 0."""
    if isinstance(opt_state, tuple) and "step" in getattr(opt_state, "_fields", ()):
        return int(opt_state.step)
    if isinstance(opt_state, (tuple, list)):
        return max((state_step(s) for s in opt_state), default=0)
    return 0


def check_schedules(opt: Optimizer, first_step: int, n_steps: int) -> None:
    """Raises ValueError if a schedule of ``opt`` gives a negative or non-finite rate at one
    of the updates ``first_step, ..., first_step + n_steps - 1``.

    A schedule is evaluated with ``jax.vmap`` over the steps, on the host, before training;
    one that cannot be vmapped is not checked (the divergence check still stands).
    """
    end = min(first_step + n_steps, 2**31 - 1)  # the optimizers count steps in int32
    for where, schedule in learning_rates(opt):
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
                    f"opt: the learning-rate schedule of {where} gives lr = {rates[k]:.6g} at step "
                    f"{int(steps[k])}, one of the updates this fit would run; a negative rate "
                    "trains uphill and a NaN or inf one destroys the parameters. Fix the schedule.")


def divergence(loss: float, finite: bool, first_loss: float | None, dtype: Any) -> str | None:
    """Why an epoch diverged, or ``None`` if it did not.

    Diverged means: the parameters or the epoch's loss are NaN or inf, or the loss exceeds
    ``DIVERGENCE_FACTOR`` times the first epoch's loss (when that is > 0).
    """
    if not math.isfinite(loss):
        cause = f"the loss became {loss}"
    elif not finite:
        cause = f"the parameters became NaN or inf (epoch loss {loss:.4g})"
    elif first_loss is not None and first_loss > 0 and loss > DIVERGENCE_FACTOR * first_loss:
        cause = (f"the loss grew to {loss:.4g}, more than {DIVERGENCE_FACTOR:g} times the first "
                 f"epoch's {first_loss:.4g}")
    else:
        return None
    hint = "try a smaller learning rate"
    if jnp.dtype(dtype).itemsize < 4:
        hint += f", or float32 params ({jnp.dtype(dtype).name} overflows above {float(jnp.finfo(dtype).max):.4g})"
    return f"{cause}; {hint}"


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
