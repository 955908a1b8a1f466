"""The closed tree format of checkpoints: pytrees <-> a JSON description plus named arrays.

A tree is stored as JSON nodes: ``null``; ``{"array": name, "dtype": "bfloat16"}`` (the data
under ``name`` in the ``.npz``); ``{"tuple": [...]}``, ``{"list": [...]}``, ``{"dict":
{key: ...}}``; and NamedTuples as ``{"namedtuple": "AdamState", "names": [...], "fields":
[...]}``. Nothing in a file is ever imported, looked up as an attribute or called.

Reading a tree back goes one of two ways:

* ``decode``: by the closed registry ``CHECKPOINT_TYPES`` (``Dense`` and the states of
  fnann's optimizers). A NamedTuple whose name is not registered, or whose fields differ
  from the registered class's, is refused with ``ValueError``. Each type registers itself
  where it is defined (``@register_checkpoint_type``), so this module imports nothing of
  fnann; ``fnann.checkpoint`` imports ``fnann.mlp`` and ``fnann.optim``, which fills the
  registry before anything is loaded.
* ``rebuild``: from a template, ``jax.eval_shape(opt.init, params)``. The tree's structure
  and types come from the template (the caller's own optimizer), only the leaves from the
  file, and every node and leaf must agree: NamedTuple names and fields, lengths, dict
  keys, shapes, dtypes. This restores the state of any optimizer, optax's included.

Dtypes are stored by name and restored bit-exactly: numpy's own dtypes as they are, the
ml_dtypes ones (bfloat16, float8_*), which ``.npy`` files cannot describe, as their raw bits
in an unsigned integer of the same width. A 64-bit leaf (float64, int64, uint64) is refused
while JAX's x64 is off, where it would be narrowed to 32 bits without a word.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

MAX_DEPTH = 64  # fnann's deepest tree (chain state -> AdamState -> params -> Dense -> W) has 5

CHECKPOINT_TYPES: dict[str, type] = {}
"""The NamedTuples that ``decode`` rebuilds by name: the closed registry, filled by
``register_checkpoint_type`` where each type is defined."""

NATIVE_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                 "float16", "float32", "float64")
BITS_DTYPES = ("bfloat16", "float8_e4m3fn", "float8_e5m2")  # ml_dtypes: stored as raw bits
_KINDS = ("array", "tuple", "list", "dict", "namedtuple")


def register_checkpoint_type(cls: type) -> type:
    """Adds a NamedTuple class to ``CHECKPOINT_TYPES`` (code registers types; files never do).

    A decorator on the class definition: it returns ``cls``. Registering the same class
    again is a no-op.

    Raises:
      TypeError: ``cls`` is not a NamedTuple class, or another class has its name.
    """
    if not (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")):
        raise TypeError(f"only NamedTuple classes can be registered; got {cls!r}.")
    if CHECKPOINT_TYPES.get(cls.__name__, cls) is not cls:
        raise TypeError(f"another class named {cls.__name__!r} is registered already.")
    CHECKPOINT_TYPES[cls.__name__] = cls
    return cls


class Where(NamedTuple):
    """Where in which file a node sits, for error messages."""

    file: str
    field: str

    def at(self, suffix: str) -> "Where":
        return Where(self.file, self.field + suffix)

    def error(self, message: str) -> ValueError:
        return ValueError(f"checkpoint {self.file}: {self.field}: {message}")


def is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


# --- writing --------------------------------------------------------------------------


def encode_array(a: Any, arrays: dict, name: str) -> dict:
    """Stores one leaf in ``arrays`` and returns its node."""
    if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
        raise TypeError(f"{name} is a PRNG key array; save a key through save(key=...).")
    if not isinstance(a, (jax.Array, np.ndarray, np.generic, int, float, bool)):
        raise TypeError(f"{name} is a {type(a).__name__}; a checkpoint stores NamedTuples, "
                        "tuples, lists, dicts, None and arrays of numbers.")
    a = np.asarray(a)
    dtype = a.dtype.name
    if dtype in BITS_DTYPES:
        a = a.view(f"uint{8 * a.dtype.itemsize}")
    elif dtype not in NATIVE_DTYPES:
        raise TypeError(f"{name} has dtype {dtype}, which a checkpoint does not store.")
    key = f"a{len(arrays)}"
    arrays[key] = a
    return {"array": key, "dtype": dtype}


def encode(tree: Any, arrays: dict, name: str, depth: int = 0) -> Any:
    """The JSON node of ``tree``; its arrays go into ``arrays`` under fresh names.

    Raises:
      TypeError: a node that is not None, a NamedTuple, tuple, list, dict or array, named by
        its path (``opt_state[1].mu['w']``).
    """
    if depth > MAX_DEPTH:
        raise TypeError(f"{name} is nested deeper than {MAX_DEPTH} levels.")
    if tree is None:
        return None
    if is_namedtuple(tree):
        cls = type(tree)
        node = {"namedtuple": cls.__name__, "names": list(cls._fields),
                "fields": [encode(v, arrays, f"{name}.{f}", depth + 1) for f, v in zip(cls._fields, tree)]}
        if CHECKPOINT_TYPES.get(cls.__name__) is not cls:
            node["module"] = cls.__module__  # information only: rebuilt from a template, never imported
        return node
    if isinstance(tree, (tuple, list)):
        kind = "list" if isinstance(tree, list) else "tuple"
        return {kind: [encode(v, arrays, f"{name}[{i}]", depth + 1) for i, v in enumerate(tree)]}
    if isinstance(tree, dict):
        for k in tree:
            if not isinstance(k, str):
                raise TypeError(f"{name} has the key {k!r}; a checkpoint stores dicts with str keys.")
        return {"dict": {k: encode(v, arrays, f"{name}[{k!r}]", depth + 1) for k, v in tree.items()}}
    leaves = jax.tree.leaves(tree)
    if len(leaves) != 1 or leaves[0] is not tree:
        raise TypeError(f"{name} is a {type(tree).__name__} pytree node; a checkpoint stores "
                        "NamedTuples, tuples, lists, dicts, None and arrays.")
    return encode_array(tree, arrays, name)


# --- reading --------------------------------------------------------------------------


def _kind(node: Any, where: Where, depth: int) -> str:
    if depth > MAX_DEPTH:
        raise where.error(f"nested deeper than {MAX_DEPTH} levels.")
    if not isinstance(node, dict) or sum(k in node for k in _KINDS) != 1:
        raise where.error(f"{_describe(node)} is not a tree node of the fnann format.")
    return next(k for k in _KINDS if k in node)


def _describe(node: Any) -> str:
    text = repr(node)
    return text if len(text) <= 80 else text[:80] + "..."


def _children(node: dict, kind: str, where: Where) -> list:
    children = node["fields"] if kind == "namedtuple" else node[kind]
    if not isinstance(children, list):
        raise where.error(f"the {kind} node's children must be a list; got {_describe(children)}.")
    return children


def decode_array(node: dict, arrays: dict, where: Where) -> jax.Array:
    """The array a leaf node names, in its recorded dtype, bit-exact."""
    key, dtype = node.get("array"), node.get("dtype")
    if not isinstance(key, str) or key == "header" or key not in arrays:
        raise where.error(f"names the array {_describe(key)}, which the file does not hold.")
    a = arrays[key]
    if dtype is None:  # version 1 files: the stored dtype, if it is a plain one
        dtype = a.dtype.name
    if dtype in BITS_DTYPES:
        target = jnp.dtype(dtype)
        if a.dtype != np.dtype(f"uint{8 * target.itemsize}"):
            raise where.error(f"a {dtype} array must be stored as uint{8 * target.itemsize} bits; got {a.dtype}.")
        return jnp.asarray(a.view(target))
    if dtype not in NATIVE_DTYPES or a.dtype.name != dtype:
        raise where.error(f"array {key!r} has dtype {a.dtype} (recorded: {_describe(dtype)}); a "
                          f"checkpoint holds {', '.join(NATIVE_DTYPES + BITS_DTYPES)}.")
    narrow = jax.dtypes.canonicalize_dtype(a.dtype)
    if narrow != a.dtype:  # 64-bit values with x64 off: jnp.asarray would narrow them silently
        raise where.error(f"holds {dtype}, which JAX narrows to {np.dtype(narrow).name} while x64 is off; "
                          "load it inside `with jax.enable_x64(True):`.")
    return jnp.asarray(a)


def decode(node: Any, arrays: dict, where: Where, depth: int = 0) -> Any:
    """Rebuilds a tree from its node, NamedTuples only from ``CHECKPOINT_TYPES``."""
    if node is None:
        return None
    kind = _kind(node, where, depth)
    if kind == "array":
        return decode_array(node, arrays, where)
    if kind == "dict":
        items = node["dict"]
        if not isinstance(items, dict):
            raise where.error(f"the dict node must map keys to nodes; got {_describe(items)}.")
        return {k: decode(v, arrays, where.at(f"[{k!r}]"), depth + 1) for k, v in items.items()}
    children = _children(node, kind, where)
    if kind != "namedtuple":
        out = [decode(v, arrays, where.at(f"[{i}]"), depth + 1) for i, v in enumerate(children)]
        return out if kind == "list" else tuple(out)
    name = node["namedtuple"]
    short = name.rpartition(":")[2] if isinstance(name, str) else name  # version 1: "module:Name"
    cls = CHECKPOINT_TYPES.get(short) if isinstance(short, str) and "module" not in node else None
    if cls is None:
        raise where.error(
            f"holds the type {_describe(name)}, which is not one a checkpoint may rebuild by name "
            f"({', '.join(CHECKPOINT_TYPES)}). To restore the state of another optimizer, pass "
            "it: load(path, opt=the_optimizer).")
    names = node.get("names", list(cls._fields))
    if names != list(cls._fields) or len(children) != len(cls._fields):
        raise where.error(f"a {cls.__name__} has the fields {list(cls._fields)}; the file gives "
                          f"{_describe(names)} with {len(children)} values.")
    return cls(*(decode(v, arrays, where.at(f".{f}"), depth + 1) for f, v in zip(cls._fields, children)))


def rebuild(node: Any, template: Any, arrays: dict, where: Where, depth: int = 0) -> Any:
    """Rebuilds a tree with the structure and types of ``template`` and the file's leaves.

    ``template`` is ``jax.eval_shape(opt.init, params)``: its leaves are
    ``jax.ShapeDtypeStruct``; each stored leaf must have that shape and dtype.
    """
    if template is None:
        if node is not None:
            raise where.error(f"the optimizer has no state here (None); the file holds {_describe(node)}.")
        return None
    if node is None:
        raise where.error("the file holds None where the optimizer has a state.")
    kind = _kind(node, where, depth)
    if isinstance(template, jax.ShapeDtypeStruct):
        if kind != "array":
            raise where.error(f"the optimizer has an array here; the file holds a {kind}.")
        a = decode_array(node, arrays, where)
        if a.shape != template.shape or a.dtype != template.dtype:
            raise where.error(f"the file holds shape {a.shape} and dtype {a.dtype}, the optimizer's "
                              f"state has shape {template.shape} and dtype {template.dtype}.")
        return a
    if isinstance(template, dict):
        items = node.get("dict")
        if kind != "dict" or not isinstance(items, dict) or set(items) != {str(k) for k in template}:
            raise where.error(f"the optimizer has a dict with keys {sorted(map(str, template))}; "
                              f"the file holds {_describe(items if kind == 'dict' else kind)}.")
        return {k: rebuild(items[str(k)], v, arrays, where.at(f"[{k!r}]"), depth + 1) for k, v in template.items()}
    if not isinstance(template, (tuple, list)):
        raise where.error(f"the optimizer's state holds a {type(template).__name__} node, which "
                          "checkpoints do not store.")
    want = "namedtuple" if is_namedtuple(template) else "list" if isinstance(template, list) else "tuple"
    children = _children(node, kind, where) if kind != "array" and kind != "dict" else None
    if kind != want or len(children) != len(template):
        got = f"a {kind}" + (f" of {len(children)}" if children is not None else "")
        raise where.error(f"the optimizer has a {want} of {len(template)} here; the file holds {got}.")
    if want == "namedtuple":
        cls, name = type(template), node["namedtuple"]
        short = name.rpartition(":")[2] if isinstance(name, str) else name
        if short != cls.__name__ or node.get("names", list(cls._fields)) != list(cls._fields):
            raise where.error(f"the optimizer's state is a {cls.__name__}{list(cls._fields)}; the file "
                              f"holds a {_describe(name)}{_describe(node.get('names'))}.")
        return cls(*(rebuild(v, t, arrays, where.at(f".{f}"), depth + 1)
                     for f, v, t in zip(cls._fields, children, template)))
    out = [rebuild(v, t, arrays, where.at(f"[{i}]"), depth + 1) for i, (v, t) in enumerate(zip(children, template))]
    return out if want == "list" else tuple(out)
