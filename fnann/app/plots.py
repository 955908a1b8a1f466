"""Figures of a training run (matplotlib is an optional extra: ``pip install "fnann[plot]"``)."""

from __future__ import annotations

import os


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError('plots need matplotlib: pip install "fnann[plot]"') from err
    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 100, tight: bool = True) -> str:
    """Saves a matplotlib figure as PNG atomically (temporary file, then rename) and closes it.

    ``tight`` crops the canvas to what is drawn (one more layout pass); a figure laid out
    with fixed margins passes False.
    """
    from fnann.atomic import atomic_write

    extra = {"bbox_inches": "tight"} if tight else {}
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, **extra))
    finally:
        _pyplot().close(fig)


def plot_history(history: dict, path: str | os.PathLike, title: str = "",
                 best_epoch: int | None = None) -> str:
    """Plots the per-epoch loss (and validation loss/accuracy, if present) to a PNG.

    Args:
      history: ``fit``'s history (``"epoch"`` counts from 0; the plot counts from 1).
      path: the PNG to write (atomically).
      title: a title over the figure.
      best_epoch: an epoch of ``history["epoch"]`` to mark with a dashed line, e.g. the
        one whose params early stopping kept.
    """
    return save_figure(history_figure(history, title, best_epoch), path, tight=False)


def history_figure(history: dict, title: str = "", best_epoch: int | None = None):
    """The figure ``plot_history`` saves (a matplotlib ``Figure``; the caller closes it)."""
    plt = _pyplot()
    has_acc = "val_accuracy" in history
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5.5, 3.8))
    # fixed margins for the fixed figure sizes: a third of the time a layout engine takes
    fig.subplots_adjust(left=0.08 if has_acc else 0.14, right=0.98, bottom=0.13, top=0.82 if title else 0.9,
                        wspace=0.22)
    axes = axes if has_acc else [axes]
    epochs = [e + 1 for e in history["epoch"]]
    axes[0].plot(epochs, history["loss"], label="training loss")
    if "val_loss" in history:
        axes[0].plot(epochs, history["val_loss"], label="validation loss")
    axes[0].set(xlabel="epoch", ylabel="loss", yscale="log", title="loss")
    axes[0].legend()
    if has_acc:
        axes[1].plot(epochs, history["val_accuracy"], color="C2")
        axes[1].set(xlabel="epoch", ylabel="accuracy", title="validation accuracy")
        axes[1].grid(alpha=0.3)
    if best_epoch is not None:
        for ax in axes:
            ax.axvline(best_epoch + 1, color="0.4", linestyle="--", linewidth=1,
                       label=f"kept: epoch {best_epoch + 1}")
        axes[0].legend()
    if title:
        fig.suptitle(title)
    return fig
