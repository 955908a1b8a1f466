"""The training history as a CSV file next to the checkpoint, for plotting with any tool."""

from __future__ import annotations

import os


def save_history(path: str | os.PathLike, history: dict) -> str:
    """Writes ``fit``'s history as CSV, atomically: a header, then one row per epoch.

    The columns are ``epoch`` (counted from 1, as the progress lines and plots count) and
    every other per-epoch list of the history (``loss``, ``val_loss``, ``val_accuracy``),
    in full precision (``repr`` of the float); a missing value is left empty.

    Returns:
      The path written.

    Example:
      >>> import tempfile
      >>> with tempfile.TemporaryDirectory() as d:
      ...     p = save_history(os.path.join(d, "history.csv"),
      ...                      {"epoch": [0, 1], "loss": [0.5, 0.25], "val_loss": [0.625, 0.5]})
      ...     print(open(p).read(), end="")
      epoch,loss,val_loss
      1,0.5,0.625
      2,0.25,0.5
    """
    from fnann.atomic import atomic_write

    columns = [k for k in history if k != "epoch"]
    n = max((len(history[k]) for k in history), default=0)
    epochs = list(history.get("epoch", range(n)))
    lines = [",".join(["epoch", *columns])]
    for i in range(n):
        cells = [str(int(epochs[i]) + 1) if i < len(epochs) else ""]
        for k in columns:
            v = history[k][i] if i < len(history[k]) else None
            cells.append("" if v is None else repr(float(v)))
        lines.append(",".join(cells))
    return atomic_write(path, ("\n".join(lines) + "\n").encode())
