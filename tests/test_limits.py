"""Plain numbers with a ceiling: a seed fits what ``jax.random.key`` takes (one bound,
``fnann.limits.MAX_SEED``, for the library's doors and every command's ``--seed``), and
``init`` refuses a network larger than the device's memory before allocating it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fnann
from fnann import checks, mlp
from fnann.app import cli, datasets
from fnann.app.runner import run_keys
from fnann.limits import MAX_SEED


def run(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


# --- seeds ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "gradcheck", "explain"])
@pytest.mark.parametrize("seed", [str(2**40), str(MAX_SEED + 1), str(2**64), "-1"])
def test_every_command_bounds_its_seed_in_one_line(command, seed, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, f"--seed={seed}"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and f"fnann {command}: error: argument --seed: must be" in err


def test_the_commands_share_one_seed_type():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    types = {name: next(a.type for a in commands[name]._actions if a.dest == "seed")
             for name in ("train", "gradcheck", "explain")}
    assert len(set(types.values())) == 1, types


def test_the_largest_seed_runs(capsys):
    status, out, err = run(["gradcheck", "--sizes", "3,4,2", "--batch", "4", f"--seed={MAX_SEED}", "--no-cache"],
                           capsys)
    assert status == 0, err
    status, out, err = run(["explain", f"--seed={MAX_SEED}", "--no-cache"], capsys)
    assert status == 0, err
    k_init, k_fit = run_keys()(MAX_SEED)  # fnann train's seeding, compiled (an int32 seed)
    assert k_init.shape == k_fit.shape == ()


@settings(max_examples=20, deadline=None)
@given(st.integers(MAX_SEED + 1, 2**80))
def test_the_library_doors_refuse_a_seed_past_the_bound(seed):
    with pytest.raises(ValueError, match=rf"seed must be <= {MAX_SEED} \(2\*\*31 - 1\); got {seed}"):
        checks.seed(seed)
    net = fnann.MLP([2, 3, 2])
    params = fnann.init(jax.random.key(0), net)
    with pytest.raises(ValueError, match="seed must be <="):
        fnann.check_grads(net, "cross_entropy", params, jnp.ones((2, 2)), jnp.array([0, 1]), seed=seed)


def test_the_bound_itself_is_a_seed():
    assert checks.seed(MAX_SEED) == MAX_SEED and checks.seed(0) == 0
    assert datasets.load("xor", seed=2**40).x_train.shape[1] == 2  # numpy's seeds: any int >= 0
    with pytest.raises(TypeError):
        checks.seed(True)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        checks.seed(-1)


# --- init's memory ----------------------------------------------------------------------------


def test_init_refuses_a_network_larger_than_memory_naming_its_size():
    net = fnann.MLP([2**20, 2**20])
    with pytest.raises(ValueError, match=r"init of MLP\(sizes=\(1048576, 1048576\).*float32 needs 8\.0 TiB "
                                         r"\(8796097216512 bytes\), more than the"):
        fnann.init(jax.random.key(0), net)
    with jax.enable_x64(True), pytest.raises(ValueError, match=r"in float64 needs 4\.0 TiB"):
        fnann.init(jax.random.key(0), fnann.MLP([2**19, 2**19]), dtype=jnp.float64)
    with pytest.raises(ValueError, match="needs"):  # compile_fit's shapes come through init too
        jax.eval_shape(lambda k: fnann.init(k, net), jax.random.key(0))


def test_the_estimate_is_the_params_and_their_draw():
    net = fnann.MLP([3, 5, 2])
    params = fnann.init(jax.random.key(0), net)
    held = sum(leaf.nbytes for leaf in jax.tree.leaves(params))
    assert mlp.init_bytes(net, jnp.float32) == held + 4 * (3 * 5 + 5 * 2)
    assert mlp.init_bytes(net, jnp.bfloat16) == mlp.init_bytes(net, jnp.float32) // 2
    with jax.enable_x64(True):
        assert mlp.init_bytes(net, jnp.float64) == 2 * mlp.init_bytes(net, jnp.float32)
    assert mlp.init_bytes(net, jnp.float64) == mlp.init_bytes(net, jnp.float32)  # x64 off: float32 is held


def test_the_limit_is_the_devices(monkeypatch):
    limit, where = checks.memory_limit()
    assert limit > 1 << 20 and isinstance(where, str)
    net = fnann.MLP([64, 64])
    need = mlp.init_bytes(net, jnp.float32)
    monkeypatch.setattr(checks, "memory_limit", lambda: (need, "device test"))
    assert fnann.init(jax.random.key(0), net)[0].W.shape == (64, 64)  # exactly at the limit: fine
    with jax.enable_x64(True), pytest.raises(ValueError, match=r"more than the device test holds \(32\.2 KiB\)"):
        fnann.init(jax.random.key(0), net, dtype=jnp.float64)  # twice that: refused
    np.testing.assert_array_equal(fnann.init(jax.random.key(1), fnann.MLP([4, 3]))[0].b, np.zeros(3))
