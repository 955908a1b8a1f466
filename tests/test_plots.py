"""plot_history writes a real PNG atomically; without matplotlib the error names the extra."""

import sys

import pytest

from fnann.app import plots

pytest.importorskip("matplotlib")


@pytest.mark.parametrize("history", [
    {"epoch": [0, 1, 2], "loss": [1.0, 0.5, 0.3]},
    {"epoch": [0, 1], "loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "val_accuracy": [0.5, 0.8]},
])
def test_plot_history_writes_a_png(tmp_path, history):
    path = plots.plot_history(history, tmp_path / "sub" / "curves.png", title="t")
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["curves.png"]  # no temp file left


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "fnann\[plot\]"'):
        plots.plot_history({"epoch": [0], "loss": [1.0]}, tmp_path / "c.png")
