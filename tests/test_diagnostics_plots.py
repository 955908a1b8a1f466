"""Gradient-flow figures, and ``fnann train --diagnostics`` printing the table and writing the heatmap."""

import numpy as np
import pytest

from fnann import cli
from fnann.diagnostics import Diagnostics
from fnann.diagnostics_plots import plot_heatmap, plot_layers

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


def fake(shape):
    rng = np.random.default_rng(0)
    fields = {f: rng.uniform(1e-4, 1, shape) for f in Diagnostics._fields}
    fields["dead_fraction"] = np.full(shape, np.nan)  # sigmoid layers: no dead units
    return Diagnostics(**fields)


def test_plot_layers_and_heatmap_write_pngs(tmp_path):
    assert open(plot_layers(fake((3,)), tmp_path / "bars.png"), "rb").read(8) == PNG
    stacked = fake((4, 3))
    stacked.dW_norm[-1, 0] = 0.0  # a gradient that vanished entirely
    path = plot_heatmap([0, 2, 4, 6], stacked, tmp_path / "heat.png",
                        fields=("dW_norm", "dead_fraction", "saturated_fraction"))
    assert open(path, "rb").read(8) == PNG
    with pytest.raises(ValueError, match="unknown diagnostics field 'grad'"):
        plot_layers(fake((3,)), tmp_path / "x.png", fields=("grad",))
    with pytest.raises(ValueError, match="3 epochs but 4 records"):
        plot_heatmap([0, 1, 2], fake((4, 3)), tmp_path / "y.png")
    with pytest.raises(ValueError, match="at least one record"):
        plot_heatmap([], fake((0, 3)), tmp_path / "z.png")


def test_train_with_diagnostics_prints_the_table_and_writes_the_heatmap(tmp_path, capsys):
    argv = ["train", "--data", "xor", "--hidden-sizes", "5,5", "--hidden", "sigmoid", "--epochs", "3",
            "--no-gradcheck", "--no-cache", "--no-progress", "--out", str(tmp_path), "--diagnostics", "2"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    table = out.split("gradient flow after epoch 2 (256 training examples):\n")[1].splitlines()
    assert table[0].split()[:3] == ["layer", "act", "shape"]
    assert [row.split()[:3] for row in table[2:5]] == [["1", "sigmoid", "5x2"], ["2", "sigmoid", "5x5"],
                                                       ["3", "softmax", "2x5"]]
    assert (tmp_path / "diagnostics.png").read_bytes()[:8] == PNG
    with pytest.raises(SystemExit) as e:
        cli.main(argv[:-1] + ["0"])
    assert e.value.code == 2 and "must be > 0" in capsys.readouterr().err
