"""Shared test configuration.

Hypothesis profiles: "dev" (the default) and "ci" (selected when the environment variable
CI is set) both use a fixed derandomised seed so a run is reproducible, and ``deadline=None``
because every new shape compiles new XLA programs. Tests that need float64 enter
``with jax.enable_x64(True):`` themselves; nothing switches it on globally.
"""

import os

# On a GPU, JAX reserves most of the device's memory per process by default: parallel test
# workers (pytest -n) would exhaust it. Set before any test module imports jax.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The suite's time is mostly XLA compiling thousands of small programs, a third of which is
# the backend's (LLVM's) optimization passes; they change how fast a program runs, not what
# it computes beyond rounding. The tests compile without them (the benchmarks, and users,
# keep them): XLA_FLAGS given by the caller win, and FNANN_TEST_OPTIMIZED=1 keeps them on.
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_backend_optimization_level" not in _flags and os.environ.get("FNANN_TEST_OPTIMIZED") != "1":
    os.environ["XLA_FLAGS"] = f"{_flags} --xla_backend_optimization_level=0".strip()

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

COMMON = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("dev", max_examples=10, **COMMON)
settings.register_profile("ci", max_examples=12, **COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def _emulate_reduced_precision_matmuls() -> None:
    """``FNANN_TEST_MATMUL=bfloat16``: every float32 matrix product that does not ask for full
    precision (``Precision.HIGHEST``, or ``jax.default_matmul_precision("highest"/"float32")``)
    rounds its operands to bfloat16 first, as TPUs do by default (and, with 10 bits, GPUs' TF32).
    The CPU ignores ``jax_default_matmul_precision="bfloat16"``, so this is how a CPU run finds the
    tests whose float32 tolerances assume exact products. Off unless the variable is set."""
    if os.environ.get("FNANN_TEST_MATMUL") != "bfloat16":
        return
    import jax
    import jax.numpy as jnp
    from jax._src import config
    from jax._src.lax import lax as lax_internal

    exact = (jax.lax.Precision.HIGHEST, "highest", "float32", "F32_F32_F32", "F64_F64_F64")
    original = lax_internal.dot_general

    def full(precision) -> bool:
        chosen = precision if precision is not None else config.default_matmul_precision.value
        if isinstance(chosen, (tuple, list)):
            return all(full(p) for p in chosen)
        return chosen in exact or getattr(chosen, "name", None) in ("HIGHEST", "F32_F32_F32")

    def rounded(a):
        return a.astype(jnp.bfloat16).astype(a.dtype) if jnp.result_type(a) == jnp.float32 else a

    def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None, **kw):
        if not full(precision):
            lhs, rhs = rounded(jnp.asarray(lhs)), rounded(jnp.asarray(rhs))
        return original(lhs, rhs, dimension_numbers, precision, preferred_element_type, **kw)

    lax_internal.dot_general = dot_general
    jax.lax.dot_general = dot_general


_emulate_reduced_precision_matmuls()


@pytest.fixture
def exact_matmuls():
    """Full float32 matrix products, ``jax.default_matmul_precision("highest")``, for a test that
    compares float32 results with a reference at a tolerance tighter than the rounding of the
    backend's default products (TF32 on GPUs, about 2^-11; bfloat16 passes on TPUs, 2^-8)."""
    import jax

    with jax.default_matmul_precision("highest"):
        yield


def pytest_configure(config):
    config.addinivalue_line("markers", "cpu_numbers: asserts numbers measured on a CPU with exact float32 "
                                       "products (the README's); skipped on other backends and under "
                                       "FNANN_TEST_MATMUL")


def pytest_collection_modifyitems(config, items):
    if not any("cpu_numbers" in item.keywords for item in items):
        return
    import jax

    if jax.default_backend() == "cpu" and not os.environ.get("FNANN_TEST_MATMUL"):
        return
    skip = pytest.mark.skip(reason="the numbers were measured on a CPU with exact float32 matrix products")
    for item in items:
        if "cpu_numbers" in item.keywords:
            item.add_marker(skip)



# Subprocess-bound tests run their children beside the session (tests/early.py): a test module
# opts in with ``start_early(items)``, given its selected items, returning ``early.Early``
# objects; one background thread launches them in turn, in the order of the modules, as soon as
# collection ends. Nothing is launched early under pytest-xdist (each worker collects every
# test) or --collect-only; children still running when the session ends are killed.
_EARLY: list = []


def pytest_collection_finish(session):
    if os.environ.get("PYTEST_XDIST_WORKER") or session.config.option.collectonly:
        return
    selected: dict = {}
    for item in session.items:
        module = getattr(item, "module", None)
        if module is not None and hasattr(module, "start_early"):
            selected.setdefault(module, []).append(item)
    for module, items in selected.items():
        _EARLY.extend(module.start_early(items))
    if _EARLY:
        import threading

        from early import lane

        threading.Thread(target=lane, args=(list(_EARLY),), name="fnann-early-lane", daemon=True).start()


def pytest_sessionfinish(session):
    for started in _EARLY:
        started.stop()
