"""``fnann explain``: one example through a tiny network, every equation with its numbers.

:func:`explain` prints, in the textbook's order, each Z^(l) and A^(l), the loss, δ^(L),
every δ^(l), every ∂L/∂W^(l) and ∂L/∂b^(l), then one step of an optimizer with its state.
Beside each δ and gradient stands the value ``jax.grad`` gives for the same quantity, so
the hand derivation is confirmed number by number. Every number comes from fnann's own
functions (``forward_trace``, ``backward_trace``, ``dense_backward``, the activation's and
the loss's derivatives, the optimizer's ``update``); nothing is recomputed here.

Vectors are printed as columns, as in the textbook (Z = W A + b); fnann itself stores the
example as a row of a batch (``z = a_prev @ W.T + b``), so a printed column is the row
transposed. A net with batch norm is followed through a small batch of m >= 2 examples
instead (one example has no batch statistics): each printed matrix has one column per
example, the loss is the batch mean and the running statistics' update is shown too.
The computation runs in float64.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from fnann.activations import Activation
from fnann.app.common import UsageError
from fnann.app.options import hidden_activations, norm_names
from fnann.caches import compiled_cache
from fnann.backprop import backpropagate, dense_backward, dropout_backward, loss_value
from fnann.checks import check_head, check_inputs, check_key, check_stats, check_targets
from fnann.losses import Loss, as_targets, default_loss, get_loss, is_fused, random_targets
from fnann.mlp import MLP, Dense, Params, dropout_masks, feedforward, init_stats
from fnann.norms import update_running
from fnann.optim import Optimizer, apply_updates, equations

HIGHEST = jax.lax.Precision.HIGHEST
FORMATS = ("text", "markdown")
GAP = 6  # spaces between a hand-derived value and jax.grad's
SYMBOLS = {"gamma": "γ", "beta": "β"}  # a Normed layer's fields as the equations name them

# --- formatting ---------------------------------------------------------------------


def _cells(a: np.ndarray) -> list[list[str]]:
    """Fixed decimals when every entry reads well that way, scientific notation otherwise."""
    big = np.abs(a[np.isfinite(a) & (a != 0)])
    fixed = big.size == 0 or (big.min() >= 1e-3 and big.max() < 1e5)
    return [[f"{v:.4f}" if fixed else f"{v:.3e}" for v in row] for row in a]


def matrix_lines(a) -> list[str]:
    """``[ ... ]`` rows of a matrix; a vector (1-D) is printed as a column.

    Example:
      >>> print("\\n".join(matrix_lines(np.array([1.0, -0.5]))))
      [  1.0000 ]
      [ -0.5000 ]
    """
    a = np.asarray(a, np.float64) + 0.0  # + 0.0 turns -0.0 into 0.0
    if a.ndim < 2:
        a = a.reshape(-1, 1)
    cells = _cells(a)
    widths = [max(len(row[j]) for row in cells) for j in range(a.shape[1])]
    return ["[ " + "  ".join(c.rjust(w) for c, w in zip(row, widths)) + " ]" for row in cells]


class _Page:
    """Collects sections of equations and matrices, rendered as aligned text or markdown."""

    def __init__(self):
        self.sections: list[tuple[str, list[tuple]]] = []

    def section(self, title: str) -> None:
        self.sections.append((title, []))

    def line(self, text: str) -> None:
        self.sections[-1][1].append(("line", text))

    def value(self, equation: str, a, ref_label: str | None = None, ref=None) -> None:
        self.sections[-1][1].append(("value", equation, a, ref_label, ref))

    def render(self, fmt: str, title: str, intro: list[str]) -> str:
        if fmt == "markdown":
            out = [f"# {title}", "", *intro, ""]
            for name, items in self.sections:
                out += [f"## {name}", "", "```text", *self._body(items), "```", ""]
            return "\n".join(out).rstrip() + "\n"
        out = [title, *intro]
        for name, items in self.sections:
            out += ["", name, "-" * len(name), *self._body(items)]
        return "\n".join(out) + "\n"

    @staticmethod
    def _body(items) -> list[str]:
        lines: list[str] = []
        for item in items:
            if item[0] == "line":
                lines.append(item[1])
                continue
            _, equation, a, ref_label, ref = item
            left = [equation, *("  " + r for r in matrix_lines(a))]
            if ref_label is None:
                lines += left
                continue
            right = [ref_label, *("  " + r for r in matrix_lines(ref))]
            width = max(len(s) for s in left) + GAP
            lines += [(l_.ljust(width) + r_).rstrip()  # the longer column is never cut off
                      for l_, r_ in itertools.zip_longest(left, right, fillvalue="")]
        return lines


# --- the numbers --------------------------------------------------------------------


def autodiff_deltas(net: MLP, loss: Loss, params: Params, x, y, masks=None) -> tuple:
    """∂L/∂Z^(l) for every layer by ``jax.grad``: the loss as a function of a shift s^(l)
    added to each Z^(l), differentiated at s = 0 (a VJP through the forward pass, with the
    dropout ``masks`` if given)."""

    def objective_of_shifts(shifts):
        return loss_value(net, loss, *feedforward(net, params, x, shifts, masks), y)

    shifts = tuple(jnp.zeros((x.shape[0], n), x.dtype) for n in net.sizes[1:])
    with jax.default_matmul_precision("highest"):
        return jax.grad(objective_of_shifts)(shifts)


def _slope_name(act: Activation) -> str:
    return act.derivative or f"{act.name}'(z)"


def _jacobian(act: Activation, l: int, rhs: bool) -> str:
    """δ^(l) of an activation that is not element-wise: its VJP, with the rule's text."""
    text = f"δ^({l}) = J_{act.name}(Z^({l}))ᵀ ∂L/∂A^({l})"
    return text + f" = {act.derivative.split(' = ', 1)[1]}" if rhs and " = " in act.derivative else text


def explain(net: MLP, loss: Loss | str, params: Params, x, y, opt: Optimizer, opt_name: str = "",
            *, fused: bool = True, fmt: str = "text", source: str = "", key=None, stats=None) -> str:
    """The forward pass, the loss, the delta recursion and one optimizer step, as text.

    Math: Z^(l) = W^(l) A^(l-1) + b^(l); A^(l) = σ(Z^(l)); δ^(L) = ∂L/∂A^(L) ⊙ σ'(Z^(L));
          δ^(l) = (W^(l+1))ᵀ δ^(l+1) ⊙ σ'(Z^(l)); ∂L/∂W^(l) = δ^(l) (A^(l-1))ᵀ; ∂L/∂b^(l) = δ^(l).
          A layer-normalized hidden layer: Z = W A_prev, μ, σ² over its units, Ẑ = (Z - μ)/√(σ² + ε),
          Y = γ ⊙ Ẑ + β, A = σ(Y); backward ∂L/∂Y = ∂L/∂A ⊙ σ'(Y), dẐ = γ ⊙ ∂L/∂Y,
          δ = (1/√(σ² + ε)) (dẐ - mean(dẐ) - Ẑ ⊙ mean(dẐ ⊙ Ẑ)), ∂L/∂γ = ∂L/∂Y ⊙ Ẑ, ∂L/∂β = ∂L/∂Y.
          A net with batch norm follows a batch of m >= 2 examples (columns), L = (1/m) Σ_i L_i:
          μ_B, σ²_B over the batch for each unit, the same equations with the means over the batch,
          ∂L/∂γ = Σ_batch ∂L/∂Y ⊙ Ẑ, ∂L/∂β = Σ_batch ∂L/∂Y, ∂L/∂b = Σ_batch δ, and this step's
          μ_run ← (1 - r) μ_run + r μ_B, σ²_run ← (1 - r) σ²_run + r m/(m - 1) σ²_B (r: the momentum).

    Args:
      net: the (small) network.
      loss: a ``Loss`` or its name.
      params: its parameters (computed in float64).
      x: one example, shape ``(n_in,)`` or ``(1, n_in)``; for a net with batch norm, a batch of
        m >= 2 examples, shape ``(m, n_in)``.
      y: its target (a class label, a one-hot row or values); for a batch, one per row.
      opt: the optimizer to take one step with, from its initial state.
      opt_name: how to name the optimizer in the heading (e.g. ``"adam(lr=0.001)"``).
      fused: show the fused output delta where it applies; ``False`` shows the textbook
        chain ∂L/∂A^(L) then σ'.
      fmt: ``"text"`` (aligned, for a terminal) or ``"markdown"``.
      source: a line saying where the parameters come from, printed in the introduction.
      key: for a net with dropout, the key of the training pass's masks M^(l)
        (``fnann.mlp.dropout_masks``; default ``jax.random.key(0)``).
      stats: a batch-norm net's running statistics before the step (default ``init_stats``).

    Returns:
      The explanation, one string.

    Raises:
      ValueError, TypeError: for a bad network, parameters, example, target or format.

    Example:
      >>> from fnann.optim import sgd
      >>> net = MLP([2, 3, 2], hidden="sigmoid")
      >>> params = (Dense(np.full((3, 2), 0.5), np.zeros(3)), Dense(np.eye(2, 3), np.zeros(2)))
      >>> text = explain(net, "cross_entropy", params, [0.5, -1.0], 1, sgd(0.1))
      >>> "δ^(1) = (W^(2))ᵀ δ^(2) ⊙ σ'(Z^(1))" in text
      True
    """
    loss = get_loss(loss)
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}; got {fmt!r}.")
    if not isinstance(opt, Optimizer):
        raise TypeError(f"opt must be an fnann.optim.Optimizer; got {type(opt).__name__}.")
    x, y = np.asarray(x, np.float64), np.asarray(y)
    x = x.reshape(1, -1) if x.ndim == 1 else x
    if net.has_batch_norm:  # a batch: one target per row
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"x must be a batch of m >= 2 examples, shape (m, {net.n_in}): {net} has batch "
                             f"norm, which normalizes each unit over the batch (one example has no variance); "
                             f"got shape {x.shape}.")
        if stats is not None:
            check_stats(net, stats)
    else:
        y = y.reshape(1) if y.ndim == 0 else y.reshape(1, -1) if y.ndim == 1 else y  # one example
        if x.ndim != 2 or x.shape[0] != 1:
            raise ValueError(f"x must be one example, shape ({net.n_in},); got shape {x.shape}.")
        check_stats(net, stats)
        stats = ()
    check_inputs(net, params, x)
    check_head(net, loss)
    with jax.enable_x64(True):
        params = tuple(type(p)(*(jnp.asarray(np.asarray(a), jnp.float64) for a in p)) for p in params)
        x = jnp.asarray(x)
        y = jnp.asarray(y if np.issubdtype(y.dtype, np.integer) else y.astype(np.float64))
        check_targets(net, loss, x, y)
        if net.has_dropout:
            key = jax.random.key(0) if key is None else key
            check_key(key)
        else:
            key = None
        stats = init_stats(net, jnp.float64) if stats is None else stats  # μ_run, σ²_run before the step
        stats = tuple(type(s)(*(jnp.asarray(np.asarray(a), jnp.float64) for a in s)) for s in stats)
        numbers = jax.device_get(_compiled_compute(net, loss, opt, fused)(params, x, y, key, stats))
    page = _Page()
    _forward_and_backward(page, net, loss, fused, numbers)
    _step(page, numbers, opt_name, equations(opt))
    L, m = net.n_layers, x.shape[0]
    if net.has_batch_norm:
        _running_stats(page, net, numbers, m)
        title = f"fnann explain: {net}, loss {loss.name}, a batch of m = {m} examples (L: the batch mean)"
        intro = [f"Matrices have one column per example, as in the textbook: Z = W A + b, A = [a_1 ... a_{m}] "
                 "(fnann keeps each example as a row).",
                 f"Layers l = 1..{L}; A^(0) = X and ŷ = A^({L}). L = (1/m) Σ_i L_i, the mean over the m = {m} "
                 "examples, so every δ carries its 1/m.",
                 "Beside each δ and gradient: jax.grad's value."]
    else:
        title = f"fnann explain: {net}, loss {loss.name}, one example"
        intro = ["Vectors are columns, as in the textbook: Z = W A + b (fnann keeps the example as a row).",
                 f"Layers l = 1..{L}; A^(0) = x and ŷ = A^({L}). Beside each δ and gradient: jax.grad's value."]
    intro += [source] if source else []
    return page.render(fmt, title, intro)


@compiled_cache(maxsize=32)
def _compiled_compute(net: MLP, loss: Loss, opt: Optimizer, fused: bool):
    """``_compute`` for this configuration, jitted: ``(params, x, y, key, stats) -> numbers``."""
    return jax.jit(functools.partial(_compute, net, loss, opt, fused))


def _compute(net: MLP, loss: Loss, opt: Optimizer, fused: bool, params: Params, x, y, key=None,
             stats=()) -> dict:
    """Every number :func:`explain` prints, from fnann's functions, in one compiled call
    (with dropout, the training pass of the masks drawn from ``key``; with batch norm, the
    batch's columns and the running ``stats`` before and after the step)."""
    sigma = net.activations
    masks = dropout_masks(net, key, x.shape[0], x.dtype) if key is not None and net.has_dropout else None
    with jax.default_matmul_precision("highest"):
        y_hat, trace = feedforward(net, params, x, masks=masks)
        grads, deltas = backpropagate(net, params, trace, y, loss, fused=fused)
        ref_grads = jax.grad(lambda p: loss_value(net, loss, *feedforward(net, p, x, masks=masks), y))(params)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    # the example's row of a (1, n) array as a vector; with batch norm, the batch's (m, n) as columns (n, m)
    col = (lambda a: a.T) if net.has_batch_norm else (lambda a: a[0])  # noqa: E731
    one = lambda rows: [col(r) for r in rows]  # noqa: E731
    N = trace.layer_norms  # the normalized layers' NormTrace
    return {
        "params": params, "x": col(x), "Z": one(trace.Z), "A": one(trace.A),
        "y": col(as_targets(y_hat, y, one_hot=loss.labels)),
        "loss": loss_value(net, loss, y_hat, trace, y), "dL_dA": col(loss.grad(y_hat, y)),
        "grads": grads, "deltas": one(deltas), "ref_grads": ref_grads,
        "ref_deltas": one(autodiff_deltas(net, loss, params, x, y, masks)),
        "M": [None if m is None else col(m) for m in trace.M] or [None] * (net.n_layers - 1),
        "da": [col(dense_backward(params[l], trace.A[l], deltas[l], HIGHEST)[1]) for l in range(net.n_layers)],
        "slopes": [col(act.backward(u, jnp.ones_like(u)))  # σ'(Z), or σ'(Y) after a norm
                   for act, u in zip(sigma, trace.sigma_inputs)],
        "N": [None if t is None else jax.tree.map(col, t) for t in N],
        "dY": [None if d is None else col(d) for d in _norm_dY(net, params, trace, deltas)],
        "updates": updates, "state": state, "new": apply_updates(params, updates),
        "stats": stats, "new_stats": tuple(update_running(net.norms[l - 1], s, trace.N[l - 1])
                                           for l, s in zip(net.batch_norm_layers, stats)),
    }


def _norm_dY(net: MLP, params: Params, trace, deltas) -> list:
    """∂L/∂Y^(l) = ∂L/∂σ^(l) ⊙ σ'(Y^(l)) of each normalized hidden layer (None elsewhere): the
    delta recursion's own steps (``dense_backward``, ``dropout_backward``, σ's backward) up to
    the norm, whose backward turns it into δ^(l)."""
    L, out, dA = net.n_layers, [None] * net.n_layers, [None] * (net.n_layers + 1)
    M = trace.M or (None,) * (L - 1)
    for l in range(L - 1, 0, -1):  # hidden layers, top down; dA[l] = ∂L/∂A^(l)
        dA[l] = dense_backward(params[l], trace.A[l], deltas[l], HIGHEST)[1]
        if l + 1 in net.residual:
            dA[l] = dA[l] + dA[l + 1]
        if net.norms[l - 1] is not None:
            d_sigma = dropout_backward(dA[l], M[l - 1], net.dropout_rates[l - 1])
            out[l - 1] = net.activations[l - 1].backward(trace.N[l - 1].Y, d_sigma)
    return out


def _norm_names(net: MLP, l: int) -> tuple[str, str, str, str]:
    """Layer l's norm as its equations name it: ``(μ, σ², mean, over)``; layer norm's μ^(l),
    σ²^(l), mean over its units, batch norm's μ_B^(l), σ²_B^(l), mean_batch (the same
    equations, the means over the other axis)."""
    if net.norms[l - 1].axis == -1:
        return f"μ^({l})", f"σ²^({l})", "mean", "its units"
    return f"μ_B^({l})", f"σ²_B^({l})", "mean_batch", "the batch"


def _norm_forward(page: _Page, net: MLP, l: int, n: dict) -> None:
    """Layer l's norm, forward: μ, σ², Ẑ, Y = γ ⊙ Ẑ + β (``fnann.norms.normalize``'s numbers)."""
    t, (mu, var, _, over) = n["N"][l - 1], _norm_names(net, l)
    page.value(f"{mu} = mean of Z^({l}) over {over}", t.mean)
    page.value(f"{var} = mean of (Z^({l}) - {mu})² over {over}", t.var)
    page.value(f"Ẑ^({l}) = (Z^({l}) - {mu}) / √({var} + ε),  ε = {net.norms[l - 1].eps:g}", t.Z_hat)
    page.value(f"Y^({l}) = γ^({l}) ⊙ Ẑ^({l}) + β^({l})", t.Y)


def _norm_backward(page: _Page, net: MLP, l: int, rule: str, n: dict) -> None:
    """Layer l's norm, backward: ∂L/∂Y, ∂L/∂Ẑ = γ ⊙ ∂L/∂Y and δ^(l) = ∂L/∂Z^(l) beside jax.grad's
    (``fnann.norms.norm_backward``'s δ, the recursion's own)."""
    dY, (_, var, mean, over) = n["dY"][l - 1], _norm_names(net, l)
    gamma = np.asarray(n["params"][l - 1].gamma)
    page.value(f"∂L/∂Y^({l}) = {rule} ⊙ σ'(Y^({l}))", dY)
    page.value(f"∂L/∂Ẑ^({l}) = γ^({l}) ⊙ ∂L/∂Y^({l})", (gamma if dY.ndim == 1 else gamma[:, None]) * dY)
    dz_hat, z_hat = f"∂L/∂Ẑ^({l})", f"Ẑ^({l})"
    page.line(f"δ^({l}) = (1/√({var} + ε)) ({dz_hat} - {mean}({dz_hat}) - {z_hat} ⊙ {mean}({dz_hat} ⊙ {z_hat}))")
    page.value(f"δ^({l}) = ∂L/∂Z^({l})   (the means over {over})", n["deltas"][l - 1], f"jax.grad: ∂L/∂Z^({l})",
               n["ref_deltas"][l - 1])


def _forward_and_backward(page: _Page, net: MLP, loss: Loss, fused: bool, n: dict) -> None:
    L, sigma, params, Z, A = net.n_layers, net.activations, n["params"], n["Z"], n["A"]
    M, p = (*n["M"], None), (*net.dropout_rates, 0.0)  # M^(l), p_l of the hidden layers; none at L
    dropped = lambda l: f" ⊙ M^({l}) / (1 - {p[l - 1]:g})" if M[l - 1] is not None else ""  # noqa: E731
    batch = net.has_batch_norm  # columns: the batch's examples; L the batch mean
    total = "Σ_batch " if batch else ""  # ∂L/∂b, ∂L/∂γ, ∂L/∂β sum over the batch's columns
    if batch:
        page.section("1. The batch and the parameters")
        page.value("X = A^(0)   (a column per example)", n["x"], "y" + (" (one-hot)" if loss.labels else ""), n["y"])
    else:
        page.section("1. The example and the parameters")
        page.value("x = A^(0)", n["x"], "y" + (" (one-hot)" if loss.labels else ""), n["y"])
    normed = (*(norm is not None for norm in net.norms), False)  # layer l's at normed[l - 1]
    for l in range(1, L + 1):
        if normed[l - 1]:
            page.value(f"W^({l})   shape {params[l - 1].W.shape}", params[l - 1].W, f"γ^({l})", params[l - 1].gamma)
            page.value(f"β^({l})   ({net.norms[l - 1].name} norm: β^({l}) is the shift, no b^({l}))",
                       params[l - 1].beta)
        else:
            page.value(f"W^({l})   shape {params[l - 1].W.shape}", params[l - 1].W, f"b^({l})", params[l - 1].b)

    page.section("2. Forward pass")
    for l in range(1, L + 1):
        page.value(f"Z^({l}) = W^({l}) A^({l - 1})" + ("" if normed[l - 1] else f" + b^({l})"), Z[l - 1])
        if normed[l - 1]:
            _norm_forward(page, net, l, n)
        skip = f"A^({l - 1}) + " if l in net.residual else ""
        if M[l - 1] is not None:
            page.value(f"M^({l}) ~ Bernoulli(1 - {p[l - 1]:g})   (dropout, training)", M[l - 1])
        arg = f"Y^({l})" if normed[l - 1] else f"Z^({l})"
        page.value(f"A^({l}) = {skip}{sigma[l - 1].name}({arg}){dropped(l)}" + (" = ŷ" if l == L else ""), A[l])

    page.section("3. Loss")
    formula = loss.formula or f"L = {loss.name}(ŷ, y)"
    if batch:  # each example's L_i, then their mean
        page.line("L_i" + formula.removeprefix("L") + "   (example i's loss)")
        formula = f"L = (1/m) Σ_i L_i   (the mean over the batch, m = {n['x'].shape[1]})"
    page.line(formula + f" = {float(n['loss']):.6f}")

    deltas, ref_deltas = n["deltas"], n["ref_deltas"]
    page.section("4. Backward pass: the delta recursion (right: jax.grad)")
    out = sigma[L - 1]
    ref = f"jax.grad: ∂L/∂Z^({L})"
    if fused and is_fused(loss, out):
        per_unit = "(1/n)" in (loss.formula or "")  # the loss divides by the outputs too: δ^(L) carries 1/(m n)
        if batch:
            fused_rule = f"(A^({L}) - y) / {'(m n)' if per_unit else 'm'}"
        else:  # one example: m = 1; a mean over n > 1 outputs keeps its 1/n
            fused_rule = f"(A^({L}) - y) / n" if per_unit and net.n_out > 1 else f"A^({L}) - y"
        page.value(f"δ^({L}) = ∂L/∂Z^({L}) = {fused_rule}   ({out.name} + {loss.name}, fused)", deltas[L - 1],
                   ref, ref_deltas[L - 1])
    elif not out.elementwise:
        page.value(f"∂L/∂A^({L}) = ∂L/∂ŷ", n["dL_dA"])
        page.value(_jacobian(out, L, rhs=True), deltas[L - 1], ref, ref_deltas[L - 1])
    else:
        page.value(f"∂L/∂A^({L}) = ∂L/∂ŷ", n["dL_dA"])
        page.value(f"σ'(Z^({L})),  {_slope_name(out)}", n["slopes"][L - 1])
        page.value(f"δ^({L}) = ∂L/∂A^({L}) ⊙ σ'(Z^({L}))", deltas[L - 1], ref, ref_deltas[L - 1])
    dA = {}  # ∂L/∂A^(l): through W^(l+1), and through the skip of layer l + 1 if it has one
    for l in range(L - 1, 0, -1):
        act, ref = sigma[l - 1], f"jax.grad: ∂L/∂Z^({l})"
        skip = l + 1 in net.residual
        dA[l] = n["da"][l] + dA[l + 1] if skip else n["da"][l]
        page.value(f"(W^({l + 1}))ᵀ δ^({l + 1})" + (f" + ∂L/∂A^({l + 1})" if skip else "") + f" = ∂L/∂A^({l})", dA[l])
        if M[l - 1] is not None:  # ∂L/∂σ^(l) = ∂L/∂A^(l) ⊙ M^(l) / (1 - p_l), the same mask as the forward pass
            page.value(f"∂L/∂σ^({l}) = ∂L/∂A^({l}){dropped(l)}", dA[l] * M[l - 1] / (1 - p[l - 1]))
        rule = (f"∂L/∂σ^({l})" if M[l - 1] is not None else f"∂L/∂A^({l})" if skip
                else f"(W^({l + 1}))ᵀ δ^({l + 1})")
        if normed[l - 1]:
            if act.elementwise:
                page.value(f"σ'(Y^({l})),  {_slope_name(act)}", n["slopes"][l - 1])
            _norm_backward(page, net, l, rule if act.elementwise else f"J_{act.name}(Y^({l}))ᵀ {rule}", n)
            continue
        if not act.elementwise:
            page.value(_jacobian(act, l, rhs=False), deltas[l - 1], ref, ref_deltas[l - 1])
            continue
        page.value(f"σ'(Z^({l})),  {_slope_name(act)}", n["slopes"][l - 1])
        page.value(f"δ^({l}) = {rule} ⊙ σ'(Z^({l}))", deltas[l - 1], ref, ref_deltas[l - 1])
    grads, ref_grads = n["grads"], n["ref_grads"]
    for l in range(L, 0, -1):
        page.value(f"∂L/∂W^({l}) = δ^({l}) (A^({l - 1}))ᵀ", grads[l - 1].W, f"jax.grad: ∂L/∂W^({l})",
                   ref_grads[l - 1].W)
        if normed[l - 1]:
            page.value(f"∂L/∂γ^({l}) = {total}∂L/∂Y^({l}) ⊙ Ẑ^({l})", grads[l - 1].gamma,
                       f"jax.grad: ∂L/∂γ^({l})", ref_grads[l - 1].gamma)
            page.value(f"∂L/∂β^({l}) = {total}∂L/∂Y^({l})", grads[l - 1].beta, f"jax.grad: ∂L/∂β^({l})",
                       ref_grads[l - 1].beta)
        else:
            page.value(f"∂L/∂b^({l}) = {total}δ^({l})", grads[l - 1].b, f"jax.grad: ∂L/∂b^({l})", ref_grads[l - 1].b)
    diffs = [np.max(np.abs(a - b)) for a, b in zip(jax.tree.leaves((deltas, grads)),
                                                   jax.tree.leaves((ref_deltas, ref_grads)))]
    page.line(f"largest |hand-derived - jax.grad| over every δ and gradient: {max(diffs):.1e} (float64)")


def _step(page: _Page, n: dict, opt_name: str, lines: tuple[str, ...]) -> None:
    """The optimizer's step: its equations (``fnann.optim.equations``, beside its factory),
    the state after it, and every θ ← θ + Δθ."""
    state, params, new, updates = n["state"], n["params"], n["new"], n["updates"]
    kind = type(state).__name__
    page.section(f"5. One step of {opt_name or kind.removesuffix('State').lower()}, from its initial state")
    for eq in lines:
        page.line(eq)
    step = getattr(state, "step", None)
    if step is not None:
        bias_corrected = any("^t" in eq for eq in lines)  # t counts the updates, from 1
        page.line(f"updates applied: {int(step)}" + (f"   (t = {int(step)})" if bias_corrected else ""))
    moments = [f for f in getattr(state, "_fields", ()) if f != "step"]
    for l in range(1, len(params) + 1):
        for field_ in params[l - 1]._fields:  # W, b; W, gamma, beta for a normalized layer
            name = SYMBOLS.get(field_, field_)
            for field in moments:
                page.value(f"{field} for {name}^({l}) after the step", getattr(getattr(state, field)[l - 1], field_))
            page.value(f"{name}^({l}) ← {name}^({l}) + Δ{name}^({l})", getattr(new[l - 1], field_),
                       f"Δ{name}^({l})", getattr(updates[l - 1], field_))


def _running_stats(page: _Page, net: MLP, n: dict, m: int) -> None:
    """This step's update of each batch-norm layer's running statistics
    (``fnann.norms.update_running``), with its momentum and the batch's m/(m - 1):

        μ_run ← (1 - momentum) μ_run + momentum μ_B,
        σ²_run ← (1 - momentum) σ²_run + momentum · m/(m - 1) · σ²_B.
    """
    page.section("6. The running statistics, updated by this step (batch norm; used at evaluation)")
    for l, old, new in zip(net.batch_norm_layers, n["stats"], n["new_stats"]):
        r, (mu, var, _, _) = net.norms[l - 1].momentum, _norm_names(net, l)
        page.value(f"μ_run^({l}) ← (1 - {r:g}) μ_run^({l}) + {r:g} {mu}", new.mean, f"μ_run^({l}) before", old.mean)
        page.value(f"σ²_run^({l}) ← (1 - {r:g}) σ²_run^({l}) + {r:g} · {m}/{m - 1} · {var}", new.var,
                   f"σ²_run^({l}) before", old.var)


# --- the command line ---------------------------------------------------------------


def run_cli(args, opt: Optimizer, opt_name: str) -> str:
    """``fnann explain``: builds the network, the example and its target from the options.

    Unset ``--x``/``--y`` are drawn from ``--seed`` (inputs rounded to two decimals); the
    parameters are ``init``'s (float64) for that seed. With batch norm, ``--batch`` m rows of
    them (default 4; ``--x``/``--y`` give m rows one after the other).
    """
    net = MLP(args.sizes, hidden=hidden_activations(args.hidden), output=args.output, residual=args.residual,
              dropout=args.dropout, norm=norm_names(getattr(args, "norm", "none")))
    loss = get_loss(args.loss, argname="--loss") if args.loss else default_loss(net.output)
    m = getattr(args, "batch", None)
    if net.has_batch_norm:
        m = 4 if m is None else m
        if m < 2:
            raise UsageError(f"--batch {m}: batch norm normalizes each unit over the batch, which one example "
                             "does not have; give --batch 2 or more (default 4)")
    elif m not in (None, 1):
        raise UsageError(f"--batch {m}: explain follows a batch only for a net with batch norm (--norm batch); "
                         "otherwise one example")
    else:
        m = None
    with jax.enable_x64(True):
        params, x_drawn, y_drawn = jax.device_get(_compiled_draw(net, loss, m)(args.seed))
    x = np.asarray(args.x) if args.x is not None else np.round(x_drawn, 2)
    if args.y is None:  # labels and 0/1 targets as drawn, real values to two decimals
        y = y_drawn if loss.labels or loss.target_range is not None else np.round(y_drawn, 2)
    else:
        y = np.asarray(args.y)
        if loss.labels and y.size == 1:
            if y[0] != int(y[0]):
                raise ValueError(f"--y: a class label is an integer in [0, {net.n_out}); got {y[0]}.")
            y = y.astype(np.int64).reshape(())  # one class label, not a row of values
    if m is not None:  # a batch: m rows, given one after the other
        _rows_of(x, m, net.n_in, "--x", "inputs")
        x = x.reshape(m, net.n_in)
        if args.y is not None:
            if loss.labels and y.size == m:
                if np.any(y != np.round(y)):
                    raise ValueError(f"--y: class labels are integers in [0, {net.n_out}); got {args.y}.")
                y = y.astype(np.int64)
            else:
                _rows_of(y, m, net.n_out, "--y", "outputs", " (or m class labels)" if loss.labels else "")
                y = y.reshape(m, net.n_out)
    elif x.size != net.n_in:
        raise ValueError(f"--x has {x.size} values but the network takes {net.n_in} inputs.")
    if m is None and y.ndim == 1 and y.size != net.n_out:
        raise ValueError(f"--y has {y.size} values but the network has {net.n_out} outputs"
                         + (" (or give one class label)." if loss.labels else "."))
    return explain(net, loss, params, x, y, opt, opt_name, fused=not args.textbook, fmt=args.format,
                   key=jax.random.fold_in(jax.random.key(args.seed), 1) if net.has_dropout else None,
                   source=f"Parameters: fnann.init with seed {args.seed} (float64); "
                   + ("x and y given." if args.x is not None and args.y is not None else
                      "unset x, y drawn from the same seed."))


def _rows_of(a: np.ndarray, m: int, n: int, option: str, what: str, extra: str = "") -> None:
    if a.size != m * n:
        raise ValueError(f"{option} has {a.size} values but a batch of m = {m} examples of {n} {what} takes "
                         f"m·{n} = {m * n}{extra}, one row after the other.")


@compiled_cache(maxsize=32)
def _compiled_draw(net: MLP, loss: Loss | str, m: int | None = None):
    """``_draw`` for this network, loss and batch, jitted: ``seed -> (params, x, y)``."""
    return jax.jit(functools.partial(_draw, net, loss, m))


def _draw(net: MLP, loss: Loss | str, m: int | None, seed):
    """init's float64 parameters for ``seed``, and an example and target drawn from it (one compile);
    for ``m`` (batch norm), m of them as rows."""
    from fnann.mlp import init

    k_init, k_x, k_y = jax.random.split(jax.random.key(seed), 3)
    y = random_targets(get_loss(loss), k_y, m, net.n_out, jnp.float64)
    x = jax.random.normal(k_x, (net.n_in,) if m is None else (m, net.n_in), jnp.float64)
    return init(k_init, net, jnp.float64), x, y
