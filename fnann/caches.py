"""fnann's in-memory caches of compiled functions: bounded, listed, cleared together.

fnann builds each jitted function once per static configuration and keeps it, so that
neither a new epoch nor a new call with the same shapes traces or compiles again:

==================================  =====  ====================================================
cache                               size   one entry per
==================================  =====  ====================================================
``fnann.mlp.compiled_draw``           32   (net, dtype) of ``init``
``fnann.train.compiled_epoch``        32   (net, loss, optimizer, method, batch_size, mesh, axis)
``fnann.train.compiled_start``        32   (net, loss, optimizer): ``init`` and the reference loss in ``fit``
``fnann.inference._chunk_fns``        32   (net, loss, mesh, axis) of ``predict``/``evaluate``
``fnann.sweep.compiled_many``         32   ``fit_many``'s configuration
``fnann.sweep._references_many``      32   ``fit_many``'s reference losses (net, loss)
``fnann.sweep._stats_many``           32   ``fit_many``'s validation (net, loss, mesh, axis)
``fnann.sweep._fold_all``             32   (models, key implementation) of ``fit_many``'s shuffles
``fnann.diagnostics._compiled``       32   (net, loss, optimizer, threshold) of ``diagnose``
``fnann.gradcheck._compiled_check``   32   (net, loss) of ``check_grads`` (float64)
``fnann.app.explain._compiled_*``     32   (net, loss, ...) of ``fnann explain`` (two caches)
``fnann.lbfgs.compiled_lbfgs``        32   (fun, history, the params' structure) of ``lbfgs``
``fnann.sklearn.objective.*``         32   the estimators' epoch, optimizer init, L-BFGS function
                                           and forward pass, per configuration (four caches,
                                           listed once ``fnann.sklearn`` is imported)
``fnann.sklearn.sweep.compiled_sweep`` 16  ``GridSweepCV``'s vmapped epoch, per configuration
==================================  =====  ====================================================

Optimizers and schedules compare and hash by their configuration, so a fresh but equal
``adam(1e-3)`` (or ``chain(add_decayed_weights(1e-3), adam(1e-3))``) finds the entry an
earlier one made; so does a fresh equal optax transform (``fnann.optim.base.fingerprint``).
Each entry is a ``jax.jit`` function holding one compiled XLA program per
input shape and dtype it has seen. JAX keeps compiled programs in its own in-memory caches
too, so a long-running process grows with the number of distinct (configuration, shape)
pairs it compiled, not with the number of calls. ``clear_caches`` gives that memory back.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

_CACHES: dict[str, Callable] = {}  # name -> the cached builder (cache_info, cache_clear)
_OWNERS = ("fnann.mlp", "fnann.train", "fnann.inference", "fnann.sweep", "fnann.diagnostics",
           "fnann.gradcheck", "fnann.app.explain", "fnann.lbfgs")  # import-time registrars (fnann.sklearn
# registers its caches when it is imported: it needs scikit-learn, an extra)


def compiled_cache(maxsize: int) -> Callable[[F], F]:
    """``functools.lru_cache(maxsize)`` for a builder of jitted functions, registered so that
    ``cache_info`` lists it and ``clear_caches`` empties it. When a new entry evicts the least
    recently used one, the evicted function's compiled programs die with it (nothing else in
    fnann holds them) and the heap they freed goes back to the system (:func:`trim_heap`)."""

    def register(build: F) -> F:
        cached = functools.lru_cache(maxsize=maxsize)(build)

        @functools.wraps(build)
        def lookup(*args, **kwargs):
            before = cached.cache_info()
            result = cached(*args, **kwargs)
            if before.currsize == maxsize and cached.cache_info().misses > before.misses:
                trim_heap()  # an entry was evicted
            return result

        lookup.cache_info, lookup.cache_clear = cached.cache_info, cached.cache_clear
        _CACHES[f"{build.__module__}.{build.__qualname__}"] = lookup
        return lookup  # type: ignore[return-value]

    return register


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; absent from musl
    except (OSError, AttributeError, TypeError):
        return None


def trim_heap() -> None:
    """Returns the C heap's free memory to the operating system: glibc's ``malloc_trim(0)``
    (glibc keeps what a freed XLA program used, so the resident set would not shrink); a
    no-op where there is no glibc."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def cache_info() -> dict[str, functools._CacheInfo]:
    """Hits, misses, size and bound of each of fnann's caches of compiled functions.

    Example:
      >>> import fnann
      >>> fnann.cache_info()["fnann.train.compiled_epoch"].maxsize
      32
    """
    import importlib

    for module in _OWNERS:  # ``import fnann`` is lazy: a cache exists once its module is imported
        importlib.import_module(module)
    return {name: cache.cache_info() for name, cache in _CACHES.items()}


def clear_caches(jax_caches: bool = True) -> None:
    """Empties fnann's caches of compiled functions and, by default, JAX's in-memory caches,
    and returns the freed memory to the system (:func:`trim_heap`).

    Args:
      jax_caches: also call ``jax.clear_caches()``, which frees the compiled programs JAX
        keeps itself; every jitted function in the process then compiles again on its next
        call (the persistent compilation cache on disk is untouched).

    Example:
      >>> import fnann
      >>> fnann.clear_caches()
      >>> fnann.cache_info()["fnann.train.compiled_epoch"].currsize
      0
    """
    for cache in _CACHES.values():
        cache.cache_clear()
    if jax_caches:
        import jax

        jax.clear_caches()
    gc.collect()  # a program held only through a reference cycle goes too
    trim_heap()
