"""fnann.lbfgs against scipy.optimize.minimize(method="L-BFGS-B"), the independent reference,
in float64: a convex quadratic, Rosenbrock, and a small MLP's L2-penalized cross-entropy
(params as the pytree). Then the stopping rules and their status, a start at the minimum,
NaN beyond a radius, float32, no recompilation, and bad input at the door."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

import fnann
from fnann.lbfgs import LBFGSResult, lbfgs


_FLAT_FUNS = {}  # (fun, x0's structure and shapes) -> the jitted flat fun (one compile per test problem)


def scipy_lbfgsb(fun, x0, **options):
    """scipy's L-BFGS-B on the flattened vector, as scikit-learn calls it, with the same fun."""
    flat, unravel = jax.flatten_util.ravel_pytree(x0)
    key = (fun, jax.tree.structure(x0), tuple((a.shape, a.dtype) for a in jax.tree.leaves(x0)))
    if key not in _FLAT_FUNS:
        _FLAT_FUNS[key] = jax.jit(lambda v: (lambda value, grad: (value, jax.flatten_util.ravel_pytree(grad)[0]))(
            *fun(unravel(v))))
    f = _FLAT_FUNS[key]

    def numpy_fun(v):
        value, grad = f(jnp.asarray(v))
        return float(value), np.asarray(grad, dtype=np.float64)

    return scipy.optimize.minimize(numpy_fun, np.asarray(flat), method="L-BFGS-B", jac=True, options=options)


# --- the objectives ------------------------------------------------------------------------

A_DIAG = np.array([1.0, 3.0, 10.0, 30.0, 100.0])
B = np.array([1.0, -2.0, 0.5, 3.0, -1.0])


def quadratic(x):
    """½ xᵀAx - bᵀx with a pytree x = {"u": (3,), "v": (2,)}; the minimum x* = A⁻¹ b."""
    v = jnp.concatenate([x["u"], x["v"]])
    a, b = jnp.asarray(A_DIAG, v.dtype), jnp.asarray(B, v.dtype)
    g = a * v - b
    return 0.5 * v @ (a * v) - b @ v, {"u": g[:3], "v": g[3:]}


TRACES = []  # one entry per trace of rosenbrock (a side effect of tracing only)


def rosenbrock(x):
    TRACES.append(x.shape)

    def f(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    return jax.value_and_grad(f)(x)


NET = fnann.MLP([3, 5, 2], hidden="tanh")
X = np.random.default_rng(0).normal(size=(30, 3))
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int32)
L2 = 1e-2
_mlp_grad = fnann.loss_and_grad(NET, "cross_entropy")


def mlp_objective(params):
    """The batch-mean cross-entropy plus (L2/2) Σ ‖W‖², by the hand-derived backward pass."""
    value, grads = _mlp_grad(params, jnp.asarray(X, params[0].W.dtype), Y)
    value = value + 0.5 * L2 * sum(jnp.sum(layer.W ** 2) for layer in params)
    grads = tuple(fnann.Dense(g.W + L2 * p.W, g.b) for g, p in zip(grads, params))
    return value, grads


# --- against scipy -------------------------------------------------------------------------


def test_quadratic_reaches_the_known_minimum():
    with jax.enable_x64(True):
        x0 = {"u": jnp.zeros(3), "v": jnp.zeros(2)}
        res = lbfgs(quadratic, x0, max_iter=200, max_fun=400, gtol=1e-12, ftol=0.0)
        ref = scipy_lbfgsb(quadratic, x0, maxiter=200, maxfun=400, gtol=1e-12, ftol=0.0)
        assert isinstance(res, LBFGSResult) and res.status == 0, res.message
        x_star = B / A_DIAG
        np.testing.assert_allclose(np.concatenate([res.x["u"], res.x["v"]]), x_star, rtol=0, atol=1e-8)
        np.testing.assert_allclose(ref.x, x_star, rtol=0, atol=1e-8)
        assert res.x["u"].dtype == jnp.float64 and res.grad["v"].shape == (2,)
        assert res.n_iter <= 2 * ref.nit + 2


def dense_quadratic(x, A, b):
    """½ xᵀAx - bᵀx with A and b as traced arguments: one compile for every draw."""
    return 0.5 * x @ A @ x - b @ x, A @ x - b


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), log_cond=st.floats(0.0, 3.0))
def test_random_convex_quadratics_like_scipy(seed, log_cond):
    """A = Q diag(λ) Qᵀ, λ from 1 to 10^log_cond: the minimizer A⁻¹b, and scipy's iteration count."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    A = Q @ np.diag(np.logspace(0, log_cond, 6)) @ Q.T
    b = rng.normal(size=6)
    with jax.enable_x64(True):
        res = lbfgs(dense_quadratic, jnp.zeros(6), max_iter=200, max_fun=400, gtol=1e-10, ftol=0.0,
                    args=(A, b))
    ref = scipy.optimize.minimize(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b), np.zeros(6), jac=True,
                                  method="L-BFGS-B", options=dict(maxiter=200, maxfun=400, gtol=1e-10, ftol=0.0))
    assert res.status == 0, res.message
    np.testing.assert_allclose(res.x, np.linalg.solve(A, b), rtol=0, atol=1e-8)
    assert res.n_iter <= 2 * ref.nit + 2, (res.n_iter, ref.nit)


@pytest.mark.parametrize("n", [2, 6])  # 6: the shape the stopping-rule tests reuse
def test_rosenbrock_like_scipy(n):
    with jax.enable_x64(True):
        x0 = jnp.full(n, -1.2).at[1::2].set(1.0)
        res = lbfgs(rosenbrock, x0, max_iter=1000, max_fun=2000)
        ref = scipy_lbfgsb(rosenbrock, x0, maxiter=1000, maxfun=2000)
        assert res.status == 0 and ref.status == 0, (res.message, ref.message)
        np.testing.assert_allclose(res.x, np.ones(n), atol=1e-4)
        np.testing.assert_allclose(res.x, ref.x, atol=1e-4)
        assert float(res.value) < 1e-8
        assert ref.nit / 2 <= res.n_iter <= 2 * ref.nit, (res.n_iter, ref.nit)
        assert res.n_fun <= 2 * ref.nfev, (res.n_fun, ref.nfev)


def test_mlp_objective_like_scipy():
    """A small MLP from fnann.init, params as the pytree: scipy's final loss to 1e-6 relative."""
    with jax.enable_x64(True):
        params = fnann.init(jax.random.key(0), NET, dtype=jnp.float64)
        res = lbfgs(mlp_objective, params, max_iter=500, max_fun=1000)
        ref = scipy_lbfgsb(mlp_objective, params, maxiter=500, maxfun=1000, gtol=1e-5)
        assert res.status == 0 and ref.status == 0, (res.message, ref.message)
        np.testing.assert_allclose(float(res.value), ref.fun, rtol=1e-6)
        assert jax.tree.structure(res.x) == jax.tree.structure(params)
        assert res.n_iter <= 2 * ref.nit + 5, (res.n_iter, ref.nit)


# --- stopping rules ------------------------------------------------------------------------


def test_max_iter_and_max_fun_are_respected_and_reported():
    with jax.enable_x64(True):
        x0 = jnp.full(6, -1.2).at[1::2].set(1.0)  # the shape of test_rosenbrock_like_scipy: compiled once
        for k in (1, 7):
            res = lbfgs(rosenbrock, x0, max_iter=k, max_fun=1000)
            ref = scipy_lbfgsb(rosenbrock, x0, maxiter=k, maxfun=1000)
            assert (res.n_iter, res.status) == (k, 1) and ref.status == 1
            assert "ITERATIONS" in res.message
        res = lbfgs(rosenbrock, x0, max_iter=1000, max_fun=10)
        ref = scipy_lbfgsb(rosenbrock, x0, maxiter=1000, maxfun=10)
        assert res.status == 2 and "EVALUATIONS" in res.message and ref.status == 1
        assert res.n_fun > 10 and res.n_fun <= 10 + 20  # stops after the iteration that exceeded it, as scipy
        assert res.n_iter <= 10 and abs(res.n_fun - ref.nfev) <= 3, (res.n_fun, ref.nfev)


def test_a_start_at_the_minimum_takes_no_iteration():
    with jax.enable_x64(True):
        res = lbfgs(rosenbrock, jnp.ones(6), max_iter=10, max_fun=10)
        assert (res.n_iter, res.n_fun, res.status) == (0, 1, 0)
        assert "GRADIENT" in res.message
        np.testing.assert_array_equal(res.x, np.ones(6))


def nan_outside(x, center, radius):
    """Rosenbrock where max_i |x_i - center_i| < radius, NaN (value and gradient) elsewhere."""
    value, grad = rosenbrock(x)
    out = jnp.max(jnp.abs(x - center)) >= radius
    return jnp.where(out, jnp.nan, value), jnp.where(out, jnp.nan, grad)


def test_nan_beyond_a_radius_backtracks():
    """NaN outside max_i |x_i - c_i| < 1.6, c = (0, 0.5): two trial steps land there (47
    evaluations, 45 without the wall), the line search backs off, and the run converges."""
    with jax.enable_x64(True):
        res = lbfgs(nan_outside, jnp.array([-1.2, 1.0]), max_iter=500, max_fun=1000,
                    args=(jnp.array([0.0, 0.5]), jnp.float64(1.6)))
        free = lbfgs(nan_outside, jnp.array([-1.2, 1.0]), max_iter=500, max_fun=1000,
                     args=(jnp.array([0.0, 0.5]), jnp.float64(1e9)))  # no wall: compiled once for both
        assert res.n_fun > free.n_fun  # some trials were NaN
        assert np.all(np.isfinite(res.x)) and np.isfinite(float(res.value))
        assert res.status == 0, res.message
        np.testing.assert_allclose(res.x, np.ones(2), atol=1e-4)


def test_nan_everywhere_but_x0_stops_cleanly_with_status_3():
    with jax.enable_x64(True):
        # the shape and dtypes of the test above (x0 not weak-typed: args are jit arguments): compiled once
        x0 = jnp.full(2, 0.5, dtype=jnp.float64)
        res = lbfgs(nan_outside, x0, max_iter=50, max_fun=100, args=(x0, jnp.float64(1e-30)))
        assert res.status == 3 and res.n_iter == 0 and "LNSRCH" in res.message
        assert res.n_fun == 1 + 20  # x0, then one line search of max_linesearch trials (no memory to drop)
        np.testing.assert_array_equal(res.x, x0)
        assert float(res.value) == 100 * (0.5 - 0.25) ** 2 + 0.25  # Rosenbrock at (0.5, 0.5)
        res = lbfgs(nan_outside, x0, max_iter=50, max_fun=100, args=(x0, jnp.float64(0.0)))  # NaN at x0 itself
        assert (res.status, res.n_iter, res.n_fun) == (3, 0, 1) and "x0" in res.message
        assert np.isnan(float(res.value)) and np.all(np.isnan(res.grad))


def test_rounding_that_stops_progress_is_the_ftol_rule():
    """Near the minimum no trial lowers f beyond rounding (the quadratic with gtol = 1e-12 and
    ftol = 0; f rounded to 1e-6): stop by the ftol rule after as many iterations as scipy (within 2).
    scipy's status there is 0 (the ftol rule) for the first, "ABNORMAL" (2) for the second;
    test_float32 is a third such stop."""
    def rounded(x):
        scale = jnp.array([1.0, 100.0], x.dtype)
        return jnp.round(jnp.sum(scale * (x - 1.0) ** 2) * 1e6) / 1e6, 2 * scale * (x - 1.0)

    with jax.enable_x64(True):
        x0 = {"u": jnp.zeros(3), "v": jnp.zeros(2)}  # the quadratic test's problem, compiled once
        res = lbfgs(quadratic, x0, max_iter=200, max_fun=400, gtol=1e-12, ftol=0.0)
        ref = scipy_lbfgsb(quadratic, x0, maxiter=200, maxfun=400, gtol=1e-12, ftol=0.0)
        assert (res.status, ref.status) == (0, 0) and "REDUCTION" in res.message
        assert abs(res.n_iter - ref.nit) <= 2  # where rounding decides, the compiler's rounding counts
        res = lbfgs(rounded, jnp.zeros(2), max_iter=100, max_fun=500)
        ref = scipy_lbfgsb(rounded, jnp.zeros(2), maxiter=100, maxfun=500)
        assert (res.status, ref.status) == (0, 2) and "REDUCTION" in res.message and res.n_iter == ref.nit
        np.testing.assert_allclose(res.x, ref.x, atol=1e-8)


def test_float32():
    x0 = {"u": jnp.zeros(3, jnp.float32), "v": jnp.zeros(2, jnp.float32)}
    res = lbfgs(quadratic, x0, max_iter=100, max_fun=200)
    ref = scipy_lbfgsb(quadratic, x0, maxiter=100, maxfun=200)  # scipy: f32 values, float64 iterates
    assert res.status == 0 and ref.status == 0, (res.message, ref.message)
    assert "REDUCTION" in res.message and "REDUCTION" in ref.message
    assert res.x["u"].dtype == jnp.float32 and res.value.dtype == jnp.float32
    # f resolves x to about sqrt(eps_float32) ~ 3e-4 near a minimum: then the ftol rule stops it
    np.testing.assert_allclose(np.concatenate([res.x["u"], res.x["v"]]), B / A_DIAG, atol=1e-3)


def test_a_second_call_does_not_recompile():
    """rosenbrock is traced once per compile (the program holds one copy of fun), then never again."""
    with jax.enable_x64(True):
        x0 = jnp.full(6, -1.2).at[1::2].set(1.0)  # compiled here or by an earlier test
        before = len(TRACES)
        first = lbfgs(rosenbrock, x0, max_iter=100, max_fun=200)
        assert len(TRACES) - before in (0, 1)
        n = len(TRACES)
        second = lbfgs(rosenbrock, x0 + 0.1, max_iter=20, max_fun=150, gtol=1e-6)  # the settings are traced too
        assert len(TRACES) == n
        assert first.status == 0 and (second.status, second.n_iter) == (1, 20)


# --- the door ------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, name", [
    (dict(max_iter=0), "max_iter"), (dict(max_iter=2.5), "max_iter"), (dict(max_iter=True), "max_iter"),
    (dict(max_fun=-1), "max_fun"), (dict(gtol=-1e-3), "gtol"), (dict(history=0), "history"),
    (dict(ftol=-1.0), "ftol"), (dict(max_linesearch=0), "max_linesearch"),
])
def test_bad_settings_raise_value_error_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        lbfgs(rosenbrock, jnp.zeros(2), **{"max_iter": 10, "max_fun": 10, **kwargs})


def test_non_float_leaves_raise_type_error():
    with pytest.raises(TypeError, match="float"):
        lbfgs(rosenbrock, {"a": jnp.zeros(2), "b": jnp.arange(3)}, max_iter=10, max_fun=10)
    with pytest.raises(TypeError, match="fun"):
        lbfgs("f", jnp.zeros(2), max_iter=10, max_fun=10)


def test_a_fun_that_returns_the_wrong_shapes_raises_type_error():
    with pytest.raises(TypeError, match="scalar"):
        lbfgs(lambda x: (x, x), jnp.zeros(2), max_iter=10, max_fun=10)
    with pytest.raises(TypeError, match="grad must be a pytree like x"):
        lbfgs(lambda x: (jnp.sum(x["a"] ** 2), 2 * x["a"]), {"a": jnp.zeros(2)}, max_iter=10, max_fun=10)
