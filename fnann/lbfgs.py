"""L-BFGS written by hand: minimizes a smooth function of a pytree, compiled end to end.

One job: ``lbfgs(fun, x0, ...)`` with ``fun(x) -> (f(x), ∇f(x))``, stopping as scipy's
L-BFGS-B (no bounds) stops, so that an estimator's ``solver="lbfgs"`` can use it in place of
``scipy.optimize.minimize(method="L-BFGS-B")``. Notation (Nocedal & Wright, *Numerical
Optimization*, 2nd ed., ch. 3 and 7): x_k the iterate, g_k = ∇f(x_k), d_k the search
direction, α the step, and the last m = ``history`` pairs

    s_i = x_{i+1} - x_i,   y_i = g_{i+1} - g_i,   rho_i = 1 / (y_iᵀ s_i).

**Direction: the two-loop recursion** (N&W Alg. 7.4), d_k = -H_k g_k without forming H_k:

    q = g_k
    for i = k-1, ..., k-m (newest first):   alpha_i = rho_i s_iᵀ q;   q = q - alpha_i y_i
    r = gamma q,   gamma = s_{k-1}ᵀ y_{k-1} / y_{k-1}ᵀ y_{k-1}     (H_k^0 = gamma I; 1 with no pairs)
    for i = k-m, ..., k-1 (oldest first):   beta = rho_i y_iᵀ r;    r = r + (alpha_i - beta) s_i
    d_k = -r

The pairs live in a ring buffer of m rows (``S``, ``Y``, ``rho``); a pair is stored only if
s_iᵀ y_i > eps · y_iᵀ y_i (the curvature safeguard, eps the dtype's machine epsilon), so
every stored rho_i is positive and H_k stays positive definite.

**Step: the strong Wolfe conditions** for φ(α) = f(x_k + α d_k), c1 = 1e-3, c2 = 0.9
(scipy's ``dcsrch`` defaults):

    φ(α) <= φ(0) + c1 α φ'(0)          (sufficient decrease)
    |φ'(α)| <= c2 |φ'(0)|              (curvature)

found by N&W Alg. 3.5 (bracket, extrapolating by a cubic fit within [1.1, 4] times the
last stride) and Alg. 3.6 (zoom: the cubic's minimizer between the bracket's ends, kept
inside its middle 80%, else bisection). A trial whose value or gradient is not finite
counts as too long a step (it bounds the bracket from above), so NaN never reaches the
state. The first trial is α = 1, except at the first iteration, where it is 1/‖g_0‖
(L-BFGS-B's choice). If no trial
meets both conditions within ``max_linesearch`` evaluations, the best trial with sufficient
decrease is taken; if there is none, the run stops by the ftol rule where f changed by
rounding only (below), else the memory is dropped and the iteration retried along -g (as
L-BFGS-B does), and if that fails too the run stops (status 3) at x_k.

**Stopping rules**, as scipy's L-BFGS-B counts them (one iteration = one accepted step; a
function evaluation = one call of ``fun``), tested in this order after each iteration (so
a run that converges at its ``max_iter``-th iteration reports status 1, as scipy's does):

    k >= max_iter                                           status 1
    n_fun > max_fun                                         status 2  (a line search is never cut short)
    max_i |g_{k,i}| <= gtol                                 status 0  (also tested at x_0: 0 iterations)
    (f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol     status 0

Status 3: a non-finite f or ∇f at x_0, or a line search, along -g too, that found no step
with sufficient decrease; except where every trial was finite and none lowered f by more
than the ftol rule allows, (f_k - min φ) / max(|f_k|, |min φ|, 1) <= ftol: then f cannot be
reduced beyond rounding and the run stops at x_k by the ftol rule, status 0 (scipy's line search
then typically accepts a trial with a rounding warning and stops by the same rule; where
it instead reports "ABNORMAL", its status 2, the two statuses differ). scipy's ``status``
is 1 for both limits; here 1 is ``max_iter`` and 2 ``max_fun``.

The whole run is one compiled program: a ``lax.while_loop`` over iterations whose body holds
the line search's own ``lax.while_loop``, the one place ``fun`` is called (its first pass is
the evaluation at x_0), so the program holds one copy of ``fun``. It is cached by (fun,
history, x0's structure) and jitted over the shapes and dtypes of x0 and ``args`` and over
the numeric settings, so a second call with the same ``fun`` and shapes compiles nothing.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree

from fnann.caches import compiled_cache

C1, C2 = 1e-3, 0.9  # sufficient decrease and curvature constants (scipy's dcsrch)
STPMAX = 1e10  # L-BFGS-B's largest step without bounds
INT_MAX = 2**31 - 1  # counters are int32

# Why a run ended: the reason code (in the compiled program) -> (status, message). The
# messages are scipy's L-BFGS-B messages where scipy has one.
RUNNING = -1
REASONS = (
    (0, "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"),
    (0, "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH"),
    (1, "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"),
    (2, "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT"),
    (3, "ABNORMAL_TERMINATION_IN_LNSRCH: no step with sufficient decrease"),
    (3, "ABNORMAL: the value or gradient at x0 is not finite"),
)
GTOL, FTOL, MAX_ITER, MAX_FUN, LINE_SEARCH, NOT_FINITE = range(6)


class LBFGSResult(NamedTuple):
    """The outcome of :func:`lbfgs`.

    Attributes:
      x: the last accepted point (the best point found), a pytree like ``x0``.
      value: f(x).
      grad: ∇f(x), a pytree like ``x0``.
      n_iter: iterations (accepted steps), scipy's ``nit``.
      n_fun: calls of ``fun``, scipy's ``nfev``.
      status: 0 converged (gtol or ftol), 1 ``max_iter`` reached, 2 ``max_fun`` exceeded,
        3 the line search failed or ``fun`` was not finite at ``x0``.
      message: why it stopped, in scipy's words.
    """

    x: Any
    value: jax.Array
    grad: Any
    n_iter: int
    n_fun: int
    status: int
    message: str


class _Memory(NamedTuple):
    """The ring buffer of the last m pairs: row ``(head - 1) % m`` is the newest."""

    S: jax.Array  # (m, n) s_i
    Y: jax.Array  # (m, n) y_i
    rho: jax.Array  # (m,) 1 / (y_iᵀ s_i)
    count: jax.Array  # pairs stored, <= m
    head: jax.Array  # the row the next pair goes to


class _State(NamedTuple):
    x: jax.Array
    f: jax.Array
    g: jax.Array
    memory: _Memory
    k: jax.Array  # iterations
    n_fun: jax.Array
    reason: jax.Array  # RUNNING or an index into REASONS


def two_loop(g: jax.Array, memory: _Memory) -> jax.Array:
    """d = -H g by the two-loop recursion over the stored pairs (newest first, then oldest first)."""
    S, Y, rho, count, head = memory
    m = S.shape[0]
    row = lambda j: (head - 1 - j) % m  # j = 0 is the newest pair

    def newest_first(j, carry):
        q, alpha = carry
        i = row(j)
        a = jnp.where(j < count, rho[i] * (S[i] @ q), 0.0)  # alpha_i = rho_i s_iᵀ q
        return q - a * Y[i], alpha.at[i].set(a)

    q, alpha = lax.fori_loop(0, m, newest_first, (g, jnp.zeros_like(rho)))
    newest = row(0)
    yy = Y[newest] @ Y[newest]
    gamma = jnp.where(count > 0, (S[newest] @ Y[newest]) / jnp.where(count > 0, yy, 1.0), 1.0)

    def oldest_first(j, r):
        i = row(m - 1 - j)
        beta = rho[i] * (Y[i] @ r)  # beta = rho_i y_iᵀ r
        return r + jnp.where(m - 1 - j < count, alpha[i] - beta, 0.0) * S[i]

    return -lax.fori_loop(0, m, oldest_first, gamma * q)


def remember(memory: _Memory, s: jax.Array, y: jax.Array) -> _Memory:
    """Stores (s, y) over the oldest pair, unless sᵀy <= eps yᵀy (the curvature safeguard)."""
    S, Y, rho, count, head = memory
    sy, yy = s @ y, y @ y
    keep = sy > jnp.finfo(s.dtype).eps * yy
    stored = _Memory(S.at[head].set(s), Y.at[head].set(y), rho.at[head].set(1.0 / jnp.where(keep, sy, 1.0)),
                     jnp.minimum(count + 1, S.shape[0]), (head + 1) % S.shape[0])
    return jax.tree.map(lambda new, old: jnp.where(keep, new, old), stored, memory)


def cubic_minimizer(a, fa, da, b, fb, db):
    """The minimizer of the cubic through (a, fa, fa') and (b, fb, fb') (N&W eq. 3.59); NaN
    where the cubic has none."""
    d1 = da + db - 3 * (fa - fb) / (a - b)
    disc = d1 * d1 - da * db
    d2 = jnp.sign(b - a) * jnp.sqrt(jnp.maximum(disc, 0.0))
    t = b - (b - a) * (db + d2 - d1) / (db - da + 2 * d2)
    return jnp.where(disc >= 0, t, jnp.nan)


class _Search(NamedTuple):
    i: jax.Array  # evaluations so far
    alpha: jax.Array  # the next trial step
    lo: tuple  # (α, φ, φ', x, g): the best step with sufficient decrease so far (α = 0 at first)
    hi: tuple  # (α, φ, φ'): the bracket's other end (α = inf until one is found)
    f_min: jax.Array  # the least finite trial value
    finite: jax.Array  # every trial was finite
    done: jax.Array  # the strong Wolfe conditions hold at lo


def line_search(fx: Callable, x, f, g, d, alpha0, max_ls):
    """A step α along d satisfying the strong Wolfe conditions (N&W Alg. 3.5 and 3.6).

    Returns ``(ok, α, x + α d, φ(α), ∇f, evaluations, least trial value, all finite)``;
    ``ok`` is False when no trial gave sufficient decrease (then the point is x itself).
    """
    dphi0 = g @ d
    eps = jnp.finfo(x.dtype).eps

    def cond(st: _Search):
        bracketed = jnp.isfinite(st.hi[0])
        collapsed = bracketed & (jnp.abs(st.hi[0] - st.lo[0]) <= eps * jnp.abs(st.hi[0]))
        return ~st.done & (st.i < max_ls) & ~collapsed

    def body(st: _Search):
        alpha = st.alpha
        x_t = x + alpha * d
        f_t, g_t = fx(x_t)
        dphi = g_t @ d
        finite = jnp.isfinite(f_t) & jnp.all(jnp.isfinite(g_t))
        a_lo, f_lo, d_lo, _, _ = st.lo
        a_hi, f_hi, d_hi = st.hi
        bad = ~finite | (f_t > f + C1 * alpha * dphi0) | (f_t >= f_lo)  # too long: the new upper end
        wolfe = ~bad & (jnp.abs(dphi) <= -C2 * dphi0)
        flip = ~bad & ~wolfe & (dphi * (a_hi - a_lo) >= 0)  # the minimum lies between alpha and lo
        hi = jax.tree.map(lambda t, flipped, old: jnp.where(bad, t, jnp.where(flip, flipped, old)),
                          (alpha, f_t, dphi), (a_lo, f_lo, d_lo), st.hi)
        lo = jax.tree.map(lambda t, old: jnp.where(bad, old, t), (alpha, f_t, dphi, x_t, g_t), st.lo)
        # the next trial: inside the bracket (zoom) or beyond alpha (bracketing)
        w = hi[0] - lo[0]
        t = cubic_minimizer(lo[0], lo[1], lo[2], hi[0], hi[1], hi[2])
        inside = jnp.where(jnp.isfinite(t), jnp.clip(t, jnp.minimum(lo[0] + 0.1 * w, hi[0] - 0.1 * w),
                                                     jnp.maximum(lo[0] + 0.1 * w, hi[0] - 0.1 * w)),
                           lo[0] + 0.5 * w)
        stride = alpha - a_lo
        t = cubic_minimizer(a_lo, f_lo, d_lo, alpha, f_t, dphi)
        beyond = jnp.where(jnp.isfinite(t) & (t > alpha), jnp.clip(t, alpha + 1.1 * stride, alpha + 4 * stride),
                           alpha + 4 * stride)
        nxt = jnp.where(jnp.isfinite(hi[0]), inside, jnp.minimum(beyond, STPMAX))
        return _Search(st.i + 1, nxt, lo, hi, jnp.where(finite, jnp.minimum(st.f_min, f_t), st.f_min),
                       st.finite & finite, wolfe)

    zero, inf = jnp.zeros_like(f), jnp.full_like(f, jnp.inf)
    start = _Search(jnp.int32(0), alpha0, (zero, f, dphi0, x, g), (inf, jnp.full_like(f, jnp.nan), zero),
                    inf, jnp.bool_(True), jnp.bool_(False))
    st = lax.while_loop(cond, body, start)
    a, f_new, _, x_new, g_new = st.lo
    return a > 0, x_new, f_new, g_new, st.i, st.f_min, st.finite


def minimize(fx: Callable, x0, max_iter, max_fun, gtol, ftol, max_ls, history: int):
    """The unchecked L-BFGS iteration on a flat vector: the final ``_State``."""
    n, dtype = x0.shape[0], x0.dtype
    empty = _Memory(jnp.zeros((history, n), dtype), jnp.zeros((history, n), dtype), jnp.zeros(history, dtype),
                    jnp.int32(0), jnp.int32(0))
    # The loop's first pass evaluates f at x0, so that fun is traced (and compiled) once: with
    # f = NaN and g = 0 there, d = 0, and the line search's one trial, x0 + α 0 = x0, meets
    # the Wolfe conditions (φ'(0) = φ'(α) = 0) if f(x0) and ∇f(x0) are finite.
    start = _State(x0, jnp.full((), jnp.nan, dtype), jnp.zeros_like(x0), empty, jnp.int32(0), jnp.int32(0),
                   jnp.int32(RUNNING))

    def iteration(st: _State) -> _State:
        first = st.n_fun == 0  # the evaluation at x0
        d = two_loop(st.g, st.memory)
        descent = st.g @ d < 0  # else (rounding, or NaN): drop the memory and go along -g
        memory = jax.tree.map(lambda a, b: jnp.where(descent, a, b), st.memory, empty)
        d = jnp.where(descent, d, -st.g)
        alpha0 = jnp.where(st.k == 0, jnp.minimum(1 / jnp.linalg.norm(d), STPMAX), 1.0).astype(dtype)
        ok, x, f, g, n_ls, f_min, finite = line_search(fx, st.x, st.f, st.g, d, alpha0, jnp.where(first, 1, max_ls))
        n_fun = st.n_fun + n_ls
        k = st.k + (ok & ~first).astype(jnp.int32)
        scale = lambda a, b: jnp.maximum(jnp.maximum(jnp.abs(a), jnp.abs(b)), 1.0)
        reason = jnp.select(  # at x0 only the gtol rule can hold (f_k = NaN, k = 0, n_fun = 1)
            [k >= max_iter, n_fun > max_fun, jnp.max(jnp.abs(g), initial=0.0) <= gtol,
             st.f - f <= ftol * scale(st.f, f)],
            [MAX_ITER, MAX_FUN, GTOL, FTOL], RUNNING)
        # a failed line search: stop by the ftol rule if f changed by rounding only, else retry
        # along -g with no memory, or stop at x_k
        rounding = finite & (st.f - f_min <= ftol * scale(st.f, f_min))
        failed = jnp.select([first, rounding, memory.count > 0], [NOT_FINITE, FTOL, RUNNING], LINE_SEARCH)
        memory = jax.tree.map(lambda a, b: jnp.where(ok, a, b), remember(memory, x - st.x, g - st.g), empty)
        return _State(x, f, g, memory, k, n_fun, jnp.where(ok, reason, failed).astype(jnp.int32))

    return lax.while_loop(lambda st: st.reason == RUNNING, iteration, start)


@compiled_cache(maxsize=32)
def compiled_lbfgs(fun: Callable, history: int, treedef) -> Callable:
    """The jitted run for one (fun, history, x0's tree structure): jitted again by JAX per
    shape and dtype of x0's leaves; the numeric settings are traced arguments."""

    def run(leaves, args, max_iter, max_fun, gtol, ftol, max_ls):
        x0, unravel = ravel_pytree(jax.tree.unflatten(treedef, leaves))

        def fx(x):
            value, grad = fun(unravel(x), *args)
            check_output(value, grad, treedef, [jnp.shape(leaf) for leaf in leaves])
            return jnp.asarray(value, x.dtype), ravel_pytree(grad)[0].astype(x.dtype)

        st = minimize(fx, x0, max_iter, max_fun, gtol.astype(x0.dtype), ftol.astype(x0.dtype), max_ls, history)
        g = jnp.where(st.reason == NOT_FINITE, jnp.nan, st.g)  # f(x0) is NaN then too
        return unravel(st.x), st.f, unravel(g), st.k, st.n_fun, st.reason

    return jax.jit(run)


def check_output(value, grad, treedef, shapes) -> None:
    """fun's output, checked once, when it is traced: a scalar value and a gradient like x."""
    if jnp.shape(value) != ():
        raise TypeError(f"fun must return (value, grad) with a scalar value; got a value of shape {jnp.shape(value)}.")
    if jax.tree.structure(grad) != treedef or [jnp.shape(g) for g in jax.tree.leaves(grad)] != shapes:
        raise TypeError(f"fun's grad must be a pytree like x; got {jax.tree.map(jnp.shape, grad)} for x of "
                        f"{jax.tree.unflatten(treedef, shapes)}.")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}.")
    return min(int(value), INT_MAX)


def _nonnegative(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (float(value) >= 0):
        raise ValueError(f"{name} must be a real number >= 0; got {value!r}.")
    return float(value)


def lbfgs(fun: Callable, x0, *, max_iter: int, max_fun: int, gtol: float = 1e-5,
          ftol: float = 2.220446049250313e-09, history: int = 10, max_linesearch: int = 20,
          args: tuple = ()) -> LBFGSResult:
    """Minimizes f over a pytree by L-BFGS, stopping as scipy's L-BFGS-B does (module docstring).

    Args:
      fun: ``fun(x, *args) -> (value, grad)``, jittable; ``grad`` a pytree like ``x``. Its
        identity keys the compiled program: pass the same function (not a fresh closure)
        to reuse it, and data that changes as ``args``.
      x0: the start, a pytree of float arrays (float32 or float64; the flat vector takes
        their common dtype).
      max_iter: most iterations (accepted steps), scipy's ``maxiter``.
      max_fun: the run stops once more than ``max_fun`` calls of ``fun`` were made (checked
        after each iteration, as scipy's ``maxfun``).
      gtol: stop when max_i |g_i| <= gtol (scipy's ``gtol``, the projected gradient).
      ftol: stop when (f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol (scipy's ``ftol``;
        the default is ``factr=1e7`` times float64's epsilon).
      history: m, the number of (s, y) pairs kept (scipy's ``maxcor``).
      max_linesearch: most evaluations in one line search (scipy's ``maxls``).
      args: extra arguments of ``fun``, traced: new values of the same shapes compile nothing.

    Returns:
      An :class:`LBFGSResult` (``n_iter``, ``n_fun``, ``status`` as Python ints).

    Raises:
      ValueError: ``max_iter``, ``max_fun``, ``history`` or ``max_linesearch`` not a positive
        int, ``gtol`` or ``ftol`` negative (naming the argument).
      TypeError: ``fun`` not callable, or a leaf of ``x0`` not a float array.

    Example:
      >>> import jax.numpy as jnp
      >>> def f(x):
      ...     return jnp.sum((x["w"] - 3.0) ** 2), {"w": 2 * (x["w"] - 3.0)}
      >>> res = lbfgs(f, {"w": jnp.zeros(2)}, max_iter=100, max_fun=200)
      >>> res.status, [round(float(v), 4) for v in res.x["w"]]
      (0, [3.0, 3.0])
    """
    if not callable(fun):
        raise TypeError(f"fun must be callable; got {type(fun).__name__} {fun!r}.")
    max_iter, max_fun = _positive_int(max_iter, "max_iter"), _positive_int(max_fun, "max_fun")
    history, max_ls = _positive_int(history, "history"), _positive_int(max_linesearch, "max_linesearch")
    gtol, ftol = _nonnegative(gtol, "gtol"), _nonnegative(ftol, "ftol")
    if not math.isfinite(gtol) or not math.isfinite(ftol):
        raise ValueError(f"gtol and ftol must be finite; got gtol={gtol!r}, ftol={ftol!r}.")
    leaves, treedef = jax.tree.flatten(x0)
    if not leaves:
        raise ValueError("x0 must hold at least one array; got an empty pytree.")
    for path, leaf in jax.tree_util.tree_flatten_with_path(x0)[0]:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
            kind = f"dtype {dtype}" if dtype is not None else f"type {type(leaf).__name__}"
            raise TypeError(f"x0 must be a pytree of float arrays; the leaf x0{jax.tree_util.keystr(path)} has {kind}.")
    if not isinstance(args, tuple):
        raise TypeError(f"args must be a tuple; got {type(args).__name__}.")
    leaves = [jnp.asarray(leaf, dtype=leaf.dtype) for leaf in leaves]  # not weak-typed: one jit entry per dtype
    try:
        run = compiled_lbfgs(fun, history, treedef)
    except TypeError:  # an unhashable fun: compiled afresh each call
        run = compiled_lbfgs.__wrapped__(fun, history, treedef)
    x, value, grad, k, n_fun, reason = run(leaves, args, jnp.int32(max_iter), jnp.int32(max_fun),
                                           jnp.asarray(gtol), jnp.asarray(ftol), jnp.int32(max_ls))
    status, message = REASONS[int(reason)]
    return LBFGSResult(x, value, grad, int(k), int(n_fun), status, message)
