"""The prepared accelerator check runs (``--quick``) on any CPU, so it is ready when a GPU is.

The check is a chain of subprocesses (~25 s); it runs beside the session (``start_early``,
tests/early.py) and its test reads the report.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from early import Child, Early, selected

ROOT = Path(__file__).parent.parent
FOLDER = {}  # the check's report folder, once started


def start() -> Child:
    FOLDER["report"] = folder = Path(tempfile.mkdtemp(prefix="fnann-gpu-check-"))
    return Child([sys.executable, "benchmarks/gpu_check.py", "--quick", "--out", str(folder / "report.md")], cwd=ROOT)


QUICK = Early(start)


def start_early(items):
    """The check runs beside the session (tests/early.py)."""
    return selected(items, {"test_the_quick_check_runs_every_section_and_never_overwrites_a_report": QUICK})


def test_the_quick_check_runs_every_section_and_never_overwrites_a_report():
    try:
        done = QUICK.result(timeout=400)
        assert done.returncode == 0, done.stdout + done.stderr
        report = FOLDER["report"] / "report.md"
        text = report.read_text()
        for title in ("device and versions", "fnann gradcheck", "fnann train, cold cache", "fnann train, warm cache",
                      "the test suite", "bench_train.py", "large networks", "bench_scale.py fit_many",
                      "fnann gradcheck, batch norm and dropout", "bench_norm.py"):
            assert f"## {title}: ok" in text, title
        assert "matmul peak float32" in text and "of peak" in text and "0 section(s) failed" in text
        again = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--quick", "--out", str(report)], cwd=ROOT,
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 2 and "exists; pass --overwrite" in again.stderr and report.read_text() == text
    finally:
        if "report" in FOLDER:
            shutil.rmtree(FOLDER.pop("report"), ignore_errors=True)
