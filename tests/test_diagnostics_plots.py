"""Gradient-flow figures (per-layer bars, layers x epochs heatmaps) and the --diagnostics option."""

import numpy as np
import pytest

from fnann.app import cli
from fnann.diagnostics import Diagnostics
from fnann.app.diagnostics_plots import plot_heatmap, plot_layers

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


def test_train_diagnostics_option_is_checked(capsys):
    # the full `fnann train --diagnostics` run is the test below
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--no-cache", "--diagnostics", "0"])
    assert e.value.code == 2 and "--diagnostics: must be >= 1" in capsys.readouterr().err


def test_cli_train_diagnostics_prints_the_table_and_writes_the_heatmap(tmp_path, capsys):
    """``fnann train --diagnostics K``: the last record's table (one row per layer) and the
    layers x epochs heatmap beside the curves."""
    from fnann.app import cli

    out_dir = tmp_path / "run"
    status = cli.main(["train", "--data", "iris", "--hidden-sizes", "8", "--epochs", "3", "--diagnostics", "2",
                       "--out", str(out_dir), "--no-cache", "--no-progress", "--no-gradcheck"])
    out = capsys.readouterr().out
    assert status == 0
    table = out.split("gradient flow after epoch 2 (")[1].splitlines()
    assert [row.split()[:3] for row in table[3:5]] == [["1", "relu", "8x4"], ["2", "softmax", "3x8"]]
    assert (out_dir / "diagnostics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
