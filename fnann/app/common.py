"""What the commands share: the usage error, the compilation cache, float64 for one command,
and reading data and checkpoints exactly as ``fnann train`` read them.

Nothing here imports JAX (or numpy) before a function needs it: ``fnann --help`` must not.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


class UsageError(Exception):
    """A bad option or input, reported as one line with exit status 2."""


# --- the compilation cache and float64 ----------------------------------------------------


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("FNANN_CACHE_DIR") or os.path.join(base, "fnann", "jax"))


def enable_compilation_cache(folder: str | os.PathLike | None = None) -> None:
    """Turns on JAX's persistent compilation cache in ``folder`` (default `default_cache_dir`),
    so a second run skips compiling."""
    import jax

    folder = Path(folder) if folder else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"fnann: compilation cache off ({folder}: {e.strerror})", file=sys.stderr)
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def x64(on: bool):
    """float64 for the duration of a command (``jax.enable_x64``), never globally."""
    if not on:
        return contextlib.nullcontext()
    import jax

    return jax.enable_x64(True)


# --- data -----------------------------------------------------------------------------


def label_column(label: str | None):
    if label is None:
        return -1
    return int(label) if label.lstrip("-").isdigit() else label


def is_file(name: str) -> bool:
    from fnann.app import datasets

    return name not in datasets.NAMES


MAX_DATA_BYTES = 4 << 30  # the largest data file hashed (read whole) for a run's record


def file_digest(path: str) -> str:
    """The SHA-256 of a regular file of at most ``MAX_DATA_BYTES``: a device, a pipe or a
    larger file is refused before it is read (``/dev/zero`` would be read without end)."""
    import hashlib
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO does not block the open
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{path} is not a regular file, so it cannot be a run's data")
        if info.st_size > MAX_DATA_BYTES:
            raise UsageError(f"{path} holds {info.st_size} bytes, more than the {MAX_DATA_BYTES >> 30} GiB "
                             "a run's data file may hold")
        digest, left = hashlib.sha256(), MAX_DATA_BYTES
        while left > 0 and (chunk := f.read(min(1 << 20, left))):
            digest.update(chunk)
            left -= len(chunk)
        if f.read(1):
            raise UsageError(f"{path} grew past {MAX_DATA_BYTES >> 30} GiB while it was read")
        return digest.hexdigest()


def load_data(name: str, *, label: str | None = None, test_size: float = 0.2, seed: int = 0,
              standardize: bool = True, task: str = "auto", delimiter: str | None = None,
              dtype: str = "float32"):
    """A bundled/synthetic dataset by name, or the user's CSV/.npz file."""
    from fnann.app import datasets

    if name in datasets.NAMES:
        ds = datasets.load(name, test_size=test_size, seed=seed, standardize=standardize, dtype=dtype)
        if task not in ("auto", ds.task):
            raise UsageError(f"{name} is a {ds.task} set; --task {task} applies to your own files")
        if label is not None:
            raise UsageError(f"--label applies to your own files; {name} is a bundled set")
        return ds
    if os.path.exists(name) or name.endswith((".csv", ".npz", ".txt", ".tsv")):
        return datasets.load_file(name, label=label_column(label), test_size=test_size, seed=seed,
                                  standardize=standardize, task=task, delimiter=delimiter, dtype=dtype)
    raise UsageError(f"unknown dataset {name!r}: use one of {', '.join(datasets.NAMES)} "
                     "or the path of a .csv/.npz file")


def validation_split(data, size: float, seed: int):
    """Carves a validation set out of the training split (stratified for classification)."""
    from fnann.app import datasets

    labels = data.y_train if data.task == "classification" else None
    train, val = datasets._split(labels, len(data.x_train), size, seed + 1)
    return (data.x_train[train], data.y_train[train]), (data.x_train[val], data.y_train[val])


def class_targets(labels, net, loss):
    """The targets a classifier trains on, built from integer labels 0..k-1.

    A loss that takes labels (cross-entropy) takes them as they are; a one-output network
    (sigmoid, two classes) takes 0/1 as a column; any other (MSE, binary cross-entropy over k
    sigmoids) one-hot rows.
    """
    import numpy as np

    from fnann.app.datasets import one_hot

    labels = np.asarray(labels)
    if loss.labels:
        return labels
    if net.n_out == 1:
        return labels.reshape(-1, 1).astype(np.float32)
    return one_hot(labels, net.n_out)


def standardize(values, meta: dict, prefix: str):
    """(v - mean) / std with the training statistics a checkpoint's meta holds, if any."""
    import numpy as np

    if meta.get(f"{prefix}_mean") is None:
        return values
    mean, std = (np.asarray(meta[f"{prefix}_{k}"], np.float64) for k in ("mean", "std"))
    return (np.asarray(values, np.float64) - mean) / std


def load_checkpoint(path: str):
    """``(checkpoint, float64?)``. Its record (``meta``, in the header) is read and checked first
    (`fnann.app.records`), then the checkpoint, under ``enable_x64`` for a float64 run, then the
    record against the network; a record ``fnann train`` could not have written is a UsageError
    naming the file and the field."""
    import fnann
    from fnann.app.records import check_against_net, check_meta
    from fnann.checkpoint import read_header

    meta = read_header(path).get("meta")
    check_meta(meta, path)
    wide = (meta.get("run") or {}).get("dtype") == "float64"
    with x64(wide):
        ck = fnann.load(path)
    check_against_net(ck.meta, ck.net, path)
    return ck, wide


def with_stats(net, stats) -> dict:
    """The keyword arguments that pass a batch-norm net's running statistics on (``predict``,
    ``evaluate``, ``save``: ``{"stats": stats}``); ``{}`` for any other net, whose calls stay
    exactly what they were."""
    return {"stats": stats} if net.has_batch_norm else {}


def class_names(meta: dict, net) -> list[str]:
    """The class names of a classifier's checkpoint: its record's, else 0..k-1 (k: the outputs,
    two for one sigmoid unit)."""
    return meta.get("classes") or [str(i) for i in range(max(2, net.n_out))]
