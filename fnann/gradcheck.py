"""Verifying the hand-derived backward pass against autodiff and finite differences.

``check_grads`` runs in float64 (it enters ``jax.enable_x64(True)`` for its own duration
only) with every matrix product at ``Precision.HIGHEST``, and compares, per layer and per
parameter, the manual gradient with

* ``jax.grad`` of the same scalar loss, over every entry, and
* central finite differences, (L(θ + ε e_i) - L(θ - ε e_i)) / 2ε, over a random sample of
  entries of each array (all of them with ``n_fd=None``).

An array passes when ``max |manual - reference| <= rtol * scale + atol``, where ``scale`` is
the largest magnitude of the reference gradient in that array ("relative to the gradient's
scale"). Against finite differences ``atol`` grows by their round-off: L itself is only known
to about u |L| (u the float64 unit roundoff), so a central difference carries an error of
about u |L| / ε whatever the gradient; an exactly-zero gradient (a dead layer, a network at
the optimum of its targets) whose finite difference is that round-off passes, where a fixed
``atol`` would report FAILED. The allowance is ``ROUNDOFF * u * |L| / ε``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from fnann import checks
from fnann.backprop import loss_value, value_and_grad
from fnann.caches import compiled_cache
from fnann.checks import check_has_rows, check_head, check_inputs, check_targets
from fnann.inference import to_device
from fnann.losses import Loss, get_loss
from fnann.mlp import MLP, Params, feedforward

HIGHEST = jax.lax.Precision.HIGHEST
ROUNDOFF = 16  # round-off of a central difference, in units of u |L| / eps (see the module doc)


@dataclasses.dataclass(frozen=True)
class GradCheckRow:
    """The comparison for one parameter array (``W`` or ``b`` of one layer)."""

    layer: int  # textbook index l = 1..L
    param: str  # "W" or "b"
    shape: tuple[int, ...]
    scale: float  # max |dL/dθ| (autodiff) over the array
    autodiff_abs: float  # max |manual - autodiff|
    autodiff_rel: float  # autodiff_abs / scale
    fd_abs: float  # max |manual - finite difference| over the sampled entries
    fd_rel: float  # fd_abs / scale of the sampled finite differences
    n_fd: int  # entries checked by finite differences
    passed: bool
    n_kink: int = 0  # sampled entries left out: their ±eps step crossed a kink


@dataclasses.dataclass(frozen=True)
class GradCheckReport:
    """Result of :func:`check_grads`; ``str(report)`` is a readable table.

    Attributes:
      net: the network checked.
      loss_name: the loss checked.
      loss_value: L at the parameters (float64).
      rows: one :class:`GradCheckRow` per parameter array, layer by layer.
      autodiff_rtol, fd_rtol, atol, eps: the tolerances and the finite-difference step.
      passed: whether every row passed.
      fd_atol: the absolute tolerance against finite differences: ``atol`` plus their
        round-off, ``ROUNDOFF * u * |L| / eps``.
    """

    net: MLP
    loss_name: str
    loss_value: float
    rows: tuple[GradCheckRow, ...]
    autodiff_rtol: float
    fd_rtol: float
    atol: float
    eps: float
    passed: bool
    fd_atol: float = 0.0

    def __bool__(self) -> bool:
        return self.passed

    @property
    def max_autodiff_rel(self) -> float:
        return max(r.autodiff_rel for r in self.rows)

    @property
    def max_fd_rel(self) -> float:
        return max(r.fd_rel for r in self.rows)

    @property
    def n_kink(self) -> int:
        """Sampled finite-difference entries left out because their step crossed a kink."""
        return sum(r.n_kink for r in self.rows)

    def summary(self) -> str:
        """One line: passed or FAILED and the largest relative errors."""
        word = "passed" if self.passed else "FAILED"
        kinks = f" ({self.n_kink} left out: their step crossed a kink)" if self.n_kink else ""
        return (f"gradient check {word}: max relative error vs autodiff "
                f"{self.max_autodiff_rel:.1e}, vs finite differences {self.max_fd_rel:.1e}{kinks}")

    def __str__(self) -> str:
        head = ("layer", "param", "shape", "max|grad|", "vs autodiff abs", "rel",
                "vs finite diff abs", "rel", "n_fd", "kinks", "ok")
        body = [(str(r.layer), r.param, "x".join(map(str, r.shape)), f"{r.scale:.3e}",
                 f"{r.autodiff_abs:.2e}", f"{r.autodiff_rel:.2e}", f"{r.fd_abs:.2e}",
                 f"{r.fd_rel:.2e}", str(r.n_fd), str(r.n_kink), "yes" if r.passed else "NO")
                for r in self.rows]
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
        fmt = "  ".join(f"{{:>{w}}}" for w in widths)
        lines = [
            f"fnann gradient check: {self.net}, loss {self.loss_name} = {self.loss_value:.6g} "
            f"(float64, Precision.HIGHEST)",
            f"tolerance: |manual - ref| <= rtol*max|grad| + atol, rtol {self.autodiff_rtol:g} and "
            f"atol {self.atol:g} vs autodiff, rtol {self.fd_rtol:g} and atol {self.fd_atol:.2g} "
            f"(round-off included) vs central differences (eps {self.eps:g})",
            fmt.format(*head),
            fmt.format(*("-" * w for w in widths)),
            *(fmt.format(*row) for row in body),
            self.summary(),
        ]
        return "\n".join(lines)


def _fd_indices(rng: np.random.Generator, sizes: list[int], n_fd: int | None) -> list[np.ndarray]:
    """Per array, the flat entry indices to check by finite differences."""
    return [np.arange(n) if n_fd is None or n_fd >= n else np.sort(rng.choice(n, n_fd, replace=False))
            for n in sizes]


def _kink_sides(net: MLP, trace) -> list:
    """Per kinked layer, whether each pre-activation lies above each kink: ``Z^(l) > k``."""
    return [z[..., None] > jnp.asarray(sigma.kinks, z.dtype)
            for z, sigma in zip(trace.Z, net.activations) if sigma.kinks]


@compiled_cache(maxsize=32)
def _compiled_check(net: MLP, loss: Loss):
    """The whole check as one float64 program (one trace, one compilation-cache entry):
    ``(params, x, y, idx, eps) -> (L, manual grads, jax.grad's grads, central differences at
    the flat indices idx, whether each of their steps crossed a kink)``.

    A step crosses a kink when some Z^(l) of a kinked σ^(l) lies on different sides of a
    kink k at θ + ε e_i and at θ - ε e_i: the difference quotient then mixes the two
    one-sided slopes and is no evidence about the gradient."""

    def check(params, x, y, idx, eps):
        value, manual = value_and_grad(net, loss, "manual")(params, x, y)
        _, auto = value_and_grad(net, loss, "autodiff")(params, x, y)
        flat, unravel = ravel_pytree(params)

        def evaluate(theta):
            y_hat, trace = feedforward(net, unravel(theta), x)
            return loss_value(net, loss, y_hat, trace, y), _kink_sides(net, trace)

        def central_difference(i):
            step = jnp.zeros_like(flat).at[i].set(eps)
            (up, up_sides), (down, down_sides) = evaluate(flat + step), evaluate(flat - step)
            crossed = jnp.zeros((), bool)
            for u, d in zip(up_sides, down_sides):
                crossed = crossed | jnp.any(u != d)
            return (up - down) / (2 * eps), crossed

        fd, crossed = jax.lax.map(central_difference, idx, batch_size=64)
        return value, manual, auto, fd, crossed

    compiled = jax.jit(check)

    def run(*args):
        with jax.default_matmul_precision("highest"):  # traced (once) at Precision.HIGHEST
            return compiled(*args)

    return run


def check_grads(net: MLP, loss: Loss | str, params: Params, x, y, *, eps: float = 1e-6,
                n_fd: int | None = 32, autodiff_rtol: float = 1e-10, fd_rtol: float = 1e-6,
                atol: float = 1e-10, seed: int = 0) -> GradCheckReport:
    """Compares the manual gradients with ``jax.grad`` and central finite differences.

    Math: dL/dθ_i ≈ (L(θ + ε e_i) - L(θ - ε e_i)) / (2ε), error O(ε²).

    Runs in float64 at ``Precision.HIGHEST`` inside ``jax.enable_x64(True)``; the caller's
    x64 setting is left as it was.

    Args:
      net: the network.
      loss: a ``Loss`` or its name.
      params: parameters to check at (any float dtype; cast to float64).
      x: inputs, shape ``(batch, n_in)``.
      y: targets for ``loss``.
      eps: finite-difference step.
      n_fd: entries per array sampled for finite differences (``None``: all); an entry whose
        ±ε step moves a pre-activation across a kink of its activation (``Activation.kinks``)
        is left out and counted in ``GradCheckRow.n_kink``.
      autodiff_rtol, fd_rtol, atol: pass when ``max|manual - ref| <= rtol*scale + atol``.
      seed: picks the sampled entries (an int in [0, 2**31 - 1]).

    Returns:
      A :class:`GradCheckReport`; ``print(report)`` shows the table, ``report.passed`` the
      verdict.

    Example:
      >>> from fnann.mlp import init
      >>> net = MLP([3, 5, 2], hidden="tanh")
      >>> params = init(jax.random.key(0), net)
      >>> report = check_grads(net, "cross_entropy", params, jnp.ones((4, 3)), jnp.array([0, 1, 1, 0]))
      >>> report.passed
      True
    """
    loss = get_loss(loss)
    check_inputs(net, params, x)
    check_head(net, loss)
    check_has_rows(x, needed_by="check_grads")
    check_targets(net, loss, x, y)
    eps = checks.real(eps, "eps", 0, low_open=True)
    if n_fd is not None:
        checks.integer(n_fd, "n_fd", 1, what="an int >= 1 or None (every entry)")
    for name, tol in (("autodiff_rtol", autodiff_rtol), ("fd_rtol", fd_rtol), ("atol", atol)):
        checks.real(tol, name, 0)
    checks.seed(seed)
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: to_device(np.asarray(a, np.float64)), params)  # cast on the host
        x64 = to_device(np.asarray(x, np.float64))
        y_np = np.asarray(y)
        y64 = to_device(y_np.astype(np.int64 if np.issubdtype(y_np.dtype, np.integer) else np.float64))
        leaves = jax.tree.leaves(p64)
        sizes = [leaf.size for leaf in leaves]
        offsets = np.cumsum([0] + sizes[:-1])
        picks = _fd_indices(np.random.default_rng(seed), sizes, n_fd)
        idx = to_device(np.concatenate([o + p for o, p in zip(offsets, picks)]).astype(np.int64))
        value, manual, auto, fd, crossed = jax.device_get(_compiled_check(net, loss)(p64, x64, y64, idx, eps))
        auto_leaves = [np.asarray(a).ravel() for a in jax.tree.leaves(auto)]
        man_leaves = [np.asarray(m).ravel() for m in jax.tree.leaves(manual)]
        man_flat = np.concatenate(man_leaves)  # ravel_pytree's order, on the host

    fd_atol = atol + ROUNDOFF * np.finfo(np.float64).eps / 2 * abs(float(value)) / eps
    rows, start = [], 0
    for k, (m, a, pick, off) in enumerate(zip(man_leaves, auto_leaves, picks, offsets)):
        keep = ~crossed[start:start + len(pick)]  # entries whose step crossed no kink
        f, pick = fd[start:start + len(pick)][keep], pick[keep]
        start += len(keep)
        scale = float(np.max(np.abs(a), initial=0.0))
        ad_abs = float(np.max(np.abs(m - a), initial=0.0))
        fd_scale = float(np.max(np.abs(f), initial=0.0))
        fd_abs = float(np.max(np.abs(man_flat[off + pick] - f), initial=0.0))
        ok = ad_abs <= autodiff_rtol * scale + atol and fd_abs <= fd_rtol * max(fd_scale, scale) + fd_atol
        rows.append(GradCheckRow(
            layer=k // 2 + 1, param="W" if k % 2 == 0 else "b", shape=tuple(leaves[k].shape),
            scale=scale, autodiff_abs=ad_abs, autodiff_rel=ad_abs / scale if scale else ad_abs,
            fd_abs=fd_abs, fd_rel=fd_abs / fd_scale if fd_scale else fd_abs, n_fd=len(pick),
            n_kink=int(np.sum(~keep)), passed=bool(ok)))
    return GradCheckReport(net, loss.name, float(value), tuple(rows), autodiff_rtol, fd_rtol,
                           atol, eps, all(r.passed for r in rows), fd_atol)
