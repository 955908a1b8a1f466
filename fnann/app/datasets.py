"""Data sets for trying fnann: bundled real sets, synthetic sets, and your own files.

Plain numpy; scikit-learn is imported only when a bundled real set is asked for. Randomness
comes only from explicit ``seed`` arguments (``np.random.default_rng``, never the global RNG).
A `Dataset` is batch-first: ``x`` float32 (n, d); classification labels int32 (n,) in 0..k-1;
regression targets float32 (n, k), always 2-D. ``standardize=True`` maps features, and
regression targets, to (v - mean) / std with training-split statistics (a constant column gets
std 1); `Dataset.scale_x` and `Dataset.unscale_y` apply them to new inputs and predictions.
"""

from __future__ import annotations

import csv
import os
from typing import Any, NamedTuple

import numpy as np

__all__ = ["NAMES", "Dataset", "load", "load_file", "one_hot", "read_features", "sine", "spirals", "xor"]

_BUNDLED = ("digits", "iris", "breast_cancer", "wine", "diabetes")
_SYNTHETIC = ("xor", "spirals", "sine")
NAMES: tuple[str, ...] = _BUNDLED + _SYNTHETIC
_TASKS = ("auto", "classification", "regression")
_MAX_AUTO_CLASSES = 50


class Dataset(NamedTuple):
    """A train/test split ready for `fnann.fit`.

    ``n_outputs`` is the width the network's last layer needs: ``n_classes`` for
    classification (2 for a two-class problem, i.e. a softmax over two units) and the number
    of target columns for regression. ``classes`` holds the original class values in label
    order (label i stands for ``classes[i]``); it is None for regression. ``x_mean``/``x_std``
    and ``target_mean``/``target_std`` (regression only) are the training-split statistics
    used for standardization, or None when ``standardize=False``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str
    n_classes: int | None
    feature_names: tuple[str, ...]
    classes: tuple | None = None
    x_mean: np.ndarray | None = None
    x_std: np.ndarray | None = None
    target_mean: np.ndarray | None = None
    target_std: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        """Number of input features d."""
        return self.x_train.shape[1]

    @property
    def n_outputs(self) -> int:
        """Output width: ``n_classes`` for classification, target columns for regression."""
        return self.n_classes if self.task == "classification" else self.y_train.shape[1]

    def scale_x(self, x: np.ndarray) -> np.ndarray:
        """Standardize new inputs with the training statistics (identity if none were used)."""
        x = np.asarray(x, np.float32)
        return x if self.x_mean is None else ((x - self.x_mean) / self.x_std).astype(np.float32)

    def unscale_y(self, y: np.ndarray) -> np.ndarray:
        """Map standardized regression outputs back to the original target units."""
        y = np.asarray(y)
        return y if self.target_mean is None else y * self.target_std + self.target_mean


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    """One-hot rows of integer labels: float32 of shape (n, n_classes).

    Raises:
        ValueError: if a label is not an integer in 0..n_classes-1.
    """
    y = np.asarray(y)
    if y.ndim != 1 or (y.size and (y.min() < 0 or y.max() >= n_classes or np.any(y != y.round()))):
        raise ValueError(f"y must be 1-D integer labels in 0..{n_classes - 1}; got {y!r:.60}")
    return np.eye(n_classes, dtype=np.float32)[y.astype(np.int64)]


def _check_generator(n_samples: int, noise: float, least: int) -> None:
    if int(n_samples) != n_samples or n_samples < least:
        raise ValueError(f"n_samples must be an integer >= {least}; got {n_samples!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0; got {noise!r}")


def xor(n_samples: int = 400, noise: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 2-D XOR: Gaussian blobs (std ``noise``) at (+-1, +-1); class 1 where signs differ.

    Returns:
        ``(x, y)``: float32 (n_samples, 2) and int32 (n_samples,), classes within one in size.
    """
    _check_generator(n_samples, noise, 4)
    rng = np.random.default_rng(seed)
    corner = np.arange(n_samples) % 4                      # 0:(+,+) 1:(+,-) 2:(-,-) 3:(-,+)
    signs = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], np.float64)[corner]
    x = signs + noise * rng.standard_normal((n_samples, 2))
    y = (corner % 2).astype(np.int32)                      # signs differ at corners 1 and 3
    order = rng.permutation(n_samples)
    return x[order].astype(np.float32), y[order]


def spirals(n_samples: int = 400, noise: float = 0.2,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals of 1.5 turns in the unit disc, one per class.

    ``noise`` is the std of the Gaussian jitter as a fraction of the gap between arms (1/3).

    Returns:
        ``(x, y)``: float32 (n_samples, 2) and int32 (n_samples,), classes within one in size.
    """
    _check_generator(n_samples, noise, 2)
    rng = np.random.default_rng(seed)
    y = (np.arange(n_samples) % 2).astype(np.int32)
    theta = np.sqrt(rng.uniform(0.0, 1.0, n_samples)) * 3 * np.pi
    arm = np.where(y == 0, 1.0, -1.0)[:, None]             # class 1 is class 0 turned by pi
    x = arm * (theta / (3 * np.pi))[:, None] * np.stack([np.cos(theta), np.sin(theta)], 1)
    x += (noise / 3) * rng.standard_normal((n_samples, 2))
    order = rng.permutation(n_samples)
    return x[order].astype(np.float32), y[order]


def sine(n_samples: int = 256, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sine regression: x uniform in [-pi, pi], y = sin(x) + noise * N(0, 1).

    Returns:
        ``(x, y)``: both float32 of shape (n_samples, 1).
    """
    _check_generator(n_samples, noise, 2)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-np.pi, np.pi, (n_samples, 1))
    y = np.sin(x) + noise * rng.standard_normal((n_samples, 1))
    return x.astype(np.float32), y.astype(np.float32)


def _split(labels: np.ndarray | None, n: int, test_size: float, seed: int):
    """Seeded train/test indices; stratified (largest-remainder counts) when labels are given."""
    n_test = int(np.ceil(test_size * n))
    if n_test < 1 or n_test >= n:
        raise ValueError(f"test_size={test_size} leaves an empty train or test split of {n} rows")
    rng = np.random.default_rng((seed, 1))                 # a stream apart from the generators'
    if labels is None:
        perm = rng.permutation(n)
        return perm[n_test:], perm[:n_test]
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    exact = n_test * counts / n
    take = np.floor(exact).astype(np.int64)
    take[np.argsort(take - exact, kind="stable")[: n_test - take.sum()]] += 1
    train, test = [], []
    for c, k in enumerate(take):
        idx = rng.permutation(np.flatnonzero(inverse == c))
        test.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    std = np.where(np.ptp(a, axis=0) == 0, 1.0, a.std(axis=0))   # constant column -> std 1
    return a.mean(axis=0), std


def _build(name, x, y, task, feature_names, classes, test_size, seed, standardize) -> Dataset:
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1); got {test_size!r}")
    x = np.asarray(x, np.float64)
    classify = task == "classification"
    y = np.asarray(y, np.int32 if classify else np.float64)
    tr, te = _split(y if classify else None, len(x), test_size, seed)
    x_tr, x_te, y_tr, y_te = x[tr], x[te], y[tr], y[te]
    extra: dict[str, Any] = {}
    if standardize:
        mu, sd = _stats(x_tr)
        x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
        extra.update(x_mean=mu.astype(np.float32), x_std=sd.astype(np.float32))
        if not classify:
            t_mu, t_sd = _stats(y_tr)
            y_tr, y_te = (y_tr - t_mu) / t_sd, (y_te - t_mu) / t_sd
            extra.update(target_mean=t_mu.astype(np.float32), target_std=t_sd.astype(np.float32))
    y_dtype = np.int32 if classify else np.float32
    return Dataset(name, x_tr.astype(np.float32), y_tr.astype(y_dtype), x_te.astype(np.float32),
                   y_te.astype(y_dtype), task, len(classes) if classify else None,
                   tuple(map(str, feature_names)), tuple(classes) if classify else None, **extra)


def _sklearn_datasets(name: str):
    try:
        from sklearn import datasets
    except ImportError as err:
        raise ImportError(f'load({name!r}) needs scikit-learn, which ships the bundled data sets: '
                          f'pip install "fnann[data]" (or pip install scikit-learn)') from err
    return datasets


def load(name: str, *, test_size: float = 0.2, seed: int = 0, standardize: bool = True,
         **kwargs: Any) -> Dataset:
    """Load a named data set, split (stratified for classification) and standardized.

    Bundled real sets (from the copy inside scikit-learn, never downloaded): "digits",
    "iris", "breast_cancer", "wine" (classification) and "diabetes" (regression, 1 target).
    Synthetic sets made in numpy: "xor", "spirals" (classification, 2 classes) and "sine"
    (regression); they take ``n_samples`` and ``noise`` keywords (see `xor`, `spirals`, `sine`).

    Args:
        name: one of `NAMES`.
        test_size: fraction of rows in the test split, in (0, 1); the test split has
            ``ceil(test_size * n)`` rows.
        seed: non-negative int; seeds the split and, for synthetic sets, the generator.
        standardize: scale features (and regression targets) with training-split statistics.
        **kwargs: options of the synthetic generators.

    Returns:
        A `Dataset`.

    Raises:
        ValueError: for an unknown name or a test_size outside (0, 1).
        TypeError: for keyword options the data set does not take.
        ImportError: for a bundled set when scikit-learn is not installed.

    Example:
        >>> from fnann.app.datasets import load
        >>> ds = load("xor", n_samples=200, test_size=0.25, seed=1)
        >>> ds.x_train.shape, ds.y_test.shape, ds.y_train.dtype.name, ds.n_outputs
        ((150, 2), (50,), 'int32', 2)
    """
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; known names: {', '.join(NAMES)}")
    if name in _SYNTHETIC:
        x, y = {"xor": xor, "spirals": spirals, "sine": sine}[name](seed=seed, **kwargs)
        task = "regression" if name == "sine" else "classification"
        names = ("x",) if name == "sine" else ("x0", "x1")
        return _build(name, x, y, task, names, (0, 1), test_size, seed, standardize)
    if kwargs:
        raise TypeError(f"load({name!r}) takes no options; got {', '.join(kwargs)}")
    sk = _sklearn_datasets(name)
    if name == "diabetes":
        bunch = sk.load_diabetes(scaled=False)
        return _build(name, bunch.data, bunch.target[:, None], "regression",
                      bunch.feature_names, None, test_size, seed, standardize)
    bunch = getattr(sk, f"load_{name}")()
    return _build(name, bunch.data, bunch.target, "classification", bunch.feature_names,
                  np.asarray(bunch.target_names).tolist(), test_size, seed, standardize)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_table(path: str, label: int | str, delimiter: str):
    """Parse a delimited text file into (x, raw label cells, feature names, label line info)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        rows = [(reader.line_num, [c.strip() for c in r]) for r in reader
                if any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if not rows:
        raise ValueError(f"{path}: the file is empty")
    first = rows[0][1]
    nxt = rows[1][1] if len(rows) > 1 else [""] * len(first)
    # A header has a text cell where the next row has a number (or, alone, any text cell), so
    # a text label column in a file without a header is not mistaken for one.
    header = any(a and not _is_number(a) and (len(rows) == 1 or _is_number(b))
                 for a, b in zip(first, nxt))
    columns = first if header else [f"x{j}" for j in range(len(first))]
    rows = rows[1:] if header else rows
    if not rows:
        raise ValueError(f"{path}: the file has a header but no data rows")
    n_cols = len(columns)
    if label is None:
        col = None
    elif isinstance(label, str):
        if label not in columns:
            raise ValueError(f"{path}: no label column {label!r}; available columns: "
                             f"{', '.join(columns) if header else 'none by name (no header row)'}")
        col = columns.index(label)
    elif -n_cols <= label < n_cols:
        col = label % n_cols
    else:
        raise ValueError(f"{path}: label column {label} does not exist; available columns: "
                         f"0..{n_cols - 1} (or -{n_cols}..-1): {', '.join(columns)}")
    feats = [j for j in range(n_cols) if j != col]
    x = np.empty((len(rows), len(feats)))
    for i, (line, cells) in enumerate(rows):
        if len(cells) != n_cols:
            raise ValueError(f"{path}: line {line} has {len(cells)} columns, expected {n_cols}")
        for k, j in enumerate(feats):
            try:
                x[i, k] = float(cells[j])
            except ValueError:
                raise ValueError(f"{path}: line {line}, column {j} ({columns[j]}): "
                                 f"{cells[j]!r} is not a number") from None
            if not np.isfinite(x[i, k]):
                raise ValueError(f"{path}: line {line}, column {j} ({columns[j]}): "
                                 f"{cells[j]} is not a finite number")
    if col is None:
        return x, None, tuple(columns), []
    where = [f"line {line}, column {col} ({columns[col]})" for line, _ in rows]
    return x, np.array([cells[col] for _, cells in rows]), tuple(columns[j] for j in feats), where


def read_features(path: str | os.PathLike, *, delimiter: str = ",") -> np.ndarray:
    """Reads a feature matrix with no label column: a CSV (optional header) or an ``.npz``
    with an array ``x``; returns float32 of shape (n, d).

    Raises:
      FileNotFoundError: if the file does not exist.
      ValueError: for a ragged row, a non-numeric cell, NaN or inf (naming the line).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data:
                raise ValueError(f"{path}: missing key 'x'; found keys: {', '.join(data.files)}")
            x = np.asarray(data["x"], dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
        if x.ndim != 2 or not np.all(np.isfinite(x)):
            raise ValueError(f"{path}: x must be finite numbers of shape (n, d); got {x.shape}")
        return x.astype(np.float32)
    return _read_table(path, None, delimiter)[0].astype(np.float32)


def _read_npz(path: str):
    with np.load(path, allow_pickle=False) as data:
        for key in ("x", "y"):
            if key not in data:
                raise ValueError(f"{path}: missing key {key!r}; an .npz needs arrays 'x' (n, d) "
                                 f"and 'y' (n,) or (n, k); found keys: {', '.join(data.files)}")
        x, y = np.asarray(data["x"]), np.asarray(data["y"])
    x, y = (x[:, None] if x.ndim == 1 else x), (y.astype(np.int64) if y.dtype == bool else y)
    if x.ndim != 2 or y.ndim not in (1, 2) or len(y) != len(x) or x.dtype.kind not in "fiu":
        raise ValueError(f"{path}: x must be numbers of shape (n, d) and y of shape (n,) or "
                         f"(n, k); got x {x.dtype} {x.shape}, y {y.shape}")
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{path}: x is not finite (NaN or inf) at row {bad[0]}, column {bad[1]}")
    return x, y, tuple(f"x{j}" for j in range(x.shape[1])), [f"row {i} of y" for i in range(len(y))]


def _labels(path: str, y: np.ndarray, where: list[str], task: str):
    """Check the labels and settle the task: returns (y, task, classes)."""
    if y.dtype.kind in "US":  # text: numbers if every cell is one, else class names
        try:
            y = y.astype(np.float64)
        except ValueError:
            if task == "regression":
                i = int(np.argwhere(~np.vectorize(_is_number, otypes=[bool])(y))[0][0])
                raise ValueError(f"{path}: {where[i]}: {str(y[i])!r} is not a number "
                                 f"(regression needs numeric labels)") from None
    text = y.dtype.kind not in "fiu"
    if not text and not np.all(np.isfinite(y)):
        i = int(np.argwhere(~np.isfinite(y))[0][0])
        raise ValueError(f"{path}: {where[i]}: the label is not a finite number (NaN or inf)")
    if task == "auto":
        few = text or (np.all(y == np.round(y)) and len(np.unique(y)) <= _MAX_AUTO_CLASSES)
        task = "classification" if few and (y.ndim == 1 or y.shape[1] == 1) else "regression"
    if task == "regression":
        return y.reshape(len(y), -1), task, None
    if y.ndim == 2 and y.shape[1] != 1:
        raise ValueError(f"{path}: classification needs one label column; y has shape {y.shape}")
    classes, y = np.unique(y.reshape(-1), return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"{path}: the labels hold a single class ({classes[0]}); "
                         f"classification needs at least 2")
    return y, task, [int(c) if isinstance(c, float) and c.is_integer() else c
                     for c in classes.tolist()]


def load_file(path: str | os.PathLike, *, label: int | str = -1, task: str = "auto",
              test_size: float = 0.2, seed: int = 0, standardize: bool = True,
              delimiter: str = ",") -> Dataset:
    """Load your own data from a CSV (or other delimited text) file or an ``.npz`` archive.

    Text: one row per example; blank lines and lines starting with ``#`` are skipped. The
    first row is a header (feature names; ``label`` may name a column) when a cell of it is not
    a number where the next row has one. Features must be numbers; labels may be numbers or
    class names. ``.npz``: arrays under the keys ``x`` (n, d) and ``y`` (n,) or (n, k).

    ``task="auto"``: integer labels with at most 50 distinct values, or text labels, mean
    classification, anything else regression. Classes are remapped to 0..k-1 in sorted order,
    the original values kept in `Dataset.classes`.

    Args:
        path: the file; ``.npz`` by extension, anything else is read as delimited text.
        label: the label column of a text file, by index (negative from the end) or name.
        task: "auto", "classification" or "regression".
        test_size, seed, standardize: as in `load`.
        delimiter: the column separator of a text file.

    Returns:
        A `Dataset` named after the file.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: one line naming the file and the problem: an empty file, a ragged row,
            a non-numeric or non-finite cell (lines count from 1, columns from 0 as ``label``
            does), a missing label column
            (listing the available ones), a missing ``.npz`` key, a single class, or a bad
            ``task`` or ``test_size``.
    """
    path = os.fspath(path)
    if task not in _TASKS:
        raise ValueError(f"task must be one of {', '.join(_TASKS)}; got {task!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    if path.lower().endswith(".npz"):
        x, y, names, where = _read_npz(path)
    else:
        x, y, names, where = _read_table(path, label, delimiter)
    y, task, classes = _labels(path, y, where, task)
    name = os.path.splitext(os.path.basename(path))[0]
    return _build(name, x, y, task, names, classes, test_size, seed, standardize)
