"""The prepared accelerator check runs (``--quick``) on any CPU, so it is ready when a GPU is."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_the_quick_check_runs_every_section_and_never_overwrites_a_report(tmp_path):
    report = tmp_path / "report.md"
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--quick", "--out", str(report)], cwd=ROOT,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    text = report.read_text()
    for title in ("device and versions", "fnann gradcheck", "fnann train, cold cache", "fnann train, warm cache",
                  "the test suite", "bench_train.py", "large networks", "bench_scale.py fit_many"):
        assert f"## {title}: ok" in text, title
    assert "matmul peak float32" in text and "of peak" in text and "0 section(s) failed" in text
    again = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--quick", "--out", str(report)], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "exists; pass --overwrite" in again.stderr and report.read_text() == text
