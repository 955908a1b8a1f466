"""The two worker processes of test_parallel.py: multi-process and multi-device training.

The device count of the CPU backend is fixed when jax starts, so each worker is a fresh
interpreter that sets XLA_FLAGS=--xla_force_host_platform_device_count=2 before jax imports
(and compiles with less LLVM optimization):

    python tests/parallel_subprocess.py PID PORT OUT     # PID 0 and 1, the same free PORT

Both workers join one jax.distributed run (coordinator on localhost:PORT, gloo CPU
collectives), train their shard of ``shared_problem()`` on a global mesh of all 4 devices
(``GLOBAL``) and evaluate it, then train a batch-norm net (``BN_NET``) the same way. Then each runs its share of single-process runs on a mesh of
its own 2 devices (``LOCAL_RUNS[PID]``). Every result goes to the npz file OUT; the test
computes the one-device references itself and compares.
"""

import os
import sys

if __name__ == "__main__":
    # Backend (LLVM) optimization off: a quarter less compile time; the SPMD partitioning
    # under test happens in XLA's HLO passes, before it.
    os.environ["XLA_FLAGS"] = ("--xla_force_host_platform_device_count=2 "
                               "--xla_backend_optimization_level=0")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

import fnann  # noqa: E402

NET = fnann.MLP([5, 8, 3], hidden="tanh")
OPT = fnann.adam(1e-2)
# batch 7 on 4 devices: every batch is uneven, the last 52 mod 7 = 3 rows fewer than devices
GLOBAL = dict(key=np.array([0, 3], np.uint32), epochs=3, batch_size=7)
# batch 8 on 2 devices: 6 batches of 4 rows per device, then 51 mod 8 = 3 rows, uneven
LOCAL = dict(epochs=2, batch_size=8)
KEYS = np.array([[0, 11], [0, 12]], np.uint32)  # legacy PRNGKeys: nothing to compile
BN_NET = fnann.MLP([5, 8, 3], hidden="tanh", norm="batch")  # batch norm: μ_B, σ²_B over the global batch


def numpy_params(seed: int, K: int | None = None, net=NET):
    """Glorot-scaled params drawn by numpy (jax.random would compile for seconds); with K,
    K sets stacked along a leading axis."""
    rng = np.random.default_rng(seed)
    lead = () if K is None else (K,)
    return tuple(fnann.Dense((rng.normal(size=lead + (o, i)) * np.sqrt(2 / (i + o))).astype(np.float32),
                             (0.1 * rng.normal(size=lead + (o,))).astype(np.float32))
                 for i, o in zip(net.sizes[:-1], net.sizes[1:]))


def bn_params(seed: int):
    """numpy_params with the hidden layer a Normed(W, γ, β) (batch norm), γ and β not 1 and 0."""
    rng = np.random.default_rng(seed + 100)
    (W, _), out = numpy_params(seed, net=BN_NET)
    gamma, beta = (1 + 0.1 * rng.normal(size=8)).astype(np.float32), (0.1 * rng.normal(size=8)).astype(np.float32)
    return fnann.Normed(W, gamma, beta), out


def shared_problem(n=52, n_val=12):
    """The data: every process derives all of it, then takes its shard."""
    rng = np.random.default_rng(42)
    x = rng.normal(size=(n + n_val, 5)).astype(np.float32)
    y = rng.integers(0, 3, n + n_val).astype(np.int32)
    return x[:n], y[:n], x[n:], y[n:], numpy_params(0)


def local_problem():
    x, y, xv, yv, p0 = shared_problem()
    return x[:51], y[:51], (xv, yv), p0


def local_mesh(*names):
    return Mesh(np.array(jax.local_devices()).reshape((2,) + (1,) * (len(names) - 1)), names)


def save(results: dict, name: str, params, history=None):
    for i, leaf in enumerate(jax.tree.leaves(params)):
        results[f"{name}/p{i}"] = np.asarray(leaf)
    for key, values in (history or {}).items():
        results[f"{name}/{key}"] = np.asarray(values)


def run_fit_on_a_local_mesh(results):
    x, y, val, p0 = local_problem()
    params, hist = fnann.fit(NET, "cross_entropy", OPT, p0, x, y, key=KEYS[0], validation_data=val,
                             mesh=local_mesh("data"), **LOCAL)
    assert params[0].W.sharding.is_fully_replicated and len(params[0].W.sharding.device_set) == 2
    save(results, "local_fit", params, hist)


def run_fit_many(results, name, mesh, **axes):
    x, y, val, _ = local_problem()
    res = fnann.fit_many(NET, "cross_entropy", OPT, numpy_params(1, K=2), x, y, key=KEYS,
                         validation_data=val, mesh=mesh, **axes, **LOCAL)
    save(results, name, res.params)
    for k in range(2):
        save(results, f"{name}{k}", [], res.histories[k])
    return res


def run_fit_many_with_the_models_split(results):
    mesh = local_mesh("model", "data")
    res = run_fit_many(results, "many_models", mesh, model_axis="model")
    assert res.params[0].W.sharding.spec[0] == "model"
    x, y, _, _ = local_problem()
    try:
        fnann.fit_many(NET, "cross_entropy", OPT, numpy_params(1, K=3), x, y, key=KEYS[0],
                       epochs=1, mesh=mesh, model_axis="model")
    except ValueError as e:
        assert "must be a multiple of the mesh axis 'model'" in str(e), e
    else:
        raise AssertionError("K=3 on a model axis of 2 devices should raise")


def run_fit_many_with_the_batches_split(results):
    run_fit_many(results, "many_data", local_mesh("data"), data_axis="data")


def run_batch_norm_fit_on_a_local_mesh(results):
    """A batch-norm net's fit on 2 devices (the stats replicated; every batch, the uneven last
    one of 3 rows too, normalized by its global statistics), and predict by the running stats."""
    x, y, val, _ = local_problem()
    params, stats, hist = fnann.fit(BN_NET, "cross_entropy", OPT, bn_params(2), x, y, key=KEYS[0],
                                    validation_data=val, mesh=local_mesh("data"), **LOCAL)
    assert stats[0].mean.sharding.is_fully_replicated and len(stats[0].mean.sharding.device_set) == 2
    save(results, "bn_fit", (params, stats), hist)
    results["bn_predict"] = np.asarray(fnann.predict(BN_NET, params, x[:11], mesh=local_mesh("data"),
                                                     stats=stats))


def run_predict_and_evaluate_on_a_local_mesh(results):
    mesh = jax.make_mesh((2,), ("data",), devices=jax.local_devices())  # Explicit axes
    x, y, (xv, yv), p0 = local_problem()
    results["predict"] = np.asarray(fnann.predict(NET, p0, x[:11], mesh=mesh))  # 11 rows, uneven
    metrics = fnann.evaluate(NET, p0, xv, yv, "cross_entropy", mesh=mesh)
    results["evaluate"] = np.array([metrics["loss"], metrics["accuracy"]])


LOCAL_RUNS = ((run_fit_on_a_local_mesh, run_fit_many_with_the_models_split),
              (run_predict_and_evaluate_on_a_local_mesh, run_fit_many_with_the_batches_split,
               run_batch_norm_fit_on_a_local_mesh))


def main(pid: int, port: str, out: str):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=pid,
                               initialization_timeout=60)
    results = {}
    try:
        assert jax.process_count() == 2 and jax.device_count() == 4 and jax.local_device_count() == 2
        x, y, xv, yv, p0 = shared_problem()
        shard = lambda a: np.split(a, 2)[pid]  # process 0 holds the first half of the rows
        mesh = jax.make_mesh((4,), ("data",))  # every process's devices
        with jax.default_matmul_precision("highest"):  # full float32 on GPU/TPU too
            params, hist = fnann.fit(NET, "cross_entropy", OPT, p0, shard(x), shard(y),
                                     validation_data=(shard(xv), shard(yv)), mesh=mesh, **GLOBAL)
            metrics = fnann.evaluate(NET, params, shard(xv), shard(yv), "cross_entropy", mesh=mesh)
            save(results, "global", params, hist)
            results["global/evaluate"] = np.array(metrics["loss"])
            # batch norm over two processes: each batch (the last of 3 rows too) normalized by
            # the statistics of its rows on all 4 devices
            params, stats, hist = fnann.fit(BN_NET, "cross_entropy", OPT, bn_params(3), shard(x), shard(y),
                                            validation_data=(shard(xv), shard(yv)), mesh=mesh, **GLOBAL)
            save(results, "bn_global", (params, stats), hist)
            for run in LOCAL_RUNS[pid]:
                run(results)
    finally:
        np.savez(out, **results)
        jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
