"""Every script in examples/ runs to the end in quick mode and saves its figure.

Each example runs in its own Python process, as a reader would run it, with
``FNANN_QUICK=1`` (few epochs, small sizes) and ``FNANN_FIGURES`` pointing at a temporary
folder. The examples are found with a glob, so a new example is tested without editing
this file; its figure must be named after the script (``examples/NAME.py`` saves
``NAME.png``). The selected scripts start together, at most one per CPU core, because each
spends most of its few seconds importing and compiling; each test then waits for its own.
"""

import concurrent.futures
import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


def run_quick(script: pathlib.Path, folder: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FNANN_QUICK": "1", "FNANN_FIGURES": str(folder), "MPLBACKEND": "Agg",
           "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    return subprocess.run([sys.executable, str(script)], check=False, env=env, cwd=folder,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def quick_runs(request, tmp_path_factory):
    """Starts every selected example; maps script -> (future of its run, its figure folder)."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    selected = [item.callspec.params["script"] for item in request.session.items
                if getattr(item, "module", None) is sys.modules[__name__] and hasattr(item, "callspec")]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        runs = {}
        for script in selected:
            folder = tmp_path_factory.mktemp(script.stem)
            runs[script] = (pool.submit(run_quick, script, folder), folder)
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
