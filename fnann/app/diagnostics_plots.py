"""Figures of gradient flow (app side; matplotlib is imported only when a figure is drawn).

``plot_layers`` draws one batch's :class:`fnann.diagnostics.Diagnostics` as per-layer bars;
``plot_heatmap`` draws a :class:`fnann.diagnostics.Recorder`'s records as layers x epochs
heatmaps, where a vanishing gradient is a dark band at the bottom (layer 1).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from fnann.app.plots import _pyplot, save_figure

LABELS = {"W_norm": r"$\|W^{(l)}\|_F$", "dW_norm": r"$\|\partial L/\partial W^{(l)}\|_F$",
          "delta_norm": r"$\|\delta^{(l)}\|_F$", "update_ratio": r"$\|\Delta W^{(l)}\|_F / \|W^{(l)}\|_F$",
          "z_mean": "mean of $Z^{(l)}$", "z_std": "std of $Z^{(l)}$", "a_mean": "mean of $A^{(l)}$",
          "a_std": "std of $A^{(l)}$", "dead_fraction": "dead ReLU fraction",
          "saturated_fraction": "saturated fraction"}
LOG = ("W_norm", "dW_norm", "delta_norm", "update_ratio")  # drawn on a log scale
FRACTIONS = ("dead_fraction", "saturated_fraction")


def _field(diag, name: str) -> np.ndarray:
    if name not in LABELS:
        raise ValueError(f"unknown diagnostics field {name!r}; use one of {', '.join(LABELS)}.")
    return np.asarray(getattr(diag, name), np.float64)


def plot_layers(diag, path: str | os.PathLike, title: str = "",
                fields: Sequence[str] = ("dW_norm", "delta_norm", "update_ratio", "dead_fraction",
                                         "saturated_fraction")) -> str:
    """Per-layer bars of one batch's diagnostics (fields that are NaN everywhere are skipped)."""
    shown = [f for f in fields if not np.all(np.isnan(_field(diag, f)))]
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.2), layout="constrained",
                             squeeze=False)
    for ax, name in zip(axes[0], shown):
        values = _field(diag, name)
        layers = np.arange(1, len(values) + 1)
        ax.bar(layers, np.nan_to_num(values), color="C3" if name in FRACTIONS else "C0")
        ax.set(xlabel="layer l", xticks=layers, title=LABELS[name])
        if name in LOG and np.all(values[~np.isnan(values)] > 0):
            ax.set_yscale("log")
        if name in FRACTIONS:
            ax.set_ylim(0, 1)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_heatmap(epochs: Sequence[int], stacked, path: str | os.PathLike, title: str = "",
                 fields: Sequence[str] = ("dW_norm", "update_ratio")) -> str:
    """Layers x epochs heatmaps of recorded diagnostics (``Recorder.epochs``, ``Recorder.stacked()``).

    Norms and ratios are coloured by log10 (an exact zero takes the darkest colour);
    fractions linearly from 0 to 1; NaN (does not apply) is left blank. Layer 1 (next to the
    input) is the bottom row.
    """
    epochs = np.asarray(epochs)
    if epochs.ndim != 1 or len(epochs) == 0:
        raise ValueError("plot_heatmap needs at least one record (epochs is empty).")
    plt = _pyplot()
    n_layers = np.shape(getattr(stacked, "W_norm"))[-1]
    fig, axes = plt.subplots(len(fields), 1, figsize=(7, len(fields) * (1.0 + 0.22 * n_layers)),
                             layout="constrained", squeeze=False)
    for ax, name in zip(axes[:, 0], fields):
        values = _field(stacked, name)  # (records, L)
        if values.shape[0] != len(epochs):
            raise ValueError(f"{len(epochs)} epochs but {values.shape[0]} records of {name}.")
        log = name in LOG
        if log and np.any(values > 0):  # an exact zero (a gradient that vanished entirely): darkest
            values = np.where(values == 0, np.min(values[values > 0]), values)
        with np.errstate(divide="ignore", invalid="ignore"):
            shown = np.log10(values) if log else values
        image = ax.imshow(np.ma.masked_invalid(shown.T), origin="lower", aspect="auto", cmap="magma",
                          interpolation="nearest", vmin=None if log else 0, vmax=None if log else 1,
                          extent=(-0.5, len(epochs) - 0.5, 0.5, values.shape[1] + 0.5))
        step = max(1, len(epochs) // 10)
        ax.set_xticks(range(0, len(epochs), step), [str(e) for e in epochs[::step]])
        ax.set_yticks(range(1, values.shape[1] + 1))
        ax.set(xlabel="epochs completed", ylabel="layer l")
        fig.colorbar(image, ax=ax, label=("log10 " if log else "") + LABELS[name])
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)

