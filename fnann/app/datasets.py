"""Data sets for trying fnann: bundled real sets, synthetic sets, and your own files.

Plain numpy; scikit-learn is imported only when a bundled real set other than digits is asked
for (digits, the command line's default, is read straight from the data file scikit-learn
ships, which takes 0.1 s where importing scikit-learn takes 1.6 s). Randomness
comes only from explicit ``seed`` arguments (``np.random.default_rng``, never the global RNG).
A `Dataset` is batch-first: ``x`` float32 (n, d); classification labels int32 (n,) in 0..k-1;
regression targets float32 (n, k), always 2-D. ``standardize=True`` maps features, and
regression targets, to (v - mean) / std with training-split statistics (a constant column gets
std 1); `Dataset.scale_x` and `Dataset.unscale_y` apply them to new inputs and predictions.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import numbers
import os
import zipfile
from typing import Any, NamedTuple

import numpy as np

__all__ = ["NAMES", "Dataset", "Table", "infer_task", "load", "load_file", "one_hot", "read_features",
           "read_labelled", "sine", "spirals", "sniff_delimiter", "xor"]

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
    used for standardization, or None when ``standardize=False``. ``task_reason`` says why
    the task is what it is (e.g. "integer labels with 3 distinct values").
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
    task_reason: str = ""

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


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative int; got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed}")


def _check_test_size(test_size) -> None:
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) or not 0 < test_size < 1:
        raise ValueError(f"test_size must be a number in (0, 1); got {test_size!r}")


def _check_generator(n_samples: int, noise: float, least: int, seed=0) -> None:
    _check_seed(seed)
    if int(n_samples) != n_samples or n_samples < least:
        raise ValueError(f"n_samples must be an integer >= {least}; got {n_samples!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0; got {noise!r}")


def xor(n_samples: int = 400, noise: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 2-D XOR: Gaussian blobs (std ``noise``) at (+-1, +-1); class 1 where signs differ.

    Returns:
        ``(x, y)``: float32 (n_samples, 2) and int32 (n_samples,), classes within one in size.
    """
    _check_generator(n_samples, noise, 4, seed)
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
    _check_generator(n_samples, noise, 2, seed)
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
    _check_generator(n_samples, noise, 2, seed)
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


def _build(name, x, y, task, feature_names, classes, test_size, seed, standardize,
           dtype=np.float32, reason: str = "") -> Dataset:
    _check_test_size(test_size)
    _check_seed(seed)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64; got {dtype}")
    x = np.asarray(x, np.float64)
    classify = task == "classification"
    y = np.asarray(y, np.int32 if classify else np.float64)
    tr, te = _split(y if classify else None, len(x), test_size, seed)
    x_tr, x_te, y_tr, y_te = x[tr], x[te], y[tr], y[te]
    extra: dict[str, Any] = {}
    if standardize:
        mu, sd = _stats(x_tr)
        x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
        extra.update(x_mean=mu.astype(dtype), x_std=sd.astype(dtype))
        if not classify:
            t_mu, t_sd = _stats(y_tr)
            y_tr, y_te = (y_tr - t_mu) / t_sd, (y_te - t_mu) / t_sd
            extra.update(target_mean=t_mu.astype(dtype), target_std=t_sd.astype(dtype))
    y_dtype = np.int32 if classify else dtype
    return Dataset(name, x_tr.astype(dtype), y_tr.astype(y_dtype), x_te.astype(dtype),
                   y_te.astype(y_dtype), task, len(classes) if classify else None,
                   tuple(map(str, feature_names)), tuple(classes) if classify else None, **extra,
                   task_reason=reason)


_DIGITS_SHAPE = (1797, 65)  # 8x8 images of 16 grey levels, then the digit


def _digits_file() -> tuple[np.ndarray, np.ndarray] | None:
    """scikit-learn's digits ``(data, target)`` from the file it ships, without importing it.

    ``sklearn.datasets.load_digits`` reads the same file the same way (``np.loadtxt``); the
    table is checked (shape, 0..16 grey levels, all ten digits) and ``None`` is returned
    where it is not there or not as expected, so that scikit-learn's own loader decides.
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", "digits.csv.gz")
    try:
        table = np.loadtxt(path, delimiter=",")
    except (OSError, ValueError, EOFError):
        return None
    if table.shape != _DIGITS_SHAPE or not np.array_equal(table, np.round(table)):
        return None
    data, target = table[:, :-1], table[:, -1]
    if data.min() < 0 or data.max() > 16 or not np.array_equal(np.unique(target), np.arange(10)):
        return None
    return data, target.astype(np.int64)


def _sklearn_datasets(name: str):
    try:
        from sklearn import datasets
    except ImportError as err:
        raise ImportError(f'load({name!r}) needs scikit-learn, which ships the bundled data sets: '
                          f'pip install "fnann[data]" (or pip install scikit-learn)') from err
    return datasets


def load(name: str, *, test_size: float = 0.2, seed: int = 0, standardize: bool = True,
         dtype=np.float32, **kwargs: Any) -> Dataset:
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
        dtype: float32 (the default) or float64, the dtype of the features (and targets).
        **kwargs: options of the synthetic generators.

    Returns:
        A `Dataset`.

    Raises:
        ValueError: for an unknown name, a test_size outside (0, 1) or a negative seed.
        TypeError: for keyword options the data set does not take, or a seed that is not an int.
        ImportError: for a bundled set when scikit-learn is not installed.

    Example:
        >>> from fnann.app.datasets import load
        >>> ds = load("xor", n_samples=200, test_size=0.25, seed=1)
        >>> ds.x_train.shape, ds.y_test.shape, ds.y_train.dtype.name, ds.n_outputs
        ((150, 2), (50,), 'int32', 2)
    """
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; known names: {', '.join(NAMES)}")
    _check_seed(seed)
    _check_test_size(test_size)
    if name in _SYNTHETIC:
        x, y = {"xor": xor, "spirals": spirals, "sine": sine}[name](seed=seed, **kwargs)
        task = "regression" if name == "sine" else "classification"
        names = ("x",) if name == "sine" else ("x0", "x1")
        return _build(name, x, y, task, names, (0, 1), test_size, seed, standardize, dtype,
                      f"{name} is a {task} set")
    if kwargs:
        raise TypeError(f"load({name!r}) takes no options; got {', '.join(kwargs)}")
    digits = _digits_file() if name == "digits" else None
    if digits is not None:
        names = [f"pixel_{row}_{col}" for row in range(8) for col in range(8)]  # load_digits' names
        return _build(name, *digits, "classification", names, list(range(10)), test_size, seed,
                      standardize, dtype, "digits is a classification set")
    sk = _sklearn_datasets(name)
    if name == "diabetes":
        bunch = sk.load_diabetes(scaled=False)
        return _build(name, bunch.data, bunch.target[:, None], "regression",
                      bunch.feature_names, None, test_size, seed, standardize, dtype,
                      "diabetes is a regression set")
    bunch = getattr(sk, f"load_{name}")()
    return _build(name, bunch.data, bunch.target, "classification", bunch.feature_names,
                  np.asarray(bunch.target_names).tolist(), test_size, seed, standardize, dtype,
                  f"{name} is a classification set")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


_DELIMITERS = ("\t", ";", "|", ",")


def sniff_delimiter(text: str) -> str:
    r"""The column separator of delimited text: the first of tab, ``;``, ``|`` and ``,`` that
    appears the same number of times (at least once) on each of the first 20 data lines.

    ``;`` is tried before ``,`` because files that separate columns by ``;`` often write
    decimal commas. A file with a single column (no separator at all) gives ``,``.

    Example:
        >>> sniff_delimiter("a;b;y\n1,5;2;0\n3;4,25;1\n")
        ';'
    """
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    lines = lines[:20]
    for d in _DELIMITERS:
        counts = {line.count(d) for line in lines}
        if len(counts) == 1 and counts.pop() > 0:
            return d
    return ","


def _read_text(path: str) -> str:
    """The file as text: UTF-8 (a byte-order mark is dropped), or an error naming the line."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(f"{path}: line {line} is not UTF-8 text (byte 0x{raw[e.start]:02x}); "
                         "save the file as UTF-8") from None


def _check_delimiter(delimiter) -> None:
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1
                                  or delimiter in "\"\r\n"):
        raise ValueError(f"delimiter must be one character (or None to detect it); got {delimiter!r}")


def _read_table(path: str, label: int | str | None, delimiter: str | None):
    """Parse a delimited text file into (x, raw label cells, feature names, label line info)."""
    _check_delimiter(delimiter)
    text = _read_text(path)
    delimiter = delimiter or sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
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
            raise ValueError(f"{path}: line {line} has {len(cells)} columns, expected {n_cols}"
                             f" (columns separated by {delimiter!r})")
        for k, j in enumerate(feats):
            try:
                x[i, k] = float(cells[j])
            except ValueError:
                hint = " (a decimal comma? write numbers with '.')" if "," in cells[j] else ""
                raise ValueError(f"{path}: line {line}, column {j} ({columns[j]}): "
                                 f"{cells[j]!r} is not a number{hint}") from None
            if not np.isfinite(x[i, k]):
                raise ValueError(f"{path}: line {line}, column {j} ({columns[j]}): "
                                 f"{cells[j]} is not a finite number")
    if col is None:
        return x, None, tuple(columns), []
    where = [f"line {line}, column {col} ({columns[col]})" for line, _ in rows]
    return x, np.array([cells[col] for _, cells in rows]), tuple(columns[j] for j in feats), where


def _npz_arrays(path: str, keys: tuple[str, ...]) -> list[np.ndarray]:
    """The arrays ``keys`` of an .npz archive, or one ValueError naming the file."""
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable .npz archive ({str(e).splitlines()[0]})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: holds a single array (.npy), not an .npz archive with arrays "
                         f"{' and '.join(map(repr, keys))}")
    with data:
        need = "arrays 'x' (n, d) and 'y' (n,) or (n, k)" if "y" in keys else "an array 'x' (n, d)"
        for key in keys:
            if key not in data:
                raise ValueError(f"{path}: missing key {key!r}; an .npz needs {need}; found keys: "
                                 f"{', '.join(data.files) or 'none'}")
        try:
            return [np.asarray(data[key]) for key in keys]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: unreadable array ({str(e).splitlines()[0]})") from None


def _check_npz_x(path: str, x: np.ndarray) -> np.ndarray:
    x = x[:, None] if x.ndim == 1 else x
    if x.dtype.kind not in "fiu":
        raise ValueError(f"{path}: x must hold real numbers; got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{path}: x must have shape (n, d); got {x.shape}")
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{path}: x is not finite (NaN or inf) at row {bad[0]}, column {bad[1]}")
    return x


def read_features(path: str | os.PathLike, *, delimiter: str | None = None) -> np.ndarray:
    """Reads a feature matrix with no label column: a CSV (optional header) or an ``.npz``
    with an array ``x``; returns float32 of shape (n, d).

    ``delimiter=None`` detects the column separator (`sniff_delimiter`).

    Raises:
      FileNotFoundError: if the file does not exist.
      ValueError: for a ragged row, a non-numeric cell, NaN or inf (naming the line), text
        that is not UTF-8, or an ``.npz`` that is not one or holds no real ``x``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    if path.lower().endswith(".npz"):
        (x,) = _npz_arrays(path, ("x",))
        return _check_npz_x(path, x).astype(np.float32)
    return _read_table(path, None, delimiter)[0].astype(np.float32)


def _read_npz(path: str):
    x, y = _npz_arrays(path, ("x", "y"))
    x, y = _check_npz_x(path, x), (y.astype(np.int64) if y.dtype == bool else y)
    if y.dtype.kind not in "fiuUS":
        raise ValueError(f"{path}: y must hold numbers or class names; got dtype {y.dtype}")
    if y.ndim not in (1, 2) or len(y) != len(x):
        raise ValueError(f"{path}: y must have shape ({len(x)},) or ({len(x)}, k) to match x "
                         f"{x.shape}; got {y.shape}")
    return x, y, tuple(f"x{j}" for j in range(x.shape[1])), [f"row {i} of y" for i in range(len(y))]


def infer_task(y: np.ndarray) -> tuple[str, str]:
    """The task ``task="auto"`` picks for labels ``y``, and why: ``(task, reason)``.

    Text labels, or one column of integers with at most 50 distinct values, mean
    classification; anything else regression.

    Example:
        >>> infer_task(np.array([0, 2, 1, 2]))
        ('classification', 'integer labels with 3 distinct values (at most 50)')
    """
    y = np.asarray(y)
    if y.dtype.kind not in "fiub":
        return "classification", "the labels are text"
    if y.ndim == 2 and y.shape[1] != 1:
        return "regression", f"the targets have {y.shape[1]} columns"
    if not np.all(y == np.round(y)):
        return "regression", "the targets are not all integers"
    n = len(np.unique(y))
    if n > _MAX_AUTO_CLASSES:
        return "regression", f"integer targets with {n} distinct values (more than {_MAX_AUTO_CLASSES})"
    return "classification", f"integer labels with {n} distinct values (at most {_MAX_AUTO_CLASSES})"


def _labels(path: str, y: np.ndarray, where: list[str], task: str):
    """Check the labels and settle the task: returns (y, task, classes, reason)."""
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
    reason = "requested"
    if task == "auto":
        task, reason = infer_task(y)
    if task == "regression":
        return y.reshape(len(y), -1), task, None, reason
    if y.ndim == 2 and y.shape[1] != 1:
        raise ValueError(f"{path}: classification needs one label column; y has shape {y.shape}")
    classes, y = np.unique(y.reshape(-1), return_inverse=True)
    return y, task, [int(c) if isinstance(c, float) and c.is_integer() else c
                     for c in classes.tolist()], reason


class Table(NamedTuple):
    """Every row of a labelled file, neither split nor standardized (`read_labelled`).

    ``x`` float64 (n, d); ``y`` int labels 0..k-1 (classification, label i stands for
    ``classes[i]``) or float64 targets (n, k) (regression).
    """

    x: np.ndarray
    y: np.ndarray
    task: str
    classes: tuple | None
    feature_names: tuple[str, ...]
    task_reason: str


def read_labelled(path: str | os.PathLike, *, label: int | str = -1, task: str = "auto",
                  delimiter: str | None = None) -> Table:
    """Reads every row of a labelled CSV (or other delimited text) or ``.npz`` file.

    The file format, ``label``, ``task`` and ``delimiter`` are as in `load_file`; unlike it,
    nothing is split or standardized and a single class is allowed (to evaluate a model on
    the rows of one class).

    Raises:
        FileNotFoundError, ValueError: as `load_file`.
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
    y, task, classes, reason = _labels(path, y, where, task)
    return Table(x, y, task, None if classes is None else tuple(classes), names, reason)


def load_file(path: str | os.PathLike, *, label: int | str = -1, task: str = "auto",
              test_size: float = 0.2, seed: int = 0, standardize: bool = True,
              delimiter: str | None = None, dtype=np.float32) -> Dataset:
    """Load your own data from a CSV (or other delimited text) file or an ``.npz`` archive.

    Text: UTF-8, one row per example; blank lines and lines starting with ``#`` are skipped.
    The first row is a header (feature names; ``label`` may name a column) when a cell of it is not
    a number where the next row has one. Features must be numbers; labels may be numbers or
    class names. ``.npz``: arrays under the keys ``x`` (n, d) and ``y`` (n,) or (n, k).

    ``task="auto"``: integer labels with at most 50 distinct values, or text labels, mean
    classification, anything else regression (`infer_task`; the reason is kept in
    `Dataset.task_reason`). Classes are remapped to 0..k-1 in sorted order, the original
    values kept in `Dataset.classes`.

    Args:
        path: the file; ``.npz`` by extension, anything else is read as delimited text.
        label: the label column of a text file, by index (negative from the end) or name.
        task: "auto", "classification" or "regression".
        test_size, seed, standardize, dtype: as in `load`.
        delimiter: the column separator of a text file; None (the default) detects it
            (`sniff_delimiter`).

    Returns:
        A `Dataset` named after the file.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: one line naming the file and the problem: an empty file, text that is
            not UTF-8, a ragged row, a non-numeric or non-finite cell (lines count from 1,
            columns from 0 as ``label`` does), a missing label column (listing the available
            ones), an unreadable ``.npz`` or a missing key, complex numbers, a single class,
            or a bad ``task``, ``test_size`` or ``seed``.
    """
    _check_seed(seed)
    _check_test_size(test_size)
    table = read_labelled(path, label=label, task=task, delimiter=delimiter)
    if table.task == "classification" and len(table.classes) < 2:
        raise ValueError(f"{os.fspath(path)}: the labels hold a single class ({table.classes[0]}); "
                         f"classification needs at least 2")
    name = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return _build(name, table.x, table.y, table.task, table.feature_names, table.classes,
                  test_size, seed, standardize, dtype, table.task_reason)
