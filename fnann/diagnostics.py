"""Gradient-flow diagnostics: where the error signal vanishes, explodes or dies.

:func:`diagnose` runs one forward pass and the hand-derived backward pass
(:func:`fnann.backprop.backward_trace`) on a batch and returns, for every layer l = 1..L
(index ``l - 1`` of each field of :class:`Diagnostics`)::

    ‖W^(l)‖_F,  ‖∂L/∂W^(l)‖_F,  ‖δ^(l)‖_F                     (δ^(l) = ∂L/∂Z^(l))
    ‖ΔW^(l)‖_F / ‖W^(l)‖_F      for one step ΔW of a given optimizer
    mean and std of Z^(l) and of A^(l)                        (over examples and units)
    dead fraction       units with A^(l) = 0 for every example (ReLU layers)
    saturated fraction  entries with |σ'(Z^(l))| < threshold  (sigmoid and tanh layers)

A normalized hidden layer (``MLP(norm=...)``, ``Normed(W, gamma, beta)``: no b) reports
Z^(l) = W^(l) A^(l-1), before its norm, and its saturation at σ'(Y^(l)), Y = γ ⊙ Ẑ + β, the
activation's input. Batch norm is diagnosed in its training pass (the batch's own μ, σ², the
pass the backward differentiates; the batch needs two rows or more), not with the running
statistics of evaluation.

A field that does not apply to a layer (dead units of a sigmoid layer, the update ratio
without an optimizer) is NaN. ``diagnose`` is pure: it works under ``jax.jit`` (``net``,
``loss`` and ``opt`` static) and ``jax.vmap``. :class:`Recorder` collects it every k epochs
of ``fit`` (``fit(..., params_callback=recorder)``), at the cost of one compiled call per
recorded epoch; :func:`format_diagnostics` prints the table. Figures are in
``fnann.app.diagnostics_plots``.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnann.caches import compiled_cache
from fnann import checks
from fnann.backprop import backpropagate
from fnann.checks import check_inputs, check_targets
from fnann.losses import Loss, get_loss
from fnann.mlp import MLP, Params, Precision, feedforward, precision_scope
from fnann.optim import Optimizer, global_norm  # Frobenius norm, summed in >= float32

Array = jax.Array



class Diagnostics(NamedTuple):
    """Per-layer statistics of one batch; every field has shape ``(L,)``, entry ``l - 1``
    for layer l (``(..., L)`` under ``vmap`` or when stacked over epochs).

    Attributes:
      W_norm: ‖W^(l)‖_F.
      dW_norm: ‖∂L/∂W^(l)‖_F.
      delta_norm: ‖δ^(l)‖_F over the batch (the 1/m of the batch-mean loss is inside δ).
      update_ratio: ‖ΔW^(l)‖_F / ‖W^(l)‖_F for the optimizer's next step (NaN without one).
      z_mean, z_std: mean and standard deviation of Z^(l) over examples and units.
      a_mean, a_std: the same for A^(l).
      dead_fraction: the fraction of units with A^(l) = 0 for every example (ReLU layers;
        NaN for others).
      saturated_fraction: the fraction of entries with |σ'(Z^(l))| below the threshold
        (sigmoid and tanh layers; NaN for others).
    """

    W_norm: Array
    dW_norm: Array
    delta_norm: Array
    update_ratio: Array
    z_mean: Array
    z_std: Array
    a_mean: Array
    a_std: Array
    dead_fraction: Array
    saturated_fraction: Array


def _check_threshold(saturation) -> None:
    """A threshold on |σ'(z)|: a number > 0, or an array (a traced one, under ``vmap``)."""
    if isinstance(saturation, bool) or not isinstance(saturation, (numbers.Real, jax.Array, np.ndarray)):
        raise TypeError(f"saturation must be a positive number; got {saturation!r}.")
    if isinstance(saturation, numbers.Real) and not saturation > 0:
        raise ValueError(f"saturation must be > 0 (a threshold on |sigma'(z)|); got {saturation}.")


def _check_opt(opt) -> None:
    if opt is not None and not isinstance(opt, Optimizer):
        raise TypeError(f"opt must be an fnann.optim.Optimizer or None; got {type(opt).__name__}.")


def diagnose(net: MLP, params: Params, x, y, loss: Loss | str, opt: Optimizer | None = None,
             opt_state: Any = None, *, saturation: float = 1e-2,
             precision: Precision = None) -> Diagnostics:
    """Gradient-flow statistics of every layer for the batch ``(x, y)``.

    Math: δ^(l) = ∂L/∂Z^(l) from the delta recursion; ∂L/∂W^(l) = δ^(l) (A^(l-1))ᵀ;
          ratio^(l) = ‖ΔW^(l)‖_F / ‖W^(l)‖_F with (ΔW, ·) = opt.update(∂L/∂θ, opt_state, θ);
          saturated^(l) = mean over examples and units of [|σ'(Z^(l))| < saturation]
          (σ'(Y^(l)) for a normalized layer, Y^(l) = γ ⊙ Ẑ^(l) + β).
    A batch-norm net is diagnosed in its training pass: the batch's statistics, not the running ones.

    Args:
      net: the network.
      params: its parameters.
      x: inputs of shape ``(batch, n_in)``.
      y: targets for ``loss``.
      loss: a ``Loss`` or its name.
      opt: optional optimizer whose next step gives ``update_ratio``.
      opt_state: its state (default ``opt.init(params)``, the first step).
      saturation: threshold on |σ'(z)| below which a sigmoid/tanh entry counts as
        saturated (σ' is at most 1/4 for sigmoid and 1 for tanh).
      precision: matmul precision.

    Returns:
      A :class:`Diagnostics` of arrays of shape ``(L,)``, in at least float32.

    Raises:
      ValueError, TypeError: for a bad net, params, x, y, opt or threshold (named).

    Example:
      >>> from fnann.mlp import Dense
      >>> from fnann.optim import sgd
      >>> net = MLP([4, 8, 8, 3], hidden="relu")
      >>> params = tuple(Dense(jnp.full((o, i), 0.1), jnp.zeros(o)) for i, o in [(4, 8), (8, 8), (8, 3)])
      >>> x, y = jnp.ones((16, 4)), jnp.arange(16) % 3
      >>> d = jax.jit(diagnose, static_argnums=(0, 4, 5))(net, params, x, y, "cross_entropy", sgd(0.1))
      >>> d.dW_norm.shape
      (3,)
    """
    loss = get_loss(loss)
    _check_opt(opt)
    _check_threshold(saturation)
    check_inputs(net, params, x)
    checks.check_has_rows(x, needed_by="diagnose")
    checks.check_norm_rows(net, x)
    check_targets(net, loss, x, y)
    with precision_scope(precision):
        _, trace = feedforward(net, params, x)
        grads, deltas = backpropagate(net, params, trace, y, loss)
    dtype = jnp.promote_types(params[0].W.dtype, jnp.float32)
    nan = jnp.full([], jnp.nan, dtype)
    if opt is None:
        ratio = [nan] * net.n_layers
    else:
        updates, _ = opt.update(grads, opt.init(params) if opt_state is None else opt_state, params)
        ratio = [global_norm(u.W) / global_norm(p.W) for u, p in zip(updates, params)]
    rows, inputs = [], trace.sigma_inputs  # σ's inputs: Z, or Y = γ ⊙ Ẑ + β after a norm
    for l, act in enumerate(net.activations):
        z, a = trace.Z[l].astype(dtype), trace.A[l + 1].astype(dtype)
        dead = jnp.mean(jnp.all(a == 0, axis=0), dtype=dtype) if act.dies else nan
        if act.saturates:
            slope = act.backward(inputs[l], jnp.ones_like(inputs[l]))  # σ'(u) element-wise
            saturated = jnp.mean(jnp.abs(slope) < saturation, dtype=dtype)
        else:
            saturated = nan
        rows.append((global_norm(params[l].W), global_norm(grads[l].W), global_norm(deltas[l]), ratio[l],
                     jnp.mean(z), jnp.std(z), jnp.mean(a), jnp.std(a), dead, saturated))
    return Diagnostics(*(jnp.stack(col).astype(dtype) for col in zip(*rows)))


HEADERS = {"W_norm": "|W|", "dW_norm": "|dL/dW|", "delta_norm": "|delta|",
           "update_ratio": "|dW step|/|W|", "z_mean": "Z mean", "z_std": "Z std",
           "a_mean": "A mean", "a_std": "A std", "dead_fraction": "dead",
           "saturated_fraction": "saturated"}


def format_diagnostics(diag: Diagnostics, net: MLP | None = None) -> str:
    """The diagnostics of one batch as a text table, one row per layer ('-': does not apply).

    Example:
      >>> d = Diagnostics(*([1.5, 0.25],) * 8, [0.5, float("nan")], [float("nan")] * 2)
      >>> table = format_diagnostics(d, MLP([2, 3, 2], hidden="relu"))
      >>> print("\\n".join(line[:43] + "  ...  " + line[-16:] for line in table.splitlines()))
      layer      act  shape        |W|    |dL/dW|  ...  dead  saturated
      -----  -------  -----  ---------  ---------  ...  -----  ---------
          1     relu    3x2  1.500e+00  1.500e+00  ...  0.500          -
          2  softmax    2x3  2.500e-01  2.500e-01  ...      -          -
    """
    cols = {name: np.asarray(value, np.float64) for name, value in diag._asdict().items()}
    if any(c.ndim != 1 for c in cols.values()):
        raise ValueError("format_diagnostics takes the diagnostics of one batch (fields of shape "
                         "(L,)); index a stacked record first, e.g. jax.tree.map(lambda f: f[-1], d).")
    n_layers = len(cols["W_norm"])
    if net is not None and net.n_layers != n_layers:
        raise ValueError(f"diag has {n_layers} layers but net has {net.n_layers}.")
    head = ["layer", "act", "shape", *HEADERS.values()]
    body = []
    for l in range(n_layers):
        act = net.activations[l].name if net is not None else "?"
        shape = f"{net.sizes[l + 1]}x{net.sizes[l]}" if net is not None else "?"
        cells = []
        for name, c in cols.items():
            v = c[l]
            fmt = ".3f" if name in ("dead_fraction", "saturated_fraction") else ".3e"
            cells.append("-" if np.isnan(v) else format(v, fmt))
        body.append([str(l + 1), act, shape, *cells])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths)),
                      *(fmt.format(*r) for r in body)])


@compiled_cache(maxsize=32)
def _compiled(net: MLP, loss: Loss, opt: Optimizer | None, saturation: float):
    return jax.jit(functools.partial(diagnose, net, loss=loss, opt=opt, saturation=saturation))


class Recorder:
    """Records :func:`diagnose` on a fixed batch every ``every`` epochs of ``fit``.

    Pass it as ``fit(..., params_callback=recorder)``: after every ``every``-th epoch it
    runs one compiled call (forward, backward and one optimizer update on the probe batch;
    the epoch itself stays one compiled call) and keeps the result on the device.

    Args:
      net, loss: the network and the loss (or its name).
      x, y: the probe batch (e.g. the first few hundred training examples).
      opt: the optimizer being trained with (for ``update_ratio``), or ``None``.
      every: record after epochs ``every, 2 every, ...`` (counted from 1).
      saturation: see :func:`diagnose`.

    Attributes:
      epochs: the number of epochs completed at each record (0: before training).
      records: one :class:`Diagnostics` per record.

    Example:
      >>> from fnann import MLP, Dense, optim
      >>> net, opt = MLP([2, 4, 2], hidden="tanh"), optim.sgd(0.1)
      >>> rec = Recorder(net, "cross_entropy", jnp.ones((8, 2)), jnp.arange(8) % 2, opt, every=2)
      >>> params = (Dense(jnp.full((4, 2), 0.5), jnp.zeros(4)), Dense(jnp.full((2, 4), -0.5), jnp.zeros(2)))
      >>> for epoch in range(4):  # what fit(..., params_callback=rec) does after each epoch
      ...     rec(epoch, params, opt.init(params))
      >>> rec.epochs, rec.stacked().dW_norm.shape
      ([2, 4], (2, 2))
    """

    def __init__(self, net: MLP, loss: Loss | str, x, y, opt: Optimizer | None = None, *,
                 every: int = 1, saturation: float = 1e-2):
        loss = get_loss(loss)
        _check_opt(opt)
        _check_threshold(saturation)
        checks.integer(every, "every", 1, what="an int (record every k epochs)")
        checks.check_net(net)
        checks.check_x(x, net.n_in)
        checks.check_has_rows(x, needed_by="the probe batch")
        checks.check_norm_rows(net, x)
        checks.check_finite(x)
        check_targets(net, loss, x, y)
        self.net, self.opt, self.every = net, opt, int(every)
        self.x, self.y = jnp.asarray(x), jnp.asarray(y)
        self._fn = _compiled(net, loss, opt, float(saturation))
        self.epochs: list[int] = []
        self.records: list[Diagnostics] = []

    def record(self, epochs_done: int, params: Params, opt_state: Any = None) -> Diagnostics:
        """Records the diagnostics at ``params`` (after ``epochs_done`` epochs) and returns them.

        Without ``opt_state`` the update ratio is that of the optimizer's first step.
        """
        if opt_state is None and self.opt is not None:
            opt_state = self.opt.init(params)  # the same compiled call as with a state
        diag = self._fn(params, self.x, self.y, opt_state=opt_state)
        self.epochs.append(int(epochs_done))
        self.records.append(diag)
        return diag

    def __call__(self, epoch: int, params: Params, opt_state: Any) -> None:
        """The ``fit`` hook: records after every ``every``-th epoch (``epoch`` counts from 0)."""
        if (epoch + 1) % self.every == 0:
            self.record(epoch + 1, params, opt_state)

    def stacked(self) -> Diagnostics:
        """All records as one :class:`Diagnostics` of numpy arrays of shape ``(records, L)``."""
        if not self.records:
            return Diagnostics(*(np.zeros((0, self.net.n_layers)) for _ in Diagnostics._fields))
        return Diagnostics(*(np.stack(f) for f in zip(*jax.device_get(self.records))))

