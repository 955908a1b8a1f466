"""Speed to the first result: what ``fnann train`` pays before and around the math.

``import fnann`` is lazy (no JAX until a name is used), every public name still resolves to
its module's object, the command line answers ``--help`` without JAX, ``compile_fit`` and
``compile_inference`` leave nothing for ``fit``, ``predict`` and ``evaluate`` to compile, and
a whole default ``fnann train`` compiles a bounded number of XLA programs (each one costs a
trace and a compilation-cache lookup at start-up; an eager operation per array adds dozens).
"""

import contextlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

import jax
import numpy as np
import pytest

import fnann
from early import Child, Early, selected
from fnann import inference, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": ROOT, **(env or {})}
    return subprocess.run([sys.executable, *args, "-c", code] if code else [sys.executable, *args],
                          capture_output=True, text=True, env=full_env, timeout=300)


def test_import_fnann_does_not_import_jax_until_a_name_is_used():
    out = python("import sys, fnann; print('jax' in sys.modules); fnann.MLP; print('jax' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]


def test_every_public_name_is_its_modules_object():
    for name in fnann.__all__:
        value = getattr(fnann, name)
        if name in fnann._MODULES:
            assert value is importlib.import_module(fnann._MODULES[name]), name
        else:
            assert value is getattr(importlib.import_module(fnann._WHERE[name]), name), name
    assert set(fnann.__all__) <= set(dir(fnann))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fnann.nope  # noqa: B018


def test_importing_a_submodule_first_does_not_shadow_a_function():
    """``import fnann.inference`` binds the submodule on the package; no submodule is named
    like a public function, so ``fnann.predict`` is still the function."""
    out = python("import fnann.inference, fnann.train, fnann.sweep, fnann; "
                 "print(callable(fnann.predict), fnann.predict is fnann.inference.predict)")
    assert out.stdout.split() == ["True", "True"], out.stderr
    submodules = {m.name for m in __import__("pkgutil").iter_modules(fnann.__path__)}
    assert not submodules & (set(fnann.__all__) - set(fnann._MODULES))


@pytest.mark.parametrize("argv, status", [(["--help"], 0), (["--version"], 0), (["train", "--bogus"], 2),
                                          (["train", "--epochs", "-1"], 2)])
def test_the_console_entry_exits_with_the_status_and_flushed_output(argv, status):
    """``console`` ends the process with ``os._exit`` after flushing: the status and every
    line must still arrive through a pipe. ``--help`` does not import JAX."""
    code = ("import sys; from fnann.app import cli; sys.argv = ['fnann', *sys.argv[1:]]; "
            "import atexit; atexit.register(lambda: print('jax' in sys.modules, file=sys.stderr)); cli.console()")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, timeout=300)
    assert out.returncode == status, out.stderr
    assert (out.stdout if status == 0 else out.stderr).strip()
    assert "False" not in out.stderr and "True" not in out.stderr  # os._exit skipped atexit
    if argv == ["--help"]:
        assert "usage: fnann" in out.stdout


def test_help_imports_no_jax():
    out = python("", "-X", "importtime", "-m", "fnann", "--help")
    assert out.returncode == 0, out.stderr
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time")}
    assert "fnann.app.cli" in imported and not any(m == "jax" or m.startswith("jax.") for m in imported)


@contextlib.contextmanager
def counting_compilations():
    """The number of XLA compilations (JAX's backend-compile events) inside the block."""
    seen = []

    def listen(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            seen.append(kwargs.get("fun_name", "?"))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


@pytest.mark.parametrize("given", ["arrays", "shapes"])
def test_compile_fit_and_compile_inference_leave_nothing_to_compile(given):
    """The programs are compiled ahead (here on a thread, as ``fnann train`` does), from the
    params and key or from their shapes alone (``jax.ShapeDtypeStruct``, before init runs);
    fit, predict and evaluate with the same shapes then compile nothing, and counting works:
    the same calls at other shapes do compile."""
    import threading

    net = fnann.MLP([7, 9, 3], hidden="sigmoid" if given == "arrays" else "tanh")  # compiled by no other test
    params = fnann.init(jax.random.key(0), net)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(53, 7)).astype(np.float32), rng.integers(0, 3, 53)
    xv, yv = rng.normal(size=(11, 7)).astype(np.float32), rng.integers(0, 3, 11)
    opt, key = fnann.momentum(0.05, 0.9), jax.random.key(1)
    early_params, early_key = params, key
    if given == "shapes":
        early_params, early_key = jax.eval_shape(lambda k: (fnann.init(k, net), k), key)
        assert isinstance(early_params[0].W, jax.ShapeDtypeStruct)

    def ahead():
        train.compile_fit(net, "cross_entropy", opt, early_params, x, y, batch_size=8,
                          validation_data=(xv, yv), key=early_key)
        inference.compile_inference(net, early_params, x[:20], y[:20], "cross_entropy")

    worker = threading.Thread(target=ahead)
    worker.start()
    worker.join()
    with counting_compilations() as compiled:
        fnann.fit(net, "cross_entropy", fnann.momentum(0.05, 0.9), params, x, y, key=key, epochs=2,
                  batch_size=8, validation_data=(xv, yv))
        fnann.predict(net, params, x[:20])
        fnann.evaluate(net, params, x[:20], y[:20], "cross_entropy")
    assert compiled == []
    with counting_compilations() as compiled:
        fnann.fit(net, "cross_entropy", opt, params, x[:50], y[:50], key=key, epochs=1, batch_size=8)
        fnann.predict(net, params, x[:21])
    assert len(compiled) >= 2


def test_compile_fit_refuses_what_fit_refuses():
    net = fnann.MLP([3, 2])
    params = fnann.init(jax.random.key(0), net)
    with pytest.raises(ValueError, match="batch_size"):
        train.compile_fit(net, "cross_entropy", fnann.sgd(0.1), params, np.zeros((4, 3)), np.zeros(4, int),
                          batch_size=0)
    with pytest.raises(ValueError):
        train.compile_fit(net, "cross_entropy", fnann.sgd(0.1), params, np.zeros((4, 5)), np.zeros(4, int))


def test_shapes_are_refused_where_values_are_needed_and_checked_where_they_are_taken():
    """Shapes (``jax.ShapeDtypeStruct``) stand in for params only in compile_fit and
    compile_inference; everything that computes names the argument instead of failing inside
    JAX, and shapes that do not fit the net are refused by the compile functions too."""
    net = fnann.MLP([3, 4, 2])
    shapes = jax.eval_shape(lambda k: fnann.init(k, net), jax.random.key(0))
    params = fnann.init(jax.random.key(0), net)
    x, y = np.zeros((5, 3), np.float32), np.zeros(5, int)
    calls = {
        "fit": lambda p, x: fnann.fit(net, "cross_entropy", fnann.sgd(0.1), p, x, y, key=jax.random.key(0), epochs=1),
        "predict": lambda p, x: fnann.predict(net, p, x),
        "forward": lambda p, x: fnann.forward(net, p, x),
        "evaluate": lambda p, x: fnann.evaluate(net, p, x, y, "cross_entropy"),
        "check_grads": lambda p, x: fnann.check_grads(net, "cross_entropy", p, x, y),
        "loss_and_grad": lambda p, x: fnann.loss_and_grad(net, "cross_entropy")(p, x, y),
        "fit_many": lambda p, x: fnann.fit_many(net, "cross_entropy", fnann.sgd, p, x, y,
                                                key=jax.random.key(0), epochs=1, hyperparams={"lr": [0.1, 0.2]}),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError, match=r"params\[0\]\.W is a jax.ShapeDtypeStruct"):
            call(shapes, x)
        with pytest.raises(TypeError, match="x is a jax.ShapeDtypeStruct"):
            call(params, jax.ShapeDtypeStruct(x.shape, x.dtype))
    stack = jax.tree.map(lambda a: jax.ShapeDtypeStruct((2, *a.shape), a.dtype), shapes)
    with pytest.raises(TypeError, match=r"params\[0\]\.W is a jax.ShapeDtypeStruct"):
        calls["fit_many"](stack, x)
    wrong = jax.eval_shape(lambda k: fnann.init(k, fnann.MLP([3, 5, 2])), jax.random.key(0))
    with pytest.raises(ValueError, match=r"params\[0\] has W \(5, 3\)"):
        train.compile_fit(net, "cross_entropy", fnann.sgd(0.1), wrong, x, y)
    with pytest.raises(ValueError, match=r"params\[0\] has W \(5, 3\)"):
        inference.compile_inference(net, wrong, x)
    integer = tuple(fnann.Dense(jax.ShapeDtypeStruct(p.W.shape, np.int32), p.b) for p in shapes)
    with pytest.raises(TypeError, match=r"params\[0\]\.W must be a floating array"):
        train.compile_fit(net, "cross_entropy", fnann.sgd(0.1), integer, x, y)


TRAIN_COUNTING = """
import jax, sys
from fnann.app import cli
seen = []
jax.monitoring.register_event_duration_secs_listener(
    lambda e, d, **k: seen.append(k.get("fun_name")) if e == "/jax/core/compile/backend_compile_duration" else None)
for name, extra in (("run", []), ("batch-norm", ["--norm", "batch", "--epochs", "5"])):
    seen.clear()
    status = cli.main(["train", "--out", sys.argv[1] + "-" + name, "--no-cache", "--no-progress", "--no-plot", *extra])
    print("compiled:", status, len(seen), *seen)
"""


def start_train() -> Child:
    """``TRAIN_COUNTING`` into a fresh temporary folder, in a fresh process."""
    FOLDER["train"] = folder = tempfile.mkdtemp(prefix="fnann-startup-")
    return Child([sys.executable, "-c", TRAIN_COUNTING, os.path.join(folder, "out")],
                 env={**os.environ, "PYTHONPATH": ROOT})


FOLDER = {}
TRAIN = Early(start_train)


def start_early(items):
    """The training runs beside the session (tests/early.py)."""
    return selected(items, {"test_fnann_train_compiles_a_bounded_number_of_programs": TRAIN})


def test_fnann_train_compiles_a_bounded_number_of_programs():
    """A default ``fnann train`` on digits in a fresh process: the gradient check, init, the
    epoch, the validation and the test programs, not one program per eager operation (the
    count was 47 before init, the gradient check, the keys and the input casts became single
    programs; it is 9 now). Then, in the same process, a batch-norm net's run: its own 9 (the
    running statistics start on the host: 3 eager programs fewer)."""
    try:
        out = TRAIN.result(timeout=300)
    finally:
        if "train" in FOLDER:
            shutil.rmtree(FOLDER.pop("train"), ignore_errors=True)
    assert out.returncode == 0, out.stderr
    counts = [line.split()[1:] for line in out.stdout.splitlines() if line.startswith("compiled:")]
    assert len(counts) == 2, out.stdout  # the default run's, then batch norm's
    for status, count, *names in counts:
        assert status == "0"
        assert int(count) <= 10, names
