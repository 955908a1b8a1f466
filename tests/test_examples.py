"""Every script in examples/ runs to the end in quick mode and saves its figure.

Each example runs in its own Python process, as a reader would run it, with
``FNANN_QUICK=1`` (few epochs, small sizes) and ``FNANN_FIGURES`` pointing at a temporary
folder. The examples are found with a glob, so a new example is tested without editing
this file; its figure must be named after the script (``examples/NAME.py`` saves
``NAME.png``). They run beside the session, one after another (``start_early``,
tests/early.py); those not yet started when this module is reached start together, and each
test then waits for its own.
"""

import importlib.util
import os
import pathlib
import shutil
import sys
import tempfile

import pytest
from early import Child, Early

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


def quick(script: pathlib.Path) -> Child:
    """The script in quick mode, saving its figure into a fresh temporary folder (``FOLDERS[script]``)."""
    FOLDERS[script] = folder = pathlib.Path(tempfile.mkdtemp(prefix=f"fnann-{script.stem}-"))
    env = {**os.environ, "FNANN_QUICK": "1", "FNANN_FIGURES": str(folder), "MPLBACKEND": "Agg",
           "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    return Child([sys.executable, str(script)], env=env, cwd=folder)


FOLDERS = {}
_early = {}


def start_early(items):
    """The examples run beside the session, one after another (tests/early.py)."""
    if importlib.util.find_spec("matplotlib") is None or importlib.util.find_spec("sklearn") is None:
        return []
    for item in items:
        if hasattr(item, "callspec"):
            script = item.callspec.params["script"]
            _early[script] = Early(lambda script=script: quick(script))
    return list(_early.values())


@pytest.fixture(scope="module")
def quick_runs(request):
    """Maps each selected example to its run: those the background lane has not reached start now,
    together (each spends most of its few seconds importing and compiling)."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    selected = [item.callspec.params["script"] for item in request.session.items
                if getattr(item, "module", None) is sys.modules[__name__] and hasattr(item, "callspec")]
    runs = {script: _early.pop(script, None) or Early(lambda script=script: quick(script)) for script in selected}
    for early in runs.values():
        early.launch()
    yield runs
    for early in runs.values():
        early.stop()
    for folder in FOLDERS.values():
        shutil.rmtree(folder, ignore_errors=True)


def test_examples_found():
    assert EXAMPLES, "no examples/*.py found"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_quick(script, quick_runs):
    result = quick_runs[script].result(timeout=180)
    folder = FOLDERS[script]
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode}\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}")
    figure = folder / f"{script.stem}.png"
    assert figure.is_file() and figure.stat().st_size > 0, (
        f"{script.name} did not save {figure.name}; files: {sorted(os.listdir(folder))}")
