"""Hostile and malformed checkpoints: each is refused with one ValueError that names the file
and the field, and loading one has no side effect (nothing is imported, called or written).

The seed's format rebuilt "namedtuple" nodes by importing the module and calling the
attribute a header named; a header naming ``fnann.app.cli:main`` ran a whole training.
"""

import copy
import json
import sys
import types
import zipfile

import jax
import numpy as np
import pytest

import fnann

NET = fnann.MLP([3, 4, 2])
PARAMS = fnann.init(jax.random.key(0), NET)
OPT = fnann.adam(1e-3)
CALLS = []  # what the evil module below records if anything calls it


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """(header, arrays) of a valid checkpoint with an Adam state and a typed key."""
    path = tmp_path_factory.mktemp("good") / "c.npz"
    state = OPT.update(PARAMS, OPT.init(PARAMS), PARAMS)[1]
    fnann.save(path, NET, PARAMS, state, epoch=2, step=9, key=jax.random.key(1),
               history={"loss": [1.0, 0.5]}, meta={"a": 1})
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(arrays.pop("header").tobytes()), arrays


@pytest.fixture(autouse=True)
def evil_module(monkeypatch):
    """A module named fnann_* whose attributes record any call: the old loader would call them."""
    mod = types.ModuleType("fnann_evil")
    mod.boom = lambda *a, **k: CALLS.append(("boom", a, k))
    mod.Boom = type("Boom", (), {"__init__": lambda self, *a: CALLS.append(("Boom", a))})
    monkeypatch.setitem(sys.modules, "fnann_evil", mod)
    CALLS.clear()
    yield
    assert CALLS == []


def write(tmp_path, header, arrays, name="bad.npz"):
    arrays = dict(arrays)
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    arrays["header"] = np.frombuffer(raw, np.uint8)
    np.savez(tmp_path / name, **arrays)
    return tmp_path / name


def nested(depth):
    node = {"array": "a0", "dtype": "float32"}
    for _ in range(depth):
        node = {"tuple": [node]}
    return node


def evil(name, fields=()):
    return {"namedtuple": name, "fields": list(fields)}


ARGV = ["train", "--epochs", "1", "--out", "/tmp/pwned"]
# (case id, mutation of the header dict, field the error must name)
CASES = [
    ("cli main", lambda h: h.update(opt_state=evil("fnann.app.cli:main", ARGV)), "opt_state"),
    ("__main__ main", lambda h: h.update(opt_state=evil("fnann.__main__:main")), "opt_state"),
    ("evil callable", lambda h: h.update(opt_state=evil("fnann_evil:boom", [1])), "opt_state"),
    ("evil class", lambda h: h.update(opt_state=evil("fnann_evil:Boom")), "opt_state"),
    ("non-class attribute", lambda h: h.update(opt_state=evil("fnann:__version__")), "opt_state"),
    ("os.system", lambda h: h.update(opt_state=evil("os:system", ["touch /tmp/pwned"])), "opt_state"),
    ("registered name, foreign module", lambda h: h["opt_state"].update(module="fnann_evil"), "opt_state"),
    ("registered name, other fields", lambda h: h["opt_state"].update(names=["step", "m", "x"]), "opt_state"),
    ("registered name, too few values", lambda h: h["opt_state"]["fields"].pop(), "opt_state"),
    ("params as evil", lambda h: h["params"]["tuple"].__setitem__(0, evil("fnann_evil:Boom")), "params[0]"),
    ("deep nesting", lambda h: h.update(opt_state=nested(200)), "nested deeper"),
    ("huge sizes", lambda h: h["net"].update(sizes=[10**12, 10**12, 2]), "params"),
    ("sizes disagree with W", lambda h: h["net"].update(sizes=[3, 5, 2]), "params"),
    ("sizes not ints", lambda h: h["net"].update(sizes=[3, 4.5, 2]), "net"),
    ("sizes a string", lambda h: h["net"].update(sizes="342"), "net.sizes"),
    ("unknown activation", lambda h: h["net"].update(hidden="fnann_evil:boom"), "net"),
    ("output not a str", lambda h: h["net"].update(output=3), "net.output"),
    ("hidden a list of ints", lambda h: h["net"].update(hidden=[1]), "net"),
    ("hidden one per layer, too many", lambda h: h["net"].update(hidden=["relu", "tanh", "relu"]), "net"),
    ("hidden a dict", lambda h: h["net"].update(hidden={"relu": 1}), "net.hidden"),
    ("hidden a huge list", lambda h: h["net"].update(hidden=["relu"] * 10**6), "net"),
    ("residual a string", lambda h: h["net"].update(residual="2"), "net.residual"),
    ("residual impossible", lambda h: h["net"].update(residual=[5]), "net"),
    ("residual of bools", lambda h: h["net"].update(residual=[True]), "net"),
    ("net a list", lambda h: h.update(net=[3, 4, 2]), "net"),
    ("epoch abc", lambda h: h.update(epoch="abc"), "epoch"),
    ("epoch bool", lambda h: h.update(epoch=True), "epoch"),
    ("epoch negative", lambda h: h.update(epoch=-1), "epoch"),
    ("epoch huge", lambda h: h.update(epoch=10**30), "epoch"),
    ("step float", lambda h: h.update(step=1.5), "step"),
    ("history a string", lambda h: h.update(history="x"), "history"),
    ("history values not lists", lambda h: h.update(history={"loss": "x"}), "history['loss']"),
    ("history of bools", lambda h: h.update(history={"loss": [True]}), "history['loss']"),
    ("meta not a dict", lambda h: h.update(meta=3), "meta"),
    ("key impl unknown", lambda h: h["key"].update(impl="fnann_evil:boom"), "key.impl"),
    ("key a string", lambda h: h.update(key="x"), "key"),
    ("params a bare array", lambda h: h.update(params={"array": "a0", "dtype": "float32"}), "params"),
    ("node a list", lambda h: h.update(opt_state=[1, 2]), "opt_state"),
    ("node a string", lambda h: h["params"]["tuple"].__setitem__(1, "a0"), "params[1]"),
    ("two kinds in a node", lambda h: h.update(opt_state={"tuple": [], "list": []}), "opt_state"),
    ("children not a list", lambda h: h.update(opt_state={"tuple": "abc"}), "opt_state"),
    ("array named header", lambda h: h["params"]["tuple"][0]["fields"].__setitem__(0, {"array": "header"}),
     "params[0].W"),
    ("array missing", lambda h: h["params"]["tuple"][0]["fields"].__setitem__(0, {"array": "zz"}), "params[0].W"),
    ("dtype object", lambda h: h["params"]["tuple"][0]["fields"][0].update(dtype="object"), "params[0].W"),
    ("dtype lies", lambda h: h["params"]["tuple"][0]["fields"][0].update(dtype="bfloat16"), "params[0].W"),
    ("version unknown", lambda h: h.update(version=99), "version"),
    ("version a string", lambda h: h.update(version="2"), "version"),
] + [(f"missing {k}", (lambda k: lambda h: h.pop(k))(k), k)
     for k in ("version", "net", "params", "opt_state", "key", "epoch", "step", "history", "meta")]


@pytest.mark.parametrize("case,mutate,field", CASES, ids=[c[0] for c in CASES])
def test_malformed_header_is_one_value_error_naming_file_and_field(tmp_path, good, case, mutate, field):
    header, arrays = good
    header = copy.deepcopy(header)
    mutate(header)
    path = write(tmp_path, header, arrays)
    modules = set(sys.modules)
    with pytest.raises(ValueError) as e:
        fnann.load(path)
    assert str(path) in str(e.value) and field in str(e.value), str(e.value)
    assert set(sys.modules) == modules  # nothing was imported
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]  # nothing was written


def test_the_valid_file_loads(tmp_path, good):
    ck = fnann.load(write(tmp_path, *good), net=NET)
    assert ck.epoch == 2 and ck.step == 9 and type(ck.opt_state) is fnann.AdamState


@pytest.mark.parametrize("case", ["list header", "json broken", "json nested 100000 deep",
                                  "header not bytes", "no header", "object array", "huge declared shape",
                                  "not an npy member", "not a zip"])
def test_malformed_file_is_one_value_error_naming_the_file(tmp_path, good, case):
    header, arrays = good
    path = tmp_path / "bad.npz"
    if case == "list header":
        write(tmp_path, [1, 2], arrays)
    elif case == "json broken":
        write(tmp_path, b'{"format": "fnann-checkpoint", ', arrays)
    elif case == "json nested 100000 deep":
        write(tmp_path, b"[" * 100000 + b"]" * 100000, arrays)
    elif case == "header not bytes":
        np.savez(path, header=np.ones(3), **arrays)
    elif case == "no header":
        np.savez(path, **arrays)
    elif case == "object array":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("header.npy", _npy(np.frombuffer(json.dumps(header).encode(), np.uint8)))
            zf.writestr("a0.npy", _npy(np.array([object()], dtype=object), allow_pickle=True))
    elif case == "huge declared shape":  # a .npy header promising 8 TB in a few bytes
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("header.npy", _npy(np.frombuffer(json.dumps(header).encode(), np.uint8)))
            member = _npy(np.zeros(4, np.float64)).replace(b"(4,)", b"(1000000000000,)")
            zf.writestr("a0.npy", member)
    elif case == "not an npy member":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("evil.py", "import os")
    else:
        path.write_bytes(b"#!/bin/sh\nrm -rf /\n")
    with pytest.raises(ValueError) as e:
        fnann.load(path)
    assert str(path) in str(e.value)


def _npy(a, allow_pickle=False):
    import io
    f = io.BytesIO()
    np.lib.format.write_array(f, a, allow_pickle=allow_pickle)
    return f.getvalue()


def test_rebuilding_from_the_optimizer_checks_every_node(tmp_path):
    path = tmp_path / "c.npz"
    fnann.save(path, NET, PARAMS, OPT.init(PARAMS))
    assert type(fnann.load(path, opt=OPT).opt_state) is fnann.AdamState
    for other, field in [(fnann.sgd(0.1), "opt_state"), (fnann.momentum(0.1), "opt_state"),
                         (fnann.chain(fnann.clip_by_global_norm(1.0), OPT), "opt_state")]:
        with pytest.raises(ValueError, match=rf"{path}: {field}"):
            fnann.load(path, opt=other)
    bigger = fnann.init(jax.random.key(0), fnann.MLP([3, 5, 2]))
    fnann.save(path, NET, PARAMS, OPT.init(bigger))  # a state shaped for other params
    with pytest.raises(ValueError, match=r"opt_state.m\[0\].W: the file holds shape \(5, 3\)"):
        fnann.load(path, opt=OPT)
