"""Verifying the hand-derived backward pass against autodiff and finite differences.

``check_grads`` runs in float64 (it enters ``jax.enable_x64(True)`` for its own duration
only) with every matrix product at ``Precision.HIGHEST``, and compares, per layer and per
parameter, the manual gradient with

* ``jax.grad`` of the same scalar loss, over every entry, and
* central finite differences, (L(θ + ε e_i) - L(θ - ε e_i)) / 2ε, over a random sample of
  entries of each array (all of them with ``n_fd=None``).

Every comparison is per array ("leaf": one layer's ``W`` or ``b``) and per entry, relative to
that leaf's own gradient scale, so a small gradient is held to the same relative standard as
a large one (a fixed absolute tolerance passes any bug in a leaf whose gradient is below it).
With u the float64 unit roundoff and ``scale = max |dL/dθ|`` (autodiff) over the leaf, entry i
passes when

    vs autodiff:   |manual_i - auto_i| <= autodiff_rtol * scale + atol + AD_ROUNDOFF * u * T_i
    vs central differences:
                   |manual_i - fd_i| <= fd_rtol * scale + atol + |fd_i(ε) - fd_i(2ε)|
                                        + FD_ROUNDOFF * u * R / ε

* ``T_i`` is the sum of the magnitudes of the terms that make up the entry: the delta
  recursion run on absolute values, D^(L) = |∂L/∂Z^(L)|, D^(l) = (D^(l+1) |W^(l+1)|) ⊙ |σ'(Z^(l))|,
  then T(W^(l)) = D^(l)ᵀ |A^(l-1)| and T(b^(l)) = Σ_batch D^(l). Two float64 evaluations of
  the same sums in different orders differ by a few u T (the standard bound on a dot product),
  so this floor is round-off and nothing else; it vanishes where the gradient is exactly 0.
* ``|fd(ε) - fd(2ε)|`` bounds the truncation error ε² L‴/6 of the central difference: the two
  differ by 3 ε² L‴/6 (Richardson), so the allowance is three times the truncation.
* ``R / ε`` is the round-off of a central difference: each L is computed with an error of
  about u R, R = |L| + Σ_l Σ D^(l) ⊙ (|A^(l-1)| |W^(l)|ᵀ + |b^(l)| + |Z^(l)|) (the forward
  pass's round-off of each Z, weighted by how much L moves with it), and the difference of two
  divided by 2ε carries u R / ε. An exactly-zero gradient (a dead layer, a network at the
  optimum of its targets) whose finite difference is that round-off passes.

A central difference whose ±ε or ±2ε step moves a pre-activation across a kink of its
activation (``Activation.kinks``, ReLU's 0), or an argument of the loss across the loss's kink
(``Loss.sides``: |r| at 0, the hinge's margin at 0), measures a mix of the two one-sided slopes; such
entries are left out and counted (``n_kink``), never reported as FAILED.
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
from fnann.activations import Activation
from fnann.mlp import MLP, Dense, Normed, Params, Trace, dropout_masks, feedforward

HIGHEST = jax.lax.Precision.HIGHEST
U = float(np.finfo(np.float64).eps) / 2  # the float64 unit roundoff
AD_ROUNDOFF = 64  # manual vs autodiff round-off, in units of u T (see the module doc)
FD_ROUNDOFF = 2  # round-off of a central difference, in units of u R / eps (R is already a worst case)


@dataclasses.dataclass(frozen=True)
class GradCheckRow:
    """The comparison for one parameter array (``W`` or ``b`` of one layer; ``gamma``, ``beta``
    of a normalized one)."""

    layer: int  # textbook index l = 1..L
    param: str  # "W", "b", "gamma" or "beta"
    shape: tuple[int, ...]
    scale: float  # max |dL/dθ| (autodiff) over the array
    autodiff_abs: float  # max |manual - autodiff|
    autodiff_rel: float  # autodiff_abs / scale
    fd_abs: float  # max |manual - finite difference| over the sampled entries
    fd_rel: float  # fd_abs / scale of the sampled finite differences
    n_fd: int  # entries checked by finite differences (sampled, less those at kinks)
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
      fd_atol: the absolute tolerance against finite differences shared by every entry:
        ``atol`` plus their round-off, ``FD_ROUNDOFF * u * R / eps`` (see the module doc).
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
            f"tolerance per entry: |manual - ref| <= rtol*max|grad| + atol + round-off; vs autodiff "
            f"rtol {self.autodiff_rtol:g}, atol {self.atol:g}, round-off {AD_ROUNDOFF}u*sum|terms|; "
            f"vs central differences (eps {self.eps:g}) rtol {self.fd_rtol:g}, atol {self.atol:g}, "
            f"round-off {self.fd_atol - self.atol:.2g}, truncation |fd(eps) - fd(2eps)|",
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


def _kink_sides(net: MLP, trace: Trace) -> list:
    """Per kinked layer, whether each activation input lies above each kink: ``Z^(l) > k``
    (``Y^(l) > k`` for a normalized layer)."""
    return [z[..., None] > jnp.asarray(sigma.kinks, z.dtype)
            for z, sigma in zip(trace.sigma_inputs, net.activations) if sigma.kinks]


def _abs_backward(sigma: Activation, z, d):
    """The magnitude of σ's VJP for a non-negative ``d``: d ⊙ |σ'(z)| (element-wise σ, from
    ``jax.vjp`` of σ itself, not the hand-derived rule), else |J_σᵀ d| + |σ(z)| ⊙ d."""
    a, vjp = jax.vjp(sigma.fn, z)
    if sigma.elementwise:
        return d * jnp.abs(vjp(jnp.ones_like(z))[0])
    return jnp.abs(vjp(d)[0]) + jnp.abs(a) * d


def _magnitudes(net: MLP, loss: Loss, params: Params, trace: Trace, y, value):
    """``(T, R)`` of the module doc: per leaf the sum of the magnitudes of the terms of each
    gradient entry, and the scale of L's round-off.

    Math: D^(L) = |∂L/∂Z^(L)| (by ``jax.grad`` of L in Z^(L)), D^(l) = (D^(l+1) |W^(l+1)|) ⊙ |σ'(Z^(l))|;
          T(W^(l)) = D^(l)ᵀ |A^(l-1)|, T(b^(l)) = Σ_batch D^(l);
          R = |L| + Σ_l Σ D^(l) ⊙ (|A^(l-1)| |W^(l)|ᵀ + |b^(l)| + |Z^(l)|);
          with dropout masks in the trace, D^(l) = (D^(l+1) |W^(l+1)| ⊙ M^(l) / (1 - p_l)) ⊙ |σ'(Z^(l))|;
          a normalized layer (Y = γ ⊙ Ẑ + β, ``fnann.norms``) runs its backward on magnitudes:
          D_Y^(l) = D_σ ⊙ |σ'(Y^(l))|, D_Ẑ = |γ| ⊙ D_Y, D^(l) = (D_Ẑ + mean(D_Ẑ) + |Ẑ| ⊙ mean(D_Ẑ ⊙ |Ẑ|))
          / √(σ² + ε); T(γ^(l)) = Σ_batch D_Y ⊙ |Ẑ|, T(β^(l)) = Σ_batch D_Y; R adds the norm's
          Σ D_Y ⊙ (|γ| ⊙ (|Ẑ| + 1) + |β|) (Y's round-off, with that of μ and σ² inside Ẑ's).
    """
    Z, A, N = trace.Z, trace.A, trace.layer_norms
    M, p = (trace.M or (None,) * (net.n_layers - 1)), net.dropout_rates

    def loss_of_output(z):
        a = net.output.fn(z)
        return loss_value(net, loss, a, Trace(Z[:-1] + (z,), A[:-1] + (a,)), y)

    D = jnp.abs(jax.grad(loss_of_output)(Z[-1]))
    T, R, D_A, D_Y = [None] * net.n_layers, jnp.abs(value), None, None  # D_A: |∂L/∂A| of the layer above
    for l in range(net.n_layers - 1, -1, -1):  # 0-based: params[l] is layer l + 1
        W, a_prev = jnp.abs(params[l].W), jnp.abs(A[l])
        if N[l] is None:
            T[l] = Dense(D.T @ a_prev, jnp.sum(D, axis=0))
            R = R + jnp.sum(D * (a_prev @ W.T + jnp.abs(params[l].b) + jnp.abs(Z[l])))
        else:
            gamma, z_hat = jnp.abs(params[l].gamma), jnp.abs(N[l].Z_hat)
            T[l] = Normed(D.T @ a_prev, jnp.sum(D_Y * z_hat, axis=0), jnp.sum(D_Y, axis=0))
            R = R + jnp.sum(D * (a_prev @ W.T + jnp.abs(Z[l])))
            R = R + jnp.sum(D_Y * (gamma * (z_hat + 1) + jnp.abs(params[l].beta)))
        skip = D_A if l + 1 in net.residual else None  # A^(l+1) = A^(l) + σ(Z^(l+1)): its sum and path
        if skip is not None:
            R = R + jnp.sum(skip * (a_prev + jnp.abs(A[l + 1])))
        if l > 0:
            D_A = D @ W if skip is None else D @ W + skip
            D_sigma = D_A if M[l - 1] is None else D_A * M[l - 1] / (1 - p[l - 1])
            if N[l - 1] is None:
                D = _abs_backward(net.activations[l - 1], Z[l - 1], D_sigma)
            else:
                norm, n = net.norms[l - 1], N[l - 1]
                D_Y = _abs_backward(net.activations[l - 1], n.Y, D_sigma)
                D_hat, z_hat = jnp.abs(params[l - 1].gamma) * D_Y, jnp.abs(n.Z_hat)
                mean = lambda a: jnp.mean(a, axis=norm.axis, keepdims=True)  # noqa: E731
                D = n.inv_sigma * (D_hat + mean(D_hat) + z_hat * mean(D_hat * z_hat))
    return tuple(T), R


@compiled_cache(maxsize=32)
def _compiled_check(net: MLP, loss: Loss):
    """The whole check as one float64 program (one trace, one compilation-cache entry):
    ``(params, x, y, idx, eps, key) -> (L, manual grads, jax.grad's grads, T, R, central differences
    with steps ε and 2ε at the flat indices idx, whether each of their steps crossed a kink)``.

    A step crosses a kink when some Z^(l) of a kinked σ^(l) lies on different sides of a
    kink k at two of θ ± ε e_i, θ ± 2ε e_i: the difference quotient then mixes the two
    one-sided slopes and is no evidence about the gradient."""

    def check(params, x, y, idx, eps, key=None):  # key: the dropout masks, fixed for every θ ± ε e_i
        masks = None if key is None else dropout_masks(net, key, x.shape[0], params[0].W.dtype)
        value, manual = value_and_grad(net, loss, "manual")(params, x, y, None, key)
        _, auto = value_and_grad(net, loss, "autodiff")(params, x, y, None, key)
        T, R = _magnitudes(net, loss, params, feedforward(net, params, x, masks=masks)[1], y, value)
        flat, unravel = ravel_pytree(params)

        def evaluate(theta):
            y_hat, trace = feedforward(net, unravel(theta), x, masks=masks)
            sides = _kink_sides(net, trace) + ([loss.sides(y_hat, y)] if loss.sides is not None else [])
            return loss_value(net, loss, y_hat, trace, y), sides

        def central_differences(i):
            (up2, s_up2), (up, s_up), (down, s_down), (down2, s_down2) = (
                evaluate(flat.at[i].add(h)) for h in (2 * eps, eps, -eps, -2 * eps))
            crossed = jnp.zeros((), bool)
            for s0, *rest in zip(s_up2, s_up, s_down, s_down2):
                for s in rest:
                    crossed = crossed | jnp.any(s0 != s)
            return (up - down) / (2 * eps), (up2 - down2) / (4 * eps), crossed

        fd, fd2, crossed = jax.lax.map(central_differences, idx, batch_size=64)
        return value, manual, auto, T, R, fd, fd2, crossed

    compiled = jax.jit(check)

    def run(*args):
        with jax.default_matmul_precision("highest"):  # traced (once) at Precision.HIGHEST
            return compiled(*args)

    return run


def check_grads(net: MLP, loss: Loss | str, params: Params, x, y, *, eps: float = 1e-6,
                n_fd: int | None = 32, autodiff_rtol: float = 1e-10, fd_rtol: float = 1e-6,
                atol: float = 0.0, seed: int = 0, key=None) -> GradCheckReport:
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
      autodiff_rtol, fd_rtol, atol: entry i of a leaf passes when ``|manual_i - ref_i| <=
        rtol * scale + atol + round-off`` (``scale = max |dL/dθ|`` over the leaf; the round-off
        and truncation allowances are in the module doc). ``atol`` is 0 by default: a fixed
        absolute allowance would pass any bug in a leaf whose gradients are below it.
      seed: picks the sampled entries (an int in [0, 2**31 - 1]).
      key: for a net with dropout, checks the training pass of the masks
        ``dropout_masks(net, key, batch)`` (fixed for every finite difference); ``None``
        (default): the evaluation pass, which drops nothing.

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
    checks.check_norm_rows(net, x)
    check_targets(net, loss, x, y)
    eps = checks.real(eps, "eps", 0, low_open=True)
    if n_fd is not None:
        checks.integer(n_fd, "n_fd", 1, what="an int >= 1 or None (every entry)")
    for name, tol in (("autodiff_rtol", autodiff_rtol), ("fd_rtol", fd_rtol), ("atol", atol)):
        checks.real(tol, name, 0)
    checks.seed(seed)
    if key is not None:
        checks.check_key(key)
    key = key if net.has_dropout else None
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: to_device(np.asarray(a, np.float64)), params)  # cast on the host
        x64 = to_device(np.asarray(x, np.float64))
        y_np = np.asarray(y)
        y64 = to_device(y_np.astype(np.int64 if np.issubdtype(y_np.dtype, np.integer) else np.float64))
        leaves = jax.tree.leaves(p64)
        names = [(l, field) for l, layer in enumerate(p64, start=1) for field in layer._fields]  # leaves' order
        sizes = [leaf.size for leaf in leaves]
        offsets = np.cumsum([0] + sizes[:-1])
        picks = _fd_indices(np.random.default_rng(seed), sizes, n_fd)
        idx = to_device(np.concatenate([o + p for o, p in zip(offsets, picks)]).astype(np.int64))
        value, manual, auto, T, R, fd, fd2, crossed = jax.device_get(
            _compiled_check(net, loss)(p64, x64, y64, idx, eps, key))
        man_leaves, auto_leaves, T_leaves = ([np.asarray(v).ravel() for v in jax.tree.leaves(tree)]
                                             for tree in (manual, auto, T))

    fd_atol = atol + FD_ROUNDOFF * U * float(R) / eps
    rows, start = [], 0
    for k, (m, a, t, pick) in enumerate(zip(man_leaves, auto_leaves, T_leaves, picks)):
        keep = ~crossed[start:start + len(pick)]  # entries whose steps crossed no kink
        f, f2 = fd[start:start + len(pick)][keep], fd2[start:start + len(pick)][keep]
        start += len(pick)
        pick = pick[keep]
        scale = float(np.max(np.abs(a), initial=0.0))
        ad_err, fd_err = np.abs(m - a), np.abs(m[pick] - f)
        ok = (np.all(ad_err <= autodiff_rtol * scale + atol + AD_ROUNDOFF * U * t)
              and np.all(fd_err <= fd_rtol * scale + fd_atol + np.abs(f - f2)))
        ad_abs, fd_abs = float(np.max(ad_err, initial=0.0)), float(np.max(fd_err, initial=0.0))
        fd_scale = float(np.max(np.abs(f), initial=0.0))
        rows.append(GradCheckRow(
            layer=names[k][0], param=names[k][1], shape=tuple(leaves[k].shape),
            scale=scale, autodiff_abs=ad_abs, autodiff_rel=ad_abs / scale if scale else ad_abs,
            fd_abs=fd_abs, fd_rel=fd_abs / fd_scale if fd_scale else fd_abs, n_fd=len(pick),
            n_kink=int(np.sum(~keep)), passed=bool(ok)))
    return GradCheckReport(net, loss.name, float(value), tuple(rows), autodiff_rtol, fd_rtol,
                           atol, eps, all(r.passed for r in rows), fd_atol)
