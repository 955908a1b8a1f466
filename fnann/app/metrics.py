"""The numbers the command line reports: class predictions, RMSE and R² (plain numpy)."""

from __future__ import annotations

import numpy as np


def predicted_classes(y_hat: np.ndarray) -> np.ndarray:
    """Class indices from network outputs: argmax over the outputs, or ŷ > 0.5 for one output.

    Example:
      >>> predicted_classes(np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])).tolist()
      [1, 0]
      >>> predicted_classes(np.array([[0.2], [0.9]])).tolist()
      [0, 1]
    """
    y_hat = np.asarray(y_hat)
    return np.argmax(y_hat, axis=1) if y_hat.shape[1] > 1 else (y_hat[:, 0] > 0.5).astype(np.int64)


def rmse_r2(y_hat: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Root mean squared error over every element, and R² averaged over the target columns.

    Math: RMSE = sqrt((1/N) Σ (ŷ - y)²);  R²_j = 1 - Σ_i (y_ij - ŷ_ij)² / Σ_i (y_ij - ȳ_j)²
    (scikit-learn's ``r2_score`` with ``multioutput="uniform_average"``). R² is NaN when a
    target column is constant (no variance to explain).

    Example:
      >>> rmse_r2(np.array([[1.0], [2.0], [4.0]]), np.array([[1.0], [3.0], [4.0]]))
      (0.5773502691896257, 0.7857142857142857)
    """
    y_hat, y = np.asarray(y_hat, np.float64), np.asarray(y, np.float64)
    y_hat, y = y_hat.reshape(len(y_hat), -1), y.reshape(len(y), -1)
    residual = np.sum((y - y_hat) ** 2, axis=0)
    total = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    r2 = float(np.mean(1 - residual / total)) if np.all(total > 0) else float("nan")
    return float(np.sqrt(np.mean((y - y_hat) ** 2))), r2
