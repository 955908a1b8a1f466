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


def test_the_kept_epoch_is_marked_on_every_panel(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, **kw: figures.append(fig) or str(path))
    history = {"epoch": [0, 1, 2], "loss": [1.0, 0.5, 0.6], "val_loss": [1.1, 0.6, 0.7],
               "val_accuracy": [0.5, 0.8, 0.7]}
    plots.plot_history(history, tmp_path / "c.png", title="iris: 4-8-3 relu/softmax", best_epoch=1)
    (fig,) = figures
    for ax in fig.axes:
        marks = [line for line in ax.lines if line.get_label() == "kept: epoch 2"]
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [2, 2]
    assert fig._suptitle.get_text() == "iris: 4-8-3 relu/softmax"
