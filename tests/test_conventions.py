"""The conventions reproduce their libraries: fnann.optim.conventions against torch.optim and
optax themselves (optional test dependencies: skipped when absent) and against a numpy
transcription of Keras 3's source; 100 steps on a random pytree in float64, equal to 1e-12
relative at every step. A training run ported from PyTorch gives PyTorch's loss curve."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from fnann import Dense
from fnann.optim import adam, adamw, as_optimizer, momentum, rmsprop, weights_only
from fnann.optim import conventions as cv

STEPS, TOL = 100, 1e-12


def random_params(seed):
    """A nested pytree with a bias to mask (two leaves keep the compilation short)."""
    rng = np.random.default_rng(seed)
    return {"layer": Dense(rng.normal(size=(3, 4)), rng.normal(size=(3,)))}


def grad_stream(seed, params, steps=STEPS):
    """A fixed stream of gradients: one leaf list per step (numpy float64)."""
    rng = np.random.default_rng(seed + 1000)
    leaves = jax.tree.leaves(params)
    return [[rng.normal(size=np.shape(p)) for p in leaves] for _ in range(steps)]


PARAMS = random_params(0)
STREAM = grad_stream(0, PARAMS)


def fnann_paths(opts, params, stream):
    """Params after each step for every optimizer in the dict ``opts``, in float64.

    One compiled step runs all of them (compiling each alone would cost ~0.3 s apiece), and
    XLA's backend optimisations are off: they take a third of the compile time here and
    change nothing beyond the last bit.
    """
    opts = {name: as_optimizer(opt) for name, opt in opts.items()}
    treedef = jax.tree.structure(params)

    @functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0,
                                                  "xla_llvm_disable_expensive_passes": True})
    def step(ps, ss, g):
        out = {name: opt.update(g, ss[name], ps[name]) for name, opt in opts.items()}
        return ({name: fnann.apply_updates(ps[name], out[name][0]) for name in opts},
                {name: out[name][1] for name in opts})

    paths = {name: [] for name in opts}
    with jax.enable_x64(True):
        params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), params)
        ps = {name: params for name in opts}
        ss = {name: opt.init(params) for name, opt in opts.items()}
        for gs in stream:
            ps, ss = step(ps, ss, jax.tree.unflatten(treedef, gs))
            for name in opts:
                paths[name].append([np.asarray(x) for x in jax.tree.leaves(ps[name])])
    return paths


def assert_same_path(ours, theirs, tol=TOL):
    """Every step, every leaf: max |ours - theirs| <= tol * max |theirs|."""
    worst = max(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)
                for step_a, step_b in zip(ours, theirs) for a, b in zip(step_a, step_b))
    assert worst <= tol, f"relative difference {worst:.3g} > {tol:g}"


# ---------------------------------------------------------------------------------------
# PyTorch: the real torch.optim, single-tensor path, float64.
# ---------------------------------------------------------------------------------------


def torch_path(name, kwargs, params, stream, lr_factor=None, bias_group=None):
    """Params after each ``torch.optim.<name>(groups, **kwargs)`` step; with ``bias_group``
    the biases (weights_only False) form a second parameter group with those options."""
    torch = pytest.importorskip("torch")
    keep = jax.tree.leaves(weights_only(params))
    tensors = [torch.tensor(np.asarray(p), dtype=torch.float64, requires_grad=True)
               for p in jax.tree.leaves(params)]
    if bias_group is None:
        groups = [{"params": tensors}]
    else:
        groups = [{"params": [t for t, k in zip(tensors, keep) if k]},
                  {"params": [t for t, k in zip(tensors, keep) if not k], **bias_group}]
    opt = getattr(torch.optim, name)(groups, **kwargs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor) if lr_factor else None
    path = []
    for gs in stream:
        for t, g in zip(tensors, gs):
            t.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        if sched:
            sched.step()
        path.append([t.detach().numpy().copy() for t in tensors])
    return path


# numpy transcriptions of PyTorch 2.x's single-tensor kernels (torch/optim/sgd.py
# _single_tensor_sgd, rmsprop.py _single_tensor_rmsprop, adam.py _single_tensor_adam), so
# that the torch presets are checked where torch is not installed too.


def np_torch_sgd(p, g, s, lr, weight_decay=0.0, momentum=0.0, dampening=0.0, nesterov=False):
    if weight_decay != 0:
        g = g + weight_decay * p
    if momentum != 0:
        s["buf"] = g.copy() if "buf" not in s else s["buf"] * momentum + (1 - dampening) * g
        g = g + momentum * s["buf"] if nesterov else s["buf"]
    return p - lr * g


def np_torch_rmsprop(p, g, s, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    if weight_decay != 0:
        g = g + weight_decay * p
    s["square_avg"] = s.get("square_avg", 0.0) * alpha + (1 - alpha) * g * g
    if centered:
        grad_avg = s.get("grad_avg", 0.0)
        s["grad_avg"] = grad_avg + (g - grad_avg) * (1 - alpha)  # lerp_
        avg = np.sqrt(s["square_avg"] - s["grad_avg"] * s["grad_avg"])
    else:
        avg = np.sqrt(s["square_avg"])
    avg = avg + eps
    if momentum > 0:
        s["buf"] = s.get("buf", 0.0) * momentum + g / avg
        return p - lr * s["buf"]
    return p - lr * g / avg


def np_torch_adam(p, g, s, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    s["step"] = step = s.get("step", 0) + 1
    if weight_decay != 0:
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    (beta1, beta2), m = betas, s.get("exp_avg", 0.0)
    s["exp_avg"] = m = m + (g - m) * (1 - beta1)  # lerp_
    s["exp_avg_sq"] = v = s.get("exp_avg_sq", 0.0) * beta2 + (1 - beta2) * g * g
    step_size = lr / (1 - beta1**step)
    denom = np.sqrt(v) / (1 - beta2**step) ** 0.5 + eps
    return p - step_size * m / denom


NP_TORCH = {"SGD": (np_torch_sgd, {"lr": 1e-3}),
            "RMSprop": (np_torch_rmsprop, {"lr": 1e-2}),
            "Adam": (np_torch_adam, {"lr": 1e-3}),
            "AdamW": (lambda *a, **k: np_torch_adam(*a, decoupled=True, **k), {"lr": 1e-3, "weight_decay": 1e-2})}


def np_torch_path(name, kwargs, params, stream, lr_factor=None, bias_group=None):
    step, defaults = NP_TORCH[name]
    keep = jax.tree.leaves(weights_only(params))
    leaves = [np.array(p, dtype=np.float64) for p in jax.tree.leaves(params)]
    slots = [dict() for _ in leaves]
    path = []
    for k, grads in enumerate(stream):
        options = {**defaults, **kwargs}
        options["lr"] = options["lr"] * (lr_factor(k) if lr_factor else 1.0)
        for i, g in enumerate(grads):
            own = options if keep[i] or bias_group is None else {**options, **bias_group}
            leaves[i] = step(leaves[i], g, slots[i], **own)
        path.append([x.copy() for x in leaves])
    return path


def _decay_factor(k):
    return 0.98 ** k


TORCH_CASES = {  # name: (fnann preset, torch.optim class, its arguments, LambdaLR / parameter groups)
    "sgd": (cv.torch_sgd(lr=0.05), "SGD", dict(lr=0.05), {}),
    "sgd momentum dampening l2": (cv.torch_sgd(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=1e-2),
                                  "SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=1e-2), {}),
    "sgd nesterov schedule": (cv.torch_sgd(lr=lambda k: 0.05 * _decay_factor(k), momentum=0.9, nesterov=True),
                              "SGD", dict(lr=0.05, momentum=0.9, nesterov=True), {"lr_factor": _decay_factor}),
    "rmsprop": (cv.torch_rmsprop(), "RMSprop", {}, {}),
    "rmsprop centered momentum l2": (
        cv.torch_rmsprop(lr=1e-2, alpha=0.9, eps=1e-6, weight_decay=1e-2, momentum=0.5, centered=True),
        "RMSprop", dict(lr=1e-2, alpha=0.9, eps=1e-6, weight_decay=1e-2, momentum=0.5, centered=True), {}),
    "adam": (cv.torch_adam(lr=1e-2), "Adam", dict(lr=1e-2), {}),
    "adam l2 schedule": (cv.torch_adam(lr=lambda k: 1e-2 * _decay_factor(k), betas=(0.8, 0.99), weight_decay=1e-2),
                         "Adam", dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-2), {"lr_factor": _decay_factor}),
    "adamw masked": (cv.torch_adamw(lr=1e-2, weight_decay=0.1, mask=weights_only), "AdamW",
                     dict(lr=1e-2, weight_decay=0.1), {"bias_group": {"weight_decay": 0.0}}),
    "fnann adamw": (adamw(lr=1e-2, weight_decay=0.1), "AdamW", dict(lr=1e-2, weight_decay=0.1), {}),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_torch_conventions_equal_torch_optim(case, paths):
    pytest.importorskip("torch")
    _, name, kwargs, options = TORCH_CASES[case]
    assert_same_path(paths["torch " + case], torch_path(name, kwargs, PARAMS, STREAM, **options))


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_torch_conventions_equal_a_transcription_of_torch(case, paths):
    _, name, kwargs, options = TORCH_CASES[case]
    assert_same_path(paths["torch " + case], np_torch_path(name, kwargs, PARAMS, STREAM, **options))


# ---------------------------------------------------------------------------------------
# optax: the real optax transforms, run by the same scan.
# ---------------------------------------------------------------------------------------


def optax_cases():
    """name -> (the fnann optimizer, the optax transform), or {} without optax."""
    try:
        import optax
    except ImportError:
        return {}
    return {
        "sgd momentum": (cv.optax_sgd(0.05, momentum=0.9), optax.sgd(0.05, momentum=0.9)),
        "sgd nesterov": (cv.optax_sgd(0.05, momentum=0.9, nesterov=True),
                         optax.sgd(0.05, momentum=0.9, nesterov=True)),
        "rmsprop": (cv.optax_rmsprop(1e-2), optax.rmsprop(1e-2)),
        "rmsprop every option": (
            cv.optax_rmsprop(lambda k: 1e-2 * _decay_factor(k), decay=0.8, eps=1e-6, initial_scale=0.1,
                             eps_in_sqrt=False, centered=True, momentum=0.5, nesterov=True,
                             bias_correction=True),
            optax.rmsprop(lambda k: 1e-2 * _decay_factor(k), decay=0.8, eps=1e-6, initial_scale=0.1,
                          eps_in_sqrt=False, centered=True, momentum=0.5, nesterov=True,
                          bias_correction=True)),
        "adam eps_root": (cv.optax_adam(1e-2, b1=0.8, eps_root=1e-8), optax.adam(1e-2, b1=0.8, eps_root=1e-8)),
        "adamw masked": (cv.optax_adamw(1e-2, weight_decay=0.1, mask=weights_only),
                         optax.adamw(1e-2, weight_decay=0.1, mask=weights_only)),
        "fnann adam": (adam(1e-2), optax.adam(1e-2)),
        "fnann rmsprop": (rmsprop(1e-2, beta=0.8), optax.rmsprop(1e-2, decay=0.8)),
        "fnann l2 masked": (fnann.chain(fnann.add_decayed_weights(0.1, mask=weights_only), adam(1e-2)),
                            optax.chain(optax.add_decayed_weights(0.1, mask=weights_only), optax.adam(1e-2))),
    }


OPTAX_CASES = ["sgd momentum", "sgd nesterov", "rmsprop", "rmsprop every option", "adam eps_root",
               "adamw masked", "fnann adam", "fnann rmsprop", "fnann l2 masked"]


@pytest.mark.parametrize("case", OPTAX_CASES)
def test_optax_conventions_equal_optax(case, paths):
    pytest.importorskip("optax")
    assert_same_path(paths["optax " + case], paths["optax itself " + case])


# ---------------------------------------------------------------------------------------
# Keras 3: numpy transcriptions of keras-team/keras, keras/src/optimizers/ (sgd.py at
# 1937d487, rmsprop.py and adam.py at 13de96ae, adamw.py at 26083041, base_optimizer.py at
# 001750db). Each update_step is copied operation by operation, on a list of leaves;
# BaseOptimizer.apply runs _apply_weight_decay (var = var - var * wd * lr, for the variables
# not excluded) before update_step, and the schedule is read at self.iterations (0 first).
# ---------------------------------------------------------------------------------------


def keras_path(update_step, params, stream, lr, weight_decay=None, exclude=()):
    variables = [np.array(p, dtype=np.float64) for p in jax.tree.leaves(params)]
    slots = [dict() for _ in variables]
    path = []
    for iterations, grads in enumerate(stream):
        learning_rate = lr(iterations) if callable(lr) else lr
        if weight_decay is not None:  # BaseOptimizer._apply_weight_decay
            for i, var in enumerate(variables):
                if i not in exclude:
                    variables[i] = var - var * weight_decay * learning_rate
        for i, (g, var) in enumerate(zip(grads, variables)):
            variables[i] = update_step(g, var, learning_rate, iterations, slots[i])
        path.append([v.copy() for v in variables])
    return path


def keras_sgd_step(momentum=0.0, nesterov=False):
    def update_step(gradient, variable, learning_rate, iterations, slot):  # sgd.py update_step
        if momentum != 0:
            m = slot.get("momentum", np.zeros_like(variable))
            m = m * momentum - gradient * learning_rate
            slot["momentum"] = m
            if nesterov:
                return variable + (m * momentum - gradient * learning_rate)
            return variable + m
        return variable - gradient * learning_rate
    return update_step


def keras_rmsprop_step(rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    def update_step(gradient, variable, lr, iterations, slot):  # rmsprop.py update_step
        velocity = rho * slot.get("velocity", 0.0) + (1 - rho) * np.square(gradient)
        slot["velocity"] = velocity
        if centered:
            average_grad = rho * slot.get("average_grad", 0.0) + (1 - rho) * gradient
            slot["average_grad"] = average_grad
            denominator = velocity - np.square(average_grad) + epsilon
        else:
            denominator = velocity + epsilon
        increment = (lr * gradient) / np.sqrt(denominator)
        if momentum > 0:
            slot["momentum"] = momentum * slot.get("momentum", 0.0) + increment
            return variable - slot["momentum"]
        return variable - increment
    return update_step


def keras_adam_step(beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    def update_step(gradient, variable, lr, iterations, slot):  # adam.py update_step
        local_step = iterations + 1
        beta_1_power, beta_2_power = beta_1**local_step, beta_2**local_step
        m, v = slot.get("m", np.zeros_like(variable)), slot.get("v", np.zeros_like(variable))
        alpha = lr * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m = m + (gradient - m) * (1 - beta_1)
        v = v + (np.square(gradient) - v) * (1 - beta_2)
        slot["m"], slot["v"] = m, v
        return variable - (m * alpha) / (np.sqrt(v) + epsilon)
    return update_step


def _bias_indices(params):
    return {i for i, keep in enumerate(jax.tree.leaves(weights_only(params))) if not keep}


KERAS_CASES = {
    "sgd": (cv.keras_sgd(0.05), keras_sgd_step(), dict(lr=0.05)),
    "sgd momentum decay": (cv.keras_sgd(0.05, momentum=0.9, weight_decay=1e-2),
                           keras_sgd_step(0.9), dict(lr=0.05, weight_decay=1e-2)),
    "sgd nesterov schedule": (cv.keras_sgd(lambda k: 0.05 * _decay_factor(k), momentum=0.9, nesterov=True),
                              keras_sgd_step(0.9, True), dict(lr=lambda k: 0.05 * _decay_factor(k))),
    "rmsprop": (cv.keras_rmsprop(1e-2), keras_rmsprop_step(), dict(lr=1e-2)),
    "rmsprop centered momentum decay": (
        cv.keras_rmsprop(1e-2, rho=0.8, momentum=0.5, epsilon=1e-6, centered=True, weight_decay=1e-2),
        keras_rmsprop_step(0.8, 0.5, 1e-6, True), dict(lr=1e-2, weight_decay=1e-2)),
    "adam": (cv.keras_adam(1e-2), keras_adam_step(), dict(lr=1e-2)),
    "adamw masked": (cv.keras_adamw(1e-2, weight_decay=0.1, beta_1=0.8, mask=weights_only),
                     keras_adam_step(beta_1=0.8), dict(lr=1e-2, weight_decay=0.1, exclude="biases")),
    "fnann momentum": (momentum(0.05, gamma=0.9), keras_sgd_step(0.9), dict(lr=0.05)),
}


@pytest.mark.parametrize("case", list(KERAS_CASES))
def test_keras_conventions_equal_keras_transcription(case, paths):
    _, update_step, options = KERAS_CASES[case]
    if options.get("exclude") == "biases":
        options = {**options, "exclude": _bias_indices(PARAMS)}
    assert_same_path(paths["keras " + case], keras_path(update_step, PARAMS, STREAM, **options))


# ---------------------------------------------------------------------------------------
# scikit-learn: its own SGDOptimizer and AdamOptimizer, updating numpy float64 in place.
# ---------------------------------------------------------------------------------------


SKLEARN_CASES = {
    "sgd": (cv.sklearn_sgd(0.05, momentum=0.0), "sgd", dict(momentum=0.0, nesterov=False)),
    "sgd momentum": (cv.sklearn_sgd(0.05, nesterovs_momentum=False), "sgd", dict(momentum=0.9, nesterov=False)),
    "sgd nesterov, momentum 1": (cv.sklearn_sgd(0.05, momentum=1.0), "sgd", dict(momentum=1.0, nesterov=True)),
    "adam": (cv.sklearn_adam(1e-2, beta_1=0.8, epsilon=1e-6), "adam", dict(beta_1=0.8, beta_2=0.999, epsilon=1e-6)),
}


def sklearn_path(kind, options, params, stream):
    """Params after each step of scikit-learn's own optimizer (the one its MLP uses)."""
    so = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    ps = [np.array(p, np.float64) for p in jax.tree.leaves(params)]
    if kind == "sgd":
        opt = so.SGDOptimizer(ps, 0.05, "constant", options["momentum"], options["nesterov"])
    else:
        opt = so.AdamOptimizer(ps, 1e-2, **options)
    path = []
    for gs in stream:
        opt.update_params(ps, [np.array(g) for g in gs])
        path.append([p.copy() for p in ps])
    return path


@pytest.mark.parametrize("case", list(SKLEARN_CASES))
def test_sklearn_conventions_equal_sklearn_optimizers(case, paths):
    _, kind, options = SKLEARN_CASES[case]
    assert_same_path(paths["sklearn " + case], sklearn_path(kind, options, PARAMS, STREAM))


# ---------------------------------------------------------------------------------------
# The conventions really differ (so the parity tests above can fail), and bad input.
# ---------------------------------------------------------------------------------------


DIFFERENT = {  # pairs that differ in one convention only
    "eps inside or outside the root": (cv.torch_rmsprop(1e-2, alpha=0.9, eps=1e-2),
                                       cv.optax_rmsprop(1e-2, decay=0.9, eps=1e-2)),
    "eps hat": (cv.keras_adam(1e-2, epsilon=1e-3), cv.optax_adam(1e-2, eps=1e-3)),
    "dampening": (cv.torch_sgd(0.1, momentum=0.9, dampening=0.5), cv.optax_sgd(0.1, momentum=0.9)),
    "coupled or decoupled decay": (cv.torch_adam(1e-2, weight_decay=0.1), cv.torch_adamw(1e-2, weight_decay=0.1)),
    "lr outside or inside the buffer": (cv.torch_sgd(lambda k: 0.1 / (1 + k), momentum=0.9),
                                        cv.keras_sgd(lambda k: 0.1 / (1 + k), momentum=0.9)),
}


@pytest.fixture(scope="module")
def paths():
    """Every fnann-side trajectory of this module, computed together (one compilation)."""
    opts = {"torch " + name: case[0] for name, case in TORCH_CASES.items()}
    opts.update({"keras " + name: case[0] for name, case in KERAS_CASES.items()})
    opts.update({"sklearn " + name: case[0] for name, case in SKLEARN_CASES.items()})
    for name, (ours, theirs) in optax_cases().items():
        opts["optax " + name], opts["optax itself " + name] = ours, theirs
    for name, (first, second) in DIFFERENT.items():
        opts["first " + name], opts["second " + name] = first, second
    return fnann_paths(opts, PARAMS, STREAM)


@pytest.mark.parametrize("case", list(DIFFERENT))
def test_conventions_differ_where_the_table_says(case, paths):
    first, second = paths["first " + case][-1], paths["second " + case][-1]
    assert max(np.max(np.abs(x - y)) for x, y in zip(first, second)) > 1e-6


def test_conventions_table_and_identity():
    assert set(cv.CONVENTIONS) == {"fnann", "torch", "optax", "keras", "sklearn"}
    assert all({"sgd", "rmsprop", "adam", "adamw"} <= set(v) for k, v in cv.CONVENTIONS.items() if k != "sklearn")
    assert set(cv.CONVENTIONS["sklearn"]) == {"sgd", "adam"}  # scikit-learn's MLP has no RMSProp
    assert cv.CONVENTIONS["fnann"]["adam"] is adam
    assert cv.torch_adam(1e-3) == cv.torch_adam(lr=1e-3, betas=(0.9, 0.999))
    assert cv.torch_adam(1e-3) != cv.torch_adamw(1e-3) and cv.optax_adam(1e-3) != adam(1e-3)
    assert hash(cv.keras_adamw()) == hash(cv.keras_adamw(0.001))
    assert repr(cv.torch_sgd(0.1)).startswith("torch_sgd(lr=0.1, momentum=0.0")


@pytest.mark.parametrize("build, error, match", [
    (lambda: cv.torch_sgd(0.1, nesterov=True), ValueError, "nesterov"),
    (lambda: cv.torch_sgd(0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "dampening"),
    (lambda: cv.torch_sgd(0.1, dampening=2.0), ValueError, "dampening"),
    (lambda: cv.torch_rmsprop(alpha=1.0), ValueError, "alpha"),
    (lambda: cv.torch_adam(betas=0.9), TypeError, "betas"),
    (lambda: cv.torch_adam(betas=(0.9, 1.5)), ValueError, r"betas\[1\]"),
    (lambda: cv.torch_adam(weight_decay=-1.0), ValueError, "weight_decay"),
    (lambda: cv.optax_rmsprop(1e-3, centered="yes"), TypeError, "centered"),
    (lambda: cv.keras_rmsprop(epsilon=0.0), ValueError, "epsilon"),
    (lambda: cv.keras_adamw(weight_decay=None), ValueError, "weight_decay"),
    (lambda: cv.keras_sgd(momentum=float("nan")), ValueError, "momentum"),
    (lambda: cv.sklearn_sgd(momentum=1.5), ValueError, "momentum"),
    (lambda: cv.sklearn_sgd(learning_rate_init=-1.0), ValueError, "lr"),
    (lambda: cv.sklearn_sgd(nesterovs_momentum="yes"), TypeError, "nesterovs_momentum"),
    (lambda: cv.sklearn_adam(beta_1=1.0), ValueError, "beta_1"),
    (lambda: cv.sklearn_adam(epsilon=0.0), ValueError, "epsilon"),
])
def test_preset_bad_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_decay_needs_params_and_a_fitting_mask():
    params = {"W": jnp.ones((2, 2)), "b": jnp.ones(2)}
    opt = cv.torch_adamw(weight_decay=0.1)
    with pytest.raises(ValueError, match="needs params"):
        opt.update(params, opt.init(params))
    bad = cv.torch_adamw(weight_decay=0.1, mask={"W": True})
    with pytest.raises(ValueError, match="mask does not match"):
        bad.update(params, bad.init(params), params)
    traced = cv.torch_adamw(weight_decay=0.1, mask=lambda p: jax.tree.map(lambda x: x > 0, p))
    with pytest.raises(TypeError, match="Python bools"):
        traced.update(params, traced.init(params), params)


def test_presets_keep_moments_in_float32_for_bfloat16():
    params = {"W": jnp.ones((2, 2), jnp.bfloat16)}
    opts = (cv.torch_rmsprop(momentum=0.5, centered=True), cv.keras_sgd(momentum=0.9), cv.keras_adamw())

    @jax.jit
    def first_steps(params):
        return [opt.update(params, opt.init(params), params) for opt in opts]

    for updates, state in first_steps(params):
        assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state)[1:])
        assert updates["W"].dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(updates["W"])))


# ---------------------------------------------------------------------------------------
# A training run ported from PyTorch: same init, same data order, same loss curve.
# ---------------------------------------------------------------------------------------


def test_training_ported_from_torch_gives_the_same_loss_curve():
    torch = pytest.importorskip("torch")
    net = fnann.MLP([6, 16, 3], hidden="tanh", output="softmax")
    params = fnann.init(jax.random.key(0), net)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(6, 3)), axis=1)  # learnable labels
    key, epochs, batch = jax.random.key(1), 8, 16
    opt = cv.torch_adamw(lr=1e-2, weight_decay=0.05, mask=weights_only)
    trained, history = fnann.fit(net, "cross_entropy", opt, params, x, y, key=key, epochs=epochs,
                                 batch_size=batch)

    layers = [torch.nn.Linear(a, b) for a, b in zip(net.sizes[:-1], net.sizes[1:])]
    with torch.no_grad():
        for layer, p in zip(layers, params):  # torch's Linear.weight is (n_out, n_in), as W
            layer.weight.copy_(torch.tensor(np.asarray(p.W)))
            layer.bias.copy_(torch.tensor(np.asarray(p.b)))
    model = torch.nn.Sequential(layers[0], torch.nn.Tanh(), layers[1])
    torch_opt = torch.optim.AdamW([{"params": [l.weight for l in layers]},
                                   {"params": [l.bias for l in layers], "weight_decay": 0.0}],
                                  lr=1e-2, weight_decay=0.05)
    xt, yt, curve = torch.from_numpy(x), torch.from_numpy(y), []
    for epoch in range(epochs):
        order = torch.from_numpy(np.asarray(fnann.train.epoch_order(key, epoch, len(x))).astype(np.int64))
        losses = []
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            torch_opt.zero_grad()
            value = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            value.backward()
            torch_opt.step()
            losses.append(value.item())
        curve.append(np.mean(losses))
    np.testing.assert_allclose(history["loss"], curve, rtol=2e-6)
    assert curve[-1] < 0.8 * curve[0]  # it did train
    for layer, p in zip(layers, trained):
        np.testing.assert_allclose(np.asarray(p.W), layer.weight.detach().numpy(), rtol=1e-4, atol=1e-5)
