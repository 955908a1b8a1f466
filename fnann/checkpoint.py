"""Saving and loading everything needed to resume training: atomically, and safely.

A checkpoint is one ``.npz`` file: the arrays of the params and of the optimizer state, the
PRNG key's raw data, and a JSON header with the network, the tree structure of the
optimizer state, the epoch, the step, the history and free-form metadata. ``save`` writes
through ``atomic_write`` (temporary file, fsync, rename), so a crash, an error or a kill -9
mid-write leaves the previous checkpoint untouched; a killed writer's temporary is removed
by the next save into the same folder (see ``fnann.atomic``).

The format is closed (``fnann.tree_codec``): nothing a file says is imported, looked up
or called, no array is unpickled, and every field of the header is validated on load. A
malformed or hostile file raises one ``ValueError`` naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
import zlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnann import checks
from fnann.activations import ACTIVATIONS, Activation
from fnann.atomic import atomic_write
from fnann.mlp import MLP, Dense, Normed, Params, Stats
from fnann.norms import NORMS, RunningStats
from fnann.optim import as_optimizer
from fnann.tree_codec import Where, decode, encode, rebuild

FORMAT = "fnann-checkpoint"
VERSION = 2  # 2: dtypes by name (bfloat16), registry names of NamedTuples; 1 is still read
MAX_HEADER_BYTES = 64 << 20
MAX_COUNT = 2**62  # epoch, step
KEY_IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")


class Checkpoint(NamedTuple):
    """What ``load`` returns.

    Attributes:
      net: the ``MLP`` the params belong to.
      params: the parameters, a tuple of ``Dense`` (``Normed`` for a normalized layer).
      opt_state: the optimizer state (``None`` if none was saved).
      epoch: epochs completed.
      step: optimizer steps taken (informational).
      key: the training PRNG key (``None`` if none was saved).
      history: the training history saved with it.
      meta: any extra JSON-serialisable metadata given to ``save``.
      stats: a batch-norm net's running statistics, one ``RunningStats(mean, var)`` per
        batch-norm layer (``net.batch_norm_layers``); ``()`` for a net without batch norm.
    """

    net: MLP
    params: Params
    opt_state: Any
    epoch: int
    step: int
    key: Any
    history: dict
    meta: dict
    stats: Stats = ()


# --- save -----------------------------------------------------------------------------


def _net_spec(net: MLP) -> dict:
    for role, acts in (("hidden", net.hidden_activations), ("output", (net.output,))):
        for act in acts:
            if ACTIVATIONS.get(act.name) is not act:
                raise TypeError(f"cannot save a network with the custom {role} activation "
                                f"{act.name!r}: only the built-in activations can be saved by name.")
    hidden = net.hidden.name if isinstance(net.hidden, Activation) else [a.name for a in net.hidden]
    spec = {"sizes": list(net.sizes), "hidden": hidden, "output": net.output.name}
    if net.residual:
        spec["residual"] = list(net.residual)
    if net.has_dropout:  # the plain MLP's header as before
        spec["dropout"] = net.dropout if isinstance(net.dropout, float) else list(net.dropout)
    if net.has_norm:  # likewise: one entry per hidden layer, null where none
        spec["norm"] = [_norm_spec(n) for n in net.norms]
    return spec


def _norm_spec(norm) -> dict | None:
    """The norm's name and settings, ``{"name": "layer", "eps": ε}`` or ``{"name": "batch",
    "momentum": m, "eps": ε}`` (its dataclass fields), or None."""
    return None if norm is None else {"name": norm.name, **dataclasses.asdict(norm)}


def _key_spec(key, arrays: dict):
    if key is None:
        return None
    checks.check_key(key)
    if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        arrays["key"] = np.asarray(jax.random.key_data(key))
        return {"typed": True, "impl": str(jax.random.key_impl(key))}
    arrays["key"] = np.asarray(key)
    return {"typed": False}


def _json_ready(value: Any, name: str, depth: int = 0) -> Any:
    """``value`` with numpy numbers and arrays as Python ones; TypeError naming what is not JSON."""
    if depth > 64:
        raise TypeError(f"{name} is nested deeper than 64 levels.")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) or (isinstance(value, (np.ndarray, jax.Array)) and value.dtype != object):
        if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
            raise TypeError(f"{name} is a PRNG key; save it with save(key=...).")
        return np.asarray(value).tolist()
    if isinstance(value, (list, tuple)):
        return [_json_ready(v, f"{name}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise TypeError(f"{name} has the key {k!r} of type {type(k).__name__}; JSON keys are str.")
        return {k: _json_ready(v, f"{name}[{k!r}]", depth + 1) for k, v in value.items()}
    raise TypeError(f"{name} holds a {type(value).__name__} ({_short(value)}); a checkpoint stores "
                    "JSON values: None, bool, numbers, str, lists and dicts with str keys.")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def _history(history: Any) -> dict:
    """The history as ``{str: [number, ...]}`` (fit's form), numpy numbers converted."""
    if history is None:
        return {}
    if not isinstance(history, dict):
        raise TypeError(f"history must be a dict of per-epoch lists (fit's history); got {type(history).__name__}.")
    out = _json_ready(history, "history")
    for k, values in out.items():
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            raise TypeError(f"history[{k!r}] must be a list of numbers; got {_short(history[k])}.")
    return out


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def save(path: str | os.PathLike, net: MLP, params: Params, opt_state: Any = None, *,
         epoch: int = 0, step: int = 0, key=None, history: dict | None = None,
         meta: dict | None = None, overwrite: bool = True, stats: Stats | None = None) -> str:
    """Writes a checkpoint atomically (temporary file, fsync, rename).

    Everything is checked before a byte is written: ``params`` against ``net`` (and finite),
    the counters,
    the key, and that ``opt_state``, ``history`` and ``meta`` can be stored.

    Args:
      path: target file (``.npz`` is conventional).
      net: the network (built-in activations only).
      params: its parameters (float16, bfloat16, float32, float64: restored bit-exactly).
      opt_state: optimizer state to resume with: any tree of NamedTuples, tuples, lists,
        dicts with str keys, None and arrays (fnann's states and optax's alike).
      epoch, step: progress counters (ints >= 0).
      key: the PRNG key training uses, so that resuming reshuffles identically.
      history: ``fit``'s history (lists of numbers; numpy numbers are converted).
      meta: any other JSON-serialisable information (a dict with str keys).
      overwrite: if ``False``, refuse to replace an existing file.
      stats: the running statistics of a net with batch norm (``init_stats``, or those training
        returned): required for such a net, refused for a net without (``None`` or ``()``).

    Returns:
      The path written.

    Raises:
      FileExistsError: when ``path`` exists and ``overwrite`` is ``False``.
      TypeError, ValueError: an argument that cannot be saved, named.

    Example:
      >>> import tempfile, fnann
      >>> net = fnann.MLP([2, 3, 2])
      >>> params = fnann.init(jax.random.key(0), net)
      >>> path = save(tempfile.mkdtemp() + "/c.npz", net, params, epoch=1)
      >>> load(path, net=net).epoch
      1
    """
    path = os.fspath(path)
    checks.check_net(net)
    checks.check_params(params, net.sizes, norms=net.norms)
    checks.check_params_finite(params)
    if net.has_batch_norm and stats is None:
        raise ValueError(f"stats: {net} has batch norm, so its checkpoint needs the running statistics: "
                         "save(..., stats=stats) (fnann.init_stats(net), or the stats training returned).")
    checks.check_stats(net, stats)
    epoch, step = checks.integer(epoch, "epoch"), checks.integer(step, "step")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict; got {type(meta).__name__}.")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    arrays: dict[str, np.ndarray] = {}
    header = {
        "format": FORMAT, "version": VERSION, "net": _net_spec(net),
        "params": encode(tuple(_layer(layer, norm) for layer, norm in zip(params, (*net.norms, None))),
                         arrays, "params"),
        "opt_state": encode(opt_state, arrays, "opt_state"),
        "key": _key_spec(key, arrays), "epoch": epoch, "step": step,
        "history": _history(history), "meta": _json_ready(meta or {}, "meta"),
    }
    if net.has_batch_norm:  # only then: the plain MLP's header as before
        header["stats"] = encode(tuple(RunningStats(s.mean, s.var) for s in stats), arrays, "stats")
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def _layer(layer, norm) -> Dense | Normed:
    """The layer as its registered type: ``Normed(W, gamma, beta)`` where ``norm``, else ``Dense(W, b)``."""
    return Dense(layer.W, layer.b) if norm is None else Normed(layer.W, layer.gamma, layer.beta)


# --- load -----------------------------------------------------------------------------


def _read_arrays(path: str, only: str | None = None) -> dict[str, np.ndarray]:
    """Every array of the ``.npz``, after checking each member's declared shape against its
    stored size (a hostile header cannot make numpy allocate more than the file holds).

    ``save`` writes stored (uncompressed) members only, so a member's size in the file is its
    size on reading; a compressed member, whose declared size the file does not bound (a few
    MiB of deflated zeros expand to GiB), is refused before a byte of it is inflated."""
    arrays = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if only is not None and info.filename != only + ".npy":
                continue
            if not info.filename.endswith(".npy"):
                raise ValueError(f"member {info.filename!r} is not an array")
            if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
                raise ValueError(f"member {info.filename!r} is compressed (method {info.compress_type}, "
                                 f"{info.compress_size} bytes declaring {info.file_size}); fnann "
                                 "checkpoints hold stored members only")
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise ValueError(f"member {info.filename!r} has .npy version {version}")
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
                if dtype.hasobject or int(np.prod(shape, dtype=object)) * dtype.itemsize > info.file_size:
                    raise ValueError(f"member {info.filename!r} declares {shape} {dtype}, more than it holds")
            name = info.filename[:-4]
            if name == "header" and info.file_size > MAX_HEADER_BYTES:
                raise ValueError(f"its header is larger than {MAX_HEADER_BYTES >> 20} MiB")
            with zf.open(info) as f:
                arrays[name] = np.lib.format.read_array(f, allow_pickle=False)
    return arrays


def _require(header: dict, field: str, where: Where, kinds: tuple, what: str) -> Any:
    if field not in header:
        raise where.at(field).error("missing from the header.")
    value = header[field]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise where.at(field).error(f"must be {what}; got {_short(value)}.")
    return value


def _count(header: dict, field: str, where: Where) -> int:
    value = _require(header, field, where, (int,), "an int >= 0")
    if not 0 <= value <= MAX_COUNT:
        raise where.at(field).error(f"must be an int in [0, 2**62]; got {value}.")
    return value


def _load_net(header: dict, where: Where) -> MLP:
    spec = _require(header, "net", where, (dict,), "a dict with sizes, hidden and output")
    for field, kinds, what in (("sizes", (list,), "a list of ints"),
                               ("hidden", (str, list), "an activation name or a list of them"),
                               ("output", (str,), "an activation name")):
        _require(spec, field, where.at("net."), kinds, what)
    if "residual" in spec:
        _require(spec, "residual", where.at("net."), (list,), "a list of layer numbers")
    if "dropout" in spec:
        _require(spec, "dropout", where.at("net."), (float, int, list), "a dropout rate or a list of them")
    norm = _load_norms(spec, where.at("net.")) if "norm" in spec else None
    try:
        return MLP(spec["sizes"], spec["hidden"], spec["output"], residual=spec.get("residual", False),
                   dropout=spec.get("dropout", 0.0), norm=norm)
    except (TypeError, ValueError) as e:
        raise where.at("net").error(str(e)) from None


def _load_norms(spec: dict, where: Where) -> list:
    """``net.norm``: one entry per hidden layer, null or ``{"name", "eps"[, "momentum"]}``,
    rebuilt as ``LayerNorm(eps)``/``BatchNorm(momentum, eps)`` (each value checked by them)."""
    entries = _require(spec, "norm", where, (list,), "a list with one entry per hidden layer")
    sizes = spec["sizes"]
    if len(entries) != max(len(sizes) - 2, 0):
        raise where.at("norm").error(f"has {len(entries)} entries but sizes {_short(sizes)} has "
                                     f"{max(len(sizes) - 2, 0)} hidden layers (one entry per hidden layer).")
    norms = []
    for i, entry in enumerate(entries):
        at = where.at(f"norm[{i}]")
        if entry is None:
            norms.append(None)
            continue
        if not isinstance(entry, dict) or entry.get("name") not in NORMS:
            raise at.error(f"must be null or a dict with name one of {sorted(NORMS)}; got {_short(entry)}.")
        kind = NORMS[entry["name"]]
        fields = ("name", *(f.name for f in dataclasses.fields(kind)))
        if set(entry) != set(fields):
            raise at.error(f"a {entry['name']} norm has exactly the fields {', '.join(fields)}; "
                           f"got {', '.join(map(str, entry))}.")
        for field in fields[1:]:
            value = entry[field]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise at.at(f".{field}").error(f"must be a number; got {_short(value)}.")
        try:
            norms.append(kind(**{field: entry[field] for field in fields[1:]}))
        except (TypeError, ValueError) as e:
            raise at.error(str(e)) from None
    return norms


def _load_params(header: dict, arrays: dict, net: MLP, where: Where) -> Params:
    if "params" not in header:
        raise where.at("params").error("missing from the header.")
    layers = decode(header["params"], arrays, where.at("params"))
    if not isinstance(layers, tuple) or not all(isinstance(l, (Dense, Normed)) for l in layers):
        raise where.at("params").error("must be a tuple of Dense(W, b) (Normed(W, gamma, beta) where the "
                                       "net normalizes).")
    for l, (layer, norm) in enumerate(zip(layers, (*net.norms, None) if len(layers) == net.n_layers else ())):
        want = Dense if norm is None else Normed
        if type(layer) is not want:
            raise where.at(f"params[{l}]").error(
                f"must be a {want.__name__} ({'no norm' if norm is None else f'{norm.name} norm'} at layer "
                f"{l + 1} of the net); got {type(layer).__name__}.")
    try:
        checks.check_params(layers, net.sizes, norms=net.norms)
    except (TypeError, ValueError) as e:
        raise where.at("params").error(f"{e} (net.sizes is {list(net.sizes)})") from None
    return layers


def _load_stats(header: dict, arrays: dict, net: MLP, where: Where) -> Stats:
    """The running statistics: present exactly when the net has batch norm, then checked as
    ``fnann.checks.check_stats`` checks them (shapes, finite, var >= 0)."""
    if not net.has_batch_norm:
        if "stats" in header:
            raise where.at("stats").error(f"{net} has no batch norm, so it keeps no running statistics.")
        return ()
    if "stats" not in header:
        raise where.at("stats").error(f"missing from the header; {net} has batch norm at layers "
                                      f"{list(net.batch_norm_layers)}, whose running statistics it needs.")
    stats = decode(header["stats"], arrays, where.at("stats"))
    if not isinstance(stats, tuple) or not all(type(s) is RunningStats for s in stats):
        raise where.at("stats").error("must be a tuple of RunningStats(mean, var).")
    try:
        checks.check_stats(net, stats)
    except (TypeError, ValueError) as e:
        raise where.at("stats").error(str(e)) from None
    return stats


def _load_key(header: dict, arrays: dict, where: Where):
    if "key" not in header:
        raise where.at("key").error("missing from the header.")
    spec = header["key"]
    if spec is None:
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("typed"), bool):
        raise where.at("key").error(f"must be null or {{'typed': bool, ...}}; got {_short(spec)}.")
    if "key" not in arrays or arrays["key"].dtype != np.uint32:
        raise where.at("key").error("the file holds no uint32 key data.")
    data = arrays["key"]
    if not spec["typed"]:
        if data.shape not in ((2,), (4,)):
            raise where.at("key").error(f"raw key data must have shape (2,) or (4,); got {data.shape}.")
        return jnp.asarray(data)
    impl = spec.get("impl")
    if impl not in KEY_IMPLS:
        raise where.at("key.impl").error(f"must be one of {KEY_IMPLS}; got {_short(impl)}.")
    try:
        return jax.random.wrap_key_data(jnp.asarray(data), impl=impl)
    except (TypeError, ValueError) as e:
        raise where.at("key").error(f"key data of shape {data.shape} is not a {impl} key ({e}).") from None


def _load_history(header: dict, where: Where) -> dict:
    history = _require(header, "history", where, (dict,), "a dict of per-epoch lists")
    for k, values in history.items():
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            raise where.at(f"history[{k!r}]").error(f"must be a list of numbers; got {_short(values)}.")
    return history


def _open(path: str, only: str | None = None) -> tuple[dict, dict, Where]:
    """``(header, arrays, where)`` of the file (of its header alone with ``only="header"``),
    the header checked to be an fnann header of a version this fnann reads."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    try:
        arrays = _read_arrays(path, only)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as e:
        raise ValueError(f"{path} is not a readable fnann checkpoint (truncated or corrupt: {e}).") from None
    where = Where(path, "")
    raw = arrays.pop("header", None)
    if raw is None:
        raise ValueError(f"{path} is not an fnann checkpoint (it has no header).")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise where.at("header").error(f"must be JSON text stored as uint8 bytes; got {raw.dtype} {raw.shape}.")
    try:
        header = json.loads(raw.tobytes().decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise where.at("header").error(f"is not valid JSON ({e}).") from None
    except RecursionError:
        raise where.at("header").error("is nested too deeply to be an fnann header.") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path} is not an fnann checkpoint (its header is not a dict with "
                         f"format {FORMAT!r}).")
    version = _require(header, "version", where, (int,), "an int")
    if version not in (1, VERSION):
        raise where.at("version").error(f"this fnann reads versions 1 and {VERSION}; got {version}.")
    return header, arrays, where


def read_header(path: str | os.PathLike) -> dict:
    """The JSON header of a checkpoint, read without its arrays: format and version checked,
    every other field as the file has it (``load`` validates them all). ``read_header(path)["meta"]``
    is what a caller reads first to decide how to load (``fnann`` commands: under
    ``jax.enable_x64`` for a float64 run).

    Raises:
      FileNotFoundError, ValueError: as ``load``.
    """
    return _open(os.fspath(path), only="header")[0]


def load(path: str | os.PathLike, net: MLP | None = None, opt: Any = None) -> Checkpoint:
    """Reads a checkpoint written by :func:`save`.

    Args:
      path: the file.
      net: if given, the checkpoint must belong to this network.
      opt: the optimizer the state belongs to (fnann's or any with optax's ``init``/
        ``update``). If given, the state is rebuilt from the template ``opt.init(params)``:
        structure and types from the template, leaves from the file, every shape and dtype
        checked. Needed for states whose types are not in the checkpoint registry (optax's);
        fnann's states load without it.

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ValueError: if the file is truncated, corrupt, not an fnann checkpoint, malformed in
        any field (named), holds a compressed member (``save`` writes none: its expansion is
        unbounded), belongs to another network than ``net`` or another optimizer than
        ``opt``, or holds 64-bit arrays while JAX's x64 is off (they would be narrowed to
        32 bits: load inside ``with jax.enable_x64(True):``).
    """
    path = os.fspath(path)
    if net is not None:
        checks.check_net(net)
    if opt is not None:
        opt = as_optimizer(opt)
    header, arrays, where = _open(path)
    saved_net = _load_net(header, where)
    if net is not None and net != saved_net:
        raise ValueError(f"checkpoint {path} belongs to {saved_net}, not to {net}.")
    params = _load_params(header, arrays, saved_net, where)
    if "opt_state" not in header:
        raise where.at("opt_state").error("missing from the header.")
    if opt is None or header["opt_state"] is None:
        opt_state = decode(header["opt_state"], arrays, where.at("opt_state"))
    else:
        template = jax.eval_shape(opt.init, params)
        opt_state = rebuild(header["opt_state"], template, arrays, where.at("opt_state"))
    meta = _require(header, "meta", where, (dict,), "a dict")
    return Checkpoint(saved_net, params, opt_state, _count(header, "epoch", where),
                      _count(header, "step", where), _load_key(header, arrays, where),
                      _load_history(header, where), meta, _load_stats(header, arrays, saved_net, where))
