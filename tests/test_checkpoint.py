"""Checkpoints: exact round trip, bit-identical resume, atomic writes, clear errors."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from fnann import checkpoint
from fnann.app import datasets


def trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("opt", [fnann.sgd(0.1), fnann.momentum(0.1), fnann.rmsprop(1e-3),
                                 fnann.adam(1e-3),
                                 fnann.chain(fnann.clip_by_global_norm(1.0), fnann.adam(1e-3))],
                         ids=["sgd", "momentum", "rmsprop", "adam", "chain"])
def test_round_trip(tmp_path, opt):
    net = fnann.MLP([3, 5, 2], hidden="tanh")
    params = fnann.init(jax.random.key(0), net)
    state = opt.update(params, opt.init(params), params)[1]  # a non-trivial state
    key = jax.random.key(42)
    path = fnann.save(tmp_path / "c.npz", net, params, state, epoch=3, step=17, key=key,
                      history={"loss": [1.0, 0.5]}, meta={"note": "hi"})
    ck = fnann.load(path, net=net)
    assert ck.net == net and ck.epoch == 3 and ck.step == 17
    assert ck.history == {"loss": [1.0, 0.5]} and ck.meta == {"note": "hi"}
    trees_equal(ck.params, params)
    trees_equal(ck.opt_state, state)
    np.testing.assert_array_equal(jax.random.key_data(ck.key), jax.random.key_data(key))


def test_train_save_load_train_is_bit_identical_to_training_straight_through(tmp_path):
    d = datasets.load("iris", seed=0)
    net = fnann.MLP([4, 16, 3])
    opt, key = fnann.adam(1e-2), jax.random.key(11)
    p0 = fnann.init(jax.random.key(0), net)
    kw = dict(batch_size=16)
    straight, _ = fnann.fit(net, "ce", opt, p0, d.x_train, d.y_train, key=key, epochs=7, **kw)

    p, hist, st = fnann.fit(net, "ce", opt, p0, d.x_train, d.y_train, key=key, epochs=4,
                            return_state=True, **kw)
    fnann.save(tmp_path / "ck.npz", net, p, st.opt_state, epoch=st.epoch, key=st.key, history=hist)
    ck = fnann.load(tmp_path / "ck.npz", net=net)
    resumed, _ = fnann.fit(net, "ce", opt, ck.params, d.x_train, d.y_train, key=ck.key,
                           epochs=3, opt_state=ck.opt_state, initial_epoch=ck.epoch, **kw)
    trees_equal(resumed, straight)


def test_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    net = fnann.MLP([2, 3, 2])
    old = fnann.init(jax.random.key(0), net)
    path = tmp_path / "c.npz"
    fnann.save(path, net, old, epoch=1)

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        fnann.save(path, net, fnann.init(jax.random.key(1), net), epoch=2)
    monkeypatch.undo()
    ck = fnann.load(path)
    assert ck.epoch == 1
    trees_equal(ck.params, old)
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left behind


def test_write_killed_mid_way_leaves_previous_loadable(tmp_path):
    # A child process dies (os._exit) in the middle of writing: the old file must survive.
    import subprocess
    import sys
    net = fnann.MLP([2, 3, 2])
    path = tmp_path / "c.npz"
    fnann.save(path, net, fnann.init(jax.random.key(0), net), epoch=5)
    code = f"""
import os, jax, numpy as np, fnann
from fnann import checkpoint
real = np.savez
def dying(f, **a):
    f.write(b"partial")
    f.flush()
    os._exit(9)
checkpoint.np.savez = dying
net = fnann.MLP([2, 3, 2])
fnann.save({str(path)!r}, net, fnann.init(jax.random.key(1), net), epoch=6)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert r.returncode == 9
    assert fnann.load(path).epoch == 5


def test_overwrite_false_refuses(tmp_path):
    net = fnann.MLP([2, 2])
    p = fnann.init(jax.random.key(0), net)
    fnann.save(tmp_path / "c.npz", net, p)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fnann.save(tmp_path / "c.npz", net, p, overwrite=False)


def test_missing_truncated_foreign_and_wrong_network(tmp_path):
    net = fnann.MLP([2, 3, 2])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fnann.load(tmp_path / "nope.npz")
    good = tmp_path / "good.npz"
    fnann.save(good, net, fnann.init(jax.random.key(0), net))
    data = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        fnann.load(tmp_path / "trunc.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable fnann checkpoint"):
        fnann.load(tmp_path / "text.npz")
    np.savez(tmp_path / "other.npz", header=np.frombuffer(b'{"format": "x"}', np.uint8))
    with pytest.raises(ValueError, match="not an fnann checkpoint"):
        fnann.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="belongs to MLP"):
        fnann.load(good, net=fnann.MLP([2, 4, 2]))


def test_custom_activation_cannot_be_saved_by_name(tmp_path):
    act = fnann.elementwise("mine", jnp.tanh, lambda z: 1 / jnp.cosh(z) ** 2)
    net = fnann.MLP([2, 3, 2], hidden=act)
    with pytest.raises(TypeError, match="custom hidden activation 'mine'"):
        fnann.save(tmp_path / "c.npz", net, fnann.init(jax.random.key(0), net))


# --- low precision, any optimizer's state, and what save refuses ---------------------


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_round_trip_is_bit_exact(tmp_path, dtype):
    net = fnann.MLP([3, 5, 2], hidden="tanh")
    params = jax.tree.map(lambda a: (a * 3.3).astype(dtype), fnann.init(jax.random.key(0), net))
    opt = fnann.adam(1e-3)
    state = opt.update(params, opt.init(params), params)[1]
    fnann.save(tmp_path / "c.npz", net, params, state)
    for ck in (fnann.load(tmp_path / "c.npz"), fnann.load(tmp_path / "c.npz", opt=opt)):
        assert ck.params[0].W.dtype == dtype
        trees_equal(ck.params, params)  # same dtype, same values
        for a, b in zip(jax.tree.leaves(ck.params), jax.tree.leaves(params)):  # same bits
            np.testing.assert_array_equal(np.asarray(a).view(np.uint16), np.asarray(b).view(np.uint16))
        trees_equal(ck.opt_state, state)


def test_optax_state_is_saved_by_structure_and_rebuilt_from_the_optimizer(tmp_path):
    optax = pytest.importorskip("optax")
    net = fnann.MLP([3, 4, 2])
    params = fnann.init(jax.random.key(0), net)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))
    state = opt.update(params, opt.init(params), params)[1]
    fnann.save(tmp_path / "c.npz", net, params, state, epoch=1)
    ck = fnann.load(tmp_path / "c.npz", opt=opt)
    trees_equal(ck.opt_state, state)  # structure includes optax's own NamedTuple types
    assert type(ck.opt_state[1][0]) is type(state[1][0])
    # optax's EmptyState is not fnann's (same name, other class): never rebuilt by name
    with pytest.raises(ValueError, match=r"opt_state\[0\]: holds the type 'EmptyState'.*load\(path, opt="):
        fnann.load(tmp_path / "c.npz")
    with pytest.raises(ValueError, match="opt_state"):
        fnann.load(tmp_path / "c.npz", opt=optax.sgd(0.1))


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(history={"loss": [1.0, "x"]}), TypeError, r"history\['loss'\] must be a list of numbers"),
    (dict(history="x"), TypeError, "history must be a dict"),
    (dict(meta={"a": {1, 2}}), TypeError, r"meta\['a'\] holds a set"),
    (dict(meta={1: "a"}), TypeError, "meta has the key 1"),
    (dict(meta=[1]), TypeError, "meta must be a dict"),
    (dict(epoch="x"), TypeError, "epoch must be an int"),
    (dict(epoch=-1), ValueError, "epoch must be >= 0"),
    (dict(step=1.5), TypeError, "step must be an int"),
    (dict(key=0), TypeError, "key must be a PRNG key"),
    (dict(opt_state={"a": object()}), TypeError, r"opt_state\['a'\] is a object"),
    (dict(opt_state={1: jnp.ones(2)}), TypeError, "opt_state has the key 1"),
    (dict(params="other net"), ValueError, r"params\[0\] has W \(4, 3\).*expects W \(5, 3\)"),
])
def test_save_checks_everything_before_writing(tmp_path, kwargs, err, match):
    net = fnann.MLP([3, 4, 2])
    params = fnann.init(jax.random.key(0), net)
    if kwargs.get("params") == "other net":
        net, kwargs = fnann.MLP([3, 5, 2]), {}
    with pytest.raises(err, match=match):
        fnann.save(tmp_path / "c.npz", net, params, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_numpy_numbers_in_history_and_meta_are_saved_as_numbers(tmp_path):
    net = fnann.MLP([3, 2])
    params = fnann.init(jax.random.key(0), net)
    fnann.save(tmp_path / "c.npz", net, params, history={"loss": [np.float32(0.5), jnp.float32(0.25)]},
               meta={"mean": np.arange(3.0), "n": np.int64(4)})
    ck = fnann.load(tmp_path / "c.npz")
    assert ck.history == {"loss": [0.5, 0.25]} and ck.meta == {"mean": [0.0, 1.0, 2.0], "n": 4}


def test_a_fresh_process_loads_fnann_states_by_name(tmp_path):
    """The registry is filled where the types are defined (``@register_checkpoint_type`` in
    mlp and optim), which ``fnann.load`` imports: nothing else need be imported first."""
    import os
    import subprocess
    import sys

    net = fnann.MLP([2, 3, 2])
    params = fnann.init(jax.random.key(0), net)
    opt = fnann.chain(fnann.clip_by_global_norm(1.0), fnann.adam(1e-3))
    fnann.save(tmp_path / "c.npz", net, params, opt.init(params), epoch=3)
    code = f"""
import fnann
ck = fnann.load({str(tmp_path / "c.npz")!r})
print(ck.epoch, ",".join(type(s).__name__ for s in ck.opt_state), type(ck.params[0]).__name__)
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": root})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "EmptyState,AdamState", "Dense"]


def test_the_registry_is_closed_and_filled_at_the_definitions():
    from typing import NamedTuple

    from fnann import tree_codec

    for cls in (fnann.Dense, fnann.EmptyState, fnann.SGDState, fnann.MomentumState, fnann.RMSPropState,
                fnann.AdamState):
        assert tree_codec.CHECKPOINT_TYPES[cls.__name__] is cls
        assert tree_codec.register_checkpoint_type(cls) is cls  # again, as on a re-import: fine
        assert tree_codec.CHECKPOINT_TYPES[cls.__name__] is cls

    class AdamState(NamedTuple):  # another class under a registered name
        step: jax.Array

    with pytest.raises(TypeError, match="another class named 'AdamState'"):
        tree_codec.register_checkpoint_type(AdamState)
    assert tree_codec.CHECKPOINT_TYPES["AdamState"] is fnann.AdamState
    with pytest.raises(TypeError, match="only NamedTuple classes"):
        tree_codec.register_checkpoint_type(tuple)
