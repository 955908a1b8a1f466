"""Saving and loading everything needed to resume training, atomically.

A checkpoint is one ``.npz`` file: the arrays of the params and of the optimizer state,
the PRNG key's raw data, and a JSON header with the network, the tree structure of the
optimizer state, the epoch, the step and the history. ``save`` writes to a temporary file
in the same folder, flushes it to disk and renames it over the target (``os.replace`` is
atomic), so a crash or an error mid-write leaves the previous checkpoint untouched.

Only plain containers (tuple, list, dict, None) and NamedTuples defined in fnann (the
optimizer states, ``Dense``) are stored as structure; nothing is unpickled on load.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import zipfile
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnann.activations import ACTIVATIONS
from fnann.mlp import MLP, Dense, Params

FORMAT = "fnann-checkpoint"
VERSION = 1


class Checkpoint(NamedTuple):
    """What ``load`` returns.

    Attributes:
      net: the ``MLP`` the params belong to.
      params: the parameters, a tuple of ``Dense``.
      opt_state: the optimizer state (``None`` if none was saved).
      epoch: epochs completed.
      step: optimizer steps taken (informational).
      key: the training PRNG key (``None`` if none was saved).
      history: the training history saved with it.
      meta: any extra JSON-serialisable metadata given to ``save``.
    """

    net: MLP
    params: Params
    opt_state: Any
    epoch: int
    step: int
    key: Any
    history: dict
    meta: dict


def _encode(tree, arrays: dict) -> Any:
    """A JSON description of ``tree``; its arrays go into ``arrays`` under fresh names."""
    if tree is None:
        return None
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        cls = type(tree)
        if not cls.__module__.startswith("fnann"):
            raise TypeError(f"opt_state holds a {cls.__name__} from {cls.__module__}; only "
                            "fnann's NamedTuples, tuples, lists and dicts can be saved.")
        return {"namedtuple": f"{cls.__module__}:{cls.__qualname__}",
                "fields": [_encode(v, arrays) for v in tree]}
    if isinstance(tree, (tuple, list)):
        return {"list" if isinstance(tree, list) else "tuple": [_encode(v, arrays) for v in tree]}
    if isinstance(tree, dict):
        return {"dict": {str(k): _encode(v, arrays) for k, v in tree.items()}}
    name = f"a{len(arrays)}"
    arrays[name] = np.asarray(tree)
    return {"array": name}


def _decode(spec, arrays) -> Any:
    if spec is None:
        return None
    if "array" in spec:
        return jnp.asarray(arrays[spec["array"]])
    if "tuple" in spec:
        return tuple(_decode(v, arrays) for v in spec["tuple"])
    if "list" in spec:
        return [_decode(v, arrays) for v in spec["list"]]
    if "dict" in spec:
        return {k: _decode(v, arrays) for k, v in spec["dict"].items()}
    module, _, qualname = spec["namedtuple"].partition(":")
    if not module.startswith("fnann"):
        raise ValueError(f"refusing to load a structure from module {module!r}")
    cls = getattr(importlib.import_module(module), qualname)
    return cls(*(_decode(v, arrays) for v in spec["fields"]))


def _net_spec(net: MLP) -> dict:
    for role in ("hidden", "output"):
        act = getattr(net, role)
        if ACTIVATIONS.get(act.name) is not act:
            raise TypeError(f"cannot save a network with the custom {role} activation "
                            f"{act.name!r}: only the built-in activations can be saved by name.")
    return {"sizes": list(net.sizes), "hidden": net.hidden.name, "output": net.output.name}


def _key_spec(key, arrays: dict):
    if key is None:
        return None
    if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        arrays["key"] = np.asarray(jax.random.key_data(key))
        return {"typed": True, "impl": str(jax.random.key_impl(key))}
    arrays["key"] = np.asarray(key)
    return {"typed": False}


def save(path: str | os.PathLike, net: MLP, params: Params, opt_state: Any = None, *,
         epoch: int = 0, step: int = 0, key=None, history: dict | None = None,
         meta: dict | None = None, overwrite: bool = True) -> str:
    """Writes a checkpoint atomically (temporary file, fsync, rename).

    Args:
      path: target file (``.npz`` is conventional).
      net: the network (built-in activations only).
      params: its parameters.
      opt_state: optimizer state to resume with.
      epoch, step: progress counters.
      key: the PRNG key training uses, so that resuming reshuffles identically.
      history: ``fit``'s history (lists of numbers).
      meta: any other JSON-serialisable information.
      overwrite: if ``False``, refuse to replace an existing file.

    Returns:
      The path written.

    Raises:
      FileExistsError: when ``path`` exists and ``overwrite`` is ``False``.
    """
    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    arrays: dict[str, np.ndarray] = {}
    header = {
        "format": FORMAT, "version": VERSION, "net": _net_spec(net),
        "params": _encode(tuple(params), arrays), "opt_state": _encode(opt_state, arrays),
        "key": _key_spec(key, arrays), "epoch": int(epoch), "step": int(step),
        "history": history or {}, "meta": meta or {},
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def _file_mode(path: str) -> int:
    """The mode a plain ``open(path, "w")`` would give: the old file's, else 0666 & ~umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, content) -> str:
    """Writes a file atomically: a temporary file in the same folder, fsync, then rename.

    Args:
      path: the target; its previous content survives any failure before the rename.
      content: ``bytes``, or a function that writes to the open binary file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".fnann-", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def load(path: str | os.PathLike, net: MLP | None = None) -> Checkpoint:
    """Reads a checkpoint written by :func:`save`.

    Args:
      path: the file.
      net: if given, the checkpoint must belong to this network.

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ValueError: if the file is truncated, corrupt, not an fnann checkpoint, or belongs to
        another network than ``net``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a readable fnann checkpoint (truncated or corrupt: {e}).") from None
    if header.get("format") != FORMAT:
        raise ValueError(f"{path} is not an fnann checkpoint.")
    spec = header["net"]
    saved_net = MLP(spec["sizes"], spec["hidden"], spec["output"])
    if net is not None and net != saved_net:
        raise ValueError(f"checkpoint {path} belongs to {saved_net}, not to {net}.")
    params = tuple(Dense(*layer) for layer in _decode(header["params"], arrays))
    key = None
    if header["key"] is not None:
        key = (jax.random.wrap_key_data(jnp.asarray(arrays["key"]), impl=header["key"]["impl"])
               if header["key"]["typed"] else jnp.asarray(arrays["key"]))
    return Checkpoint(saved_net, params, _decode(header["opt_state"], arrays), header["epoch"],
                      header["step"], key, header["history"], header["meta"])
