"""Memory stays bounded in a long-running process: 200 ``fit`` calls over 20 distinct shapes,
each with a fresh but equal optimizer (as a CLI or a notebook builds one), grow the resident
set by less than ``GROWTH_BOUND_MB`` after a warm-up pass over the shapes; fnann's caches stay
within their bounds; ``fnann.clear_caches`` drops every compiled epoch and gives the memory
of the compiled programs back to the allocator.

The measurement runs in a fresh interpreter, so that the resident set it reads
(``/proc/self/statm``, Linux only) is its own and not the test session's; it
runs beside the session (``start_early``, tests/early.py). Measured on the
2-core development machine (jax 0.10.2, CPU; params from ``fnann.init``): warm-up 167 -> 474 MB,
then +0.04 MB over the 180 calls; clear_caches + malloc_trim 438 -> 264 MB (174 MB freed). Each assertion fails on a regression:
optimizers hashed by identity (every call compiles, the 32-entry epoch cache fills) grew
82 MB; a clear_caches that keeps fnann's entries leaves all 20 epochs alive and frees 0 MB
(one that drops them but skips ``jax.clear_caches`` frees 108 MB: fnann's entries hold most).
"""

import json
import os
import sys

import pytest
from early import Child, Early, selected

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROWTH_BOUND_MB = 50  # after warm-up, over 180 calls that compile nothing new
FREED_MIN_MB = 80  # measured: 174 MB; keeping fnann's entries frees 0

RSS = r"""
PAGE = os.sysconf("SC_PAGE_SIZE")

def rss_mb():
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20
"""  # the resident set in MB, as both child processes read it

CHILD = r"""
import ctypes, gc, json, os, weakref
import numpy as np
import jax
import fnann

""" + RSS + r"""
try:  # glibc keeps freed memory until asked to return it to the system
    trim = ctypes.CDLL(None).malloc_trim
except (OSError, AttributeError):
    trim = None

rng = np.random.default_rng(0)
shapes = [(n_in, hidden) for n_in in range(2, 7) for hidden in (3, 5, 7, 9)]  # 20 distinct
problems = []
for n_in, hidden in shapes:
    x = rng.normal(size=(32, n_in)).astype(np.float32)
    problems.append((fnann.MLP([n_in, hidden, 2]), x, (x[:, 0] > 0).astype(np.int32)))

def optimizer():
    return fnann.chain(fnann.add_decayed_weights(1e-3), fnann.adam(1e-3))

def fit(call):
    net, x, y = problems[call % len(problems)]
    params = fnann.init(jax.random.key(call), net)  # init's draw is cached per net too
    fnann.fit(net, "cross_entropy", optimizer(), params, x, y, key=jax.random.key(call),
              epochs=1, batch_size=16)

fnann.clear_caches()
out = {"start": rss_mb()}
for call in range(20):
    fit(call)
out["warm"] = rss_mb()
for call in range(20, 200):
    fit(call)
out["end"] = rss_mb()
out["caches"] = {name: [i.currsize, i.maxsize, i.hits, i.misses]
                 for name, i in fnann.cache_info().items()}
loss = fnann.get_loss("cross_entropy")
epochs = [weakref.ref(fnann.train.compiled_epoch(net, loss, optimizer(), "manual", 16, None, "data", None))
          for net, _, _ in problems]  # the arguments exactly as fit passes them: 20 cache hits
out["new_misses"] = fnann.cache_info()["fnann.train.compiled_epoch"].misses - out["caches"]["fnann.train.compiled_epoch"][3]
if trim is not None:
    trim(0)
    out["trimmed"] = rss_mb()
fnann.clear_caches()
out["alive_after_clear"] = sum(ref() is not None for ref in epochs)
if trim is not None:
    trim(0)
    out["cleared"] = rss_mb()
print(json.dumps(out))
"""


def child(code: str) -> Child:
    """``code`` in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return Child([sys.executable, "-c", code], env=env)


def result(early: Early) -> dict:
    """The last line of the child's stdout, as JSON: the child run beside the session, else now."""
    proc = early.result(timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


FITS, EVICTING_RUN = Early(lambda: child(CHILD)), Early(lambda: child(EVICTING_CODE))


def start_early(items):
    """Both measurements run beside the session (tests/early.py): each reads only its own resident set."""
    if not os.path.exists("/proc/self/statm"):
        return []
    return selected(items, {"test_200_fits_over_20_shapes_grow_memory_by_less_than_the_bound": FITS,
                            "test_caches_stay_within_their_bounds_and_compile_each_shape_once": FITS,
                            "test_clear_caches_drops_the_compiled_epochs_and_frees_their_memory": FITS,
                            "test_an_evicted_entry_frees_its_compiled_programs": EVICTING_RUN})


@pytest.fixture(scope="module")
def measured():
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("reads the resident set from /proc/self/statm (Linux)")
    return result(FITS)


def test_200_fits_over_20_shapes_grow_memory_by_less_than_the_bound(measured):
    growth = measured["end"] - measured["warm"]
    assert growth < GROWTH_BOUND_MB, (
        f"RSS grew {growth:.1f} MB over 180 fit calls after warm-up (bound {GROWTH_BOUND_MB} "
        f"MB): {measured}")


def test_caches_stay_within_their_bounds_and_compile_each_shape_once(measured):
    for name, (size, maxsize, _, _) in measured["caches"].items():
        assert size <= maxsize, (name, size, maxsize)
    for name in ("fnann.train.compiled_epoch", "fnann.mlp.compiled_draw"):
        size, _, hits, misses = measured["caches"][name]
        assert (size, hits, misses) == (20, 180, 20), name


def test_clear_caches_drops_the_compiled_epochs_and_frees_their_memory(measured):
    assert measured["new_misses"] == 0  # the weak references are to the cached functions
    assert measured["alive_after_clear"] == 0
    if "cleared" not in measured:
        pytest.skip("malloc_trim (glibc) is needed to see freed memory in the RSS")
    freed = measured["trimmed"] - measured["cleared"]
    assert freed > FREED_MIN_MB, f"clear_caches gave back {freed:.1f} MB: {measured}"


EVICTING = r"""
import gc, json, os, weakref
import jax
from fnann.caches import compiled_cache

""" + RSS + r"""
@compiled_cache(maxsize=4)
def sampler(n):  # a normal draw: one of the largest programs for its size (~4 MB on a CPU)
    return jax.jit(lambda key: jax.random.normal(key, (n,)))

key, refs, rss = jax.random.key(0), [], []
for n in range(1, SHAPES + 1):
    f = sampler(n)
    f(key).block_until_ready()
    refs.append(weakref.ref(f))
    del f
    rss.append(rss_mb())
print(json.dumps({"alive": sum(r() is not None for r in refs), "warm": rss[7], "end": rss[-1]}))
"""
SHAPES = 32
EVICTED_GROWTH_BOUND_MB = 30  # over the last 24 shapes, 4 alive
EVICTING_CODE = EVICTING.replace("SHAPES", str(SHAPES))


def test_an_evicted_entry_frees_its_compiled_programs():
    """A bounded cache over ever new shapes: the evicted jitted functions die and the memory
    of their programs goes back (``trim_heap``). Measured (2 cores, jax 0.10.2): +15 MB over the
    last 24 of 32 shapes (+19 MB without the trim); an unbounded cache, as ``init``'s
    module-level ``jax.jit`` with static arguments was, grew +71 MB."""
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("reads the resident set from /proc/self/statm (Linux)")
    out = result(EVICTING_RUN)
    assert out["alive"] == 4, out
    assert out["end"] - out["warm"] < EVICTED_GROWTH_BOUND_MB, out


def test_no_module_level_jit_compiles_per_static_argument():
    """A module-level ``jax.jit`` with static arguments keeps one program per value forever
    (``init``'s draw held ~4 MB per network): fnann builds such functions in a bounded
    ``compiled_cache`` instead. Module-level jits of fixed shapes are fine."""
    import ast
    import pathlib

    found = []
    for path in pathlib.Path(ROOT, "fnann").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:  # module level only
            exprs = [node.value] if isinstance(node, ast.Assign) else getattr(node, "decorator_list", [])
            for expr in exprs:
                for call in ast.walk(expr):
                    if isinstance(call, ast.Call) and any(
                            k.arg in ("static_argnums", "static_argnames") for k in call.keywords):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
