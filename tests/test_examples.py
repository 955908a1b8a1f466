"""Every script in examples/ runs to the end in quick mode and saves its figure.

Each example runs in its own Python process, as a reader would run it, with
``FNANN_QUICK=1`` (few epochs, small sizes) and ``FNANN_FIGURES`` pointing at a temporary
folder. The examples are found with a glob, so a new example is tested without editing
this file; its figure must be named after the script (``examples/NAME.py`` saves
``NAME.png``). The selected scripts start together, at most one per CPU core, because each
spends most of its few seconds importing and compiling; each test then waits for its own. They
start when collection ends (``start_early``, tests/conftest.py), beside the rest of the session.
"""

import concurrent.futures
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


def run_quick(script: pathlib.Path, folder: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FNANN_QUICK": "1", "FNANN_FIGURES": str(folder), "MPLBACKEND": "Agg",
           "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    return subprocess.run([sys.executable, str(script)], check=False, env=env, cwd=folder,
                          capture_output=True, text=True, timeout=180)


_early = {}


def start(scripts, tmp_root):
    """Starts ``scripts``, at most one per CPU core at a time; maps script -> (future of its run, its
    figure folder), and returns the pool."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    runs = {}
    for script in scripts:
        folder = pathlib.Path(tempfile.mkdtemp(prefix=f"{script.stem}-", dir=tmp_root))
        runs[script] = (pool.submit(run_quick, script, folder), folder)
    return runs, pool


def start_early(items):
    """The examples start when collection ends and run beside the session (tests/conftest.py)."""
    if importlib.util.find_spec("matplotlib") is None or importlib.util.find_spec("sklearn") is None:
        return []
    scripts = [item.callspec.params["script"] for item in items if hasattr(item, "callspec")]
    if not scripts:
        return []
    tmp_root = tempfile.mkdtemp(prefix="fnann-examples-")
    _early["runs"], pool = start(scripts, tmp_root)
    _early["tmp_root"] = tmp_root
    return [lambda: pool.shutdown(wait=False, cancel_futures=True)]


@pytest.fixture(scope="module")
def quick_runs(request, tmp_path_factory):
    """Maps each selected example to (future of its run, its figure folder): started early, else now."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    if "runs" in _early:
        runs = _early.pop("runs")
        yield runs
        concurrent.futures.wait([future for future, _ in runs.values()])
        shutil.rmtree(_early.pop("tmp_root"), ignore_errors=True)
        return
    selected = [item.callspec.params["script"] for item in request.session.items
                if getattr(item, "module", None) is sys.modules[__name__] and hasattr(item, "callspec")]
    runs, pool = start(selected, tmp_path_factory.mktemp("examples"))
    with pool:
        yield runs


def test_examples_found():
    assert EXAMPLES, "no examples/*.py found"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_quick(script, quick_runs):
    future, folder = quick_runs[script]
    result = future.result()
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode}\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}")
    figure = folder / f"{script.stem}.png"
    assert figure.is_file() and figure.stat().st_size > 0, (
        f"{script.name} did not save {figure.name}; files: {sorted(os.listdir(folder))}")
