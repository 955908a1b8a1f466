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
