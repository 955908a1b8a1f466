"""The prepared accelerator check runs (``--quick``) on any CPU, so it is ready when a GPU is.

The check is a chain of subprocesses (~25 s); it starts when collection ends (``start_early``,
tests/conftest.py) and runs beside the rest of the session.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parent.parent
_early = {}


def start(folder: Path) -> subprocess.Popen:
    """The quick check writing ``folder/report.md``; its output goes to ``folder/stdout``, ``stderr``."""
    with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
        return subprocess.Popen([sys.executable, "benchmarks/gpu_check.py", "--quick", "--out",
                                 str(folder / "report.md")], cwd=ROOT, stdout=out, stderr=err, text=True)


def start_early(items):
    folder = Path(tempfile.mkdtemp(prefix="fnann-gpu-check-"))
    _early["quick"] = (start(folder), folder)
    return [_early["quick"][0]]


def test_the_quick_check_runs_every_section_and_never_overwrites_a_report(tmp_path):
    proc, folder = _early.pop("quick", None) or (start(tmp_path), tmp_path)
    try:
        try:
            proc.wait(timeout=400)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        report = folder / "report.md"
        assert proc.returncode == 0, (folder / "stdout").read_text() + (folder / "stderr").read_text()
        text = report.read_text()
        for title in ("device and versions", "fnann gradcheck", "fnann train, cold cache", "fnann train, warm cache",
                      "the test suite", "bench_train.py", "large networks", "bench_scale.py fit_many"):
            assert f"## {title}: ok" in text, title
        assert "matmul peak float32" in text and "of peak" in text and "0 section(s) failed" in text
        again = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--quick", "--out", str(report)], cwd=ROOT,
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 2 and "exists; pass --overwrite" in again.stderr and report.read_text() == text
    finally:
        if folder != tmp_path:
            shutil.rmtree(folder, ignore_errors=True)
