"""Data parallelism: fit over two processes, and fit/predict/evaluate/fit_many on a device
mesh, equal the one-device results; bad meshes are refused before anything compiles.

The CPU backend's device count is fixed when jax starts, so the multi-device checks run in
two fresh interpreters (tests/parallel_subprocess.py, 2 emulated devices each) that first
train together under jax.distributed, then run single-process mesh checks on their own
devices.
"""

import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

import fnann
import parallel_subprocess as ps
from strategies import max_rel_error

SCRIPT = os.path.join(os.path.dirname(__file__), "parallel_subprocess.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("XLA_FLAGS", None)  # the script sets its own device count
    return subprocess.Popen([sys.executable, SCRIPT, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc, timeout=120):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"subprocess timed out:\n{out}")
    assert proc.returncode == 0, out
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def leaves(results, name):
    return [results[f"{name}/p{i}"] for i in range(2 * ps.NET.n_layers)]


def same_history(results, name, hist):
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(results[f"{name}/{key}"], hist[key], rtol=1e-5, err_msg=key)


def test_two_processes_and_meshes_of_two_devices_equal_one_device(tmp_path):
    port = str(free_port())
    outs = [str(tmp_path / f"p{pid}.npz") for pid in range(2)]
    procs = [run(str(pid), port, outs[pid]) for pid in range(2)]
    # The one-device references, computed while the workers run.
    x, y, xv, yv, p0 = ps.shared_problem()
    x51, y51, val, _ = ps.local_problem()
    stacked = ps.numpy_params(1, K=2)
    with jax.default_matmul_precision("highest"):
        fit = lambda p, x, y, **kw: fnann.fit(ps.NET, "cross_entropy", ps.OPT, p, x, y, **kw)
        want_global = fit(p0, x, y, validation_data=(xv, yv), **ps.GLOBAL)
        want_local = fit(p0, x51, y51, key=ps.KEYS[0], validation_data=val, **ps.LOCAL)
        want_many = [fit(jax.tree.map(lambda a: a[k], stacked), x51, y51, key=ps.KEYS[k],
                         validation_data=val, **ps.LOCAL) for k in range(2)]
        want_predict = fnann.predict(ps.NET, p0, x51[:11])
        want_eval = fnann.evaluate(ps.NET, p0, xv, yv, "cross_entropy")
        want_eval_global = fnann.evaluate(ps.NET, want_global[0], xv, yv, "cross_entropy")
        want_bn = fnann.fit(ps.BN_NET, "cross_entropy", ps.OPT, ps.bn_params(2), x51, y51, key=ps.KEYS[0],
                            validation_data=val, **ps.LOCAL)
        want_bn_predict = fnann.predict(ps.BN_NET, *want_bn[:1], x51[:11], stats=want_bn[1])
        want_bn_global = fnann.fit(ps.BN_NET, "cross_entropy", ps.OPT, ps.bn_params(3), x, y,
                                   validation_data=(xv, yv), **ps.GLOBAL)
    for proc in procs:
        finish(proc)
    got = [dict(np.load(path)) for path in outs]
    for r in got:  # the two-process run, as each process sees it
        assert max_rel_error(leaves(r, "global"), jax.tree.leaves(want_global[0])) <= 1e-5
        same_history(r, "global", want_global[1])
        assert float(r["global/evaluate"]) == pytest.approx(want_eval_global["loss"], rel=1e-5)
        bn_leaves = jax.tree.leaves(want_bn_global[:2])  # μ_B, σ²_B over the global batch
        assert max_rel_error([r[f"bn_global/p{i}"] for i in range(len(bn_leaves))], bn_leaves) <= 1e-5
        same_history(r, "bn_global", want_bn_global[2])
    r0, r1 = got  # each process's single-process runs on its own two devices
    assert max_rel_error(leaves(r0, "local_fit"), jax.tree.leaves(want_local[0])) <= 1e-5
    same_history(r0, "local_fit", want_local[1])
    for r, name in ((r0, "many_models"), (r1, "many_data")):
        for k, (params, hist) in enumerate(want_many):
            assert max_rel_error([a[k] for a in leaves(r, name)], jax.tree.leaves(params)) <= 1e-5
            same_history(r, f"{name}{k}", hist)
    np.testing.assert_allclose(r1["predict"], want_predict, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(r1["evaluate"], [want_eval["loss"], want_eval["accuracy"]], rtol=1e-6)
    bn_leaves = jax.tree.leaves(want_bn[:2])  # a batch-norm net: params and running stats
    assert max_rel_error([r1[f"bn_fit/p{i}"] for i in range(len(bn_leaves))], bn_leaves) <= 1e-5
    same_history(r1, "bn_fit", want_bn[2])
    np.testing.assert_allclose(r1["bn_predict"], want_bn_predict, rtol=1e-5, atol=1e-6)


def one_device_mesh(*names):
    return Mesh(np.array(jax.devices()[:1]).reshape((1,) * len(names)), names)


@pytest.mark.parametrize("call", ["fit", "predict", "evaluate"])
def test_bad_meshes_are_refused_before_compiling(call):
    net = fnann.MLP([2, 3, 2])
    params = fnann.init(jax.random.key(0), net)
    x, y = jnp.ones((4, 2)), jnp.array([0, 1, 0, 1])
    run_it = {
        "fit": lambda **kw: fnann.fit(net, "cross_entropy", fnann.sgd(0.1), params, x, y,
                                      key=jax.random.key(0), epochs=1, **kw),
        "predict": lambda **kw: fnann.predict(net, params, x, **kw),
        "evaluate": lambda **kw: fnann.evaluate(net, params, x, y, "cross_entropy", **kw),
    }[call]
    with pytest.raises(ValueError, match=r"data_axis='data' is not an axis of the mesh; its axes "
                                         r"are \('batch',\)"):
        run_it(mesh=one_device_mesh("batch"))
    with pytest.raises(ValueError, match="data_axis='rows' is not an axis"):
        run_it(mesh=one_device_mesh("data"), data_axis="rows")
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
        run_it(mesh=jax.devices())


def test_fit_many_bad_mesh_arguments():
    net = fnann.MLP([2, 3, 2])
    params = fnann.init(jax.random.key(0), net)
    x, y = jnp.ones((4, 2)), jnp.array([0, 1, 0, 1])

    def fit_many(**kw):
        return fnann.fit_many(net, "cross_entropy", fnann.sgd, params, x, y, key=jax.random.key(0),
                              epochs=1, hyperparams={"lr": [0.1, 0.2]}, **kw)

    mesh = one_device_mesh("model", "data")
    with pytest.raises(ValueError, match="name model_axis .* and/or data_axis"):
        fit_many(mesh=mesh)
    with pytest.raises(ValueError, match="model_axis='models' is not an axis"):
        fit_many(mesh=mesh, model_axis="models")
    with pytest.raises(ValueError, match="must be different mesh axes"):
        fit_many(mesh=mesh, model_axis="data", data_axis="data")
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
        fit_many(mesh="data", data_axis="data")
