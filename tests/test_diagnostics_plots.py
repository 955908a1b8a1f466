"""Gradient-flow figures (per-layer bars, layers x epochs heatmaps) and the --diagnostics option."""

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


def test_train_diagnostics_option_is_checked(capsys):
    # the full `fnann train --diagnostics` run is part of tests/test_cli.py::test_train_digits_quick
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--no-cache", "--diagnostics", "0"])
    assert e.value.code == 2 and "must be > 0" in capsys.readouterr().err
