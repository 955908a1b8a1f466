"""Weight decay: masks (weights_only, prefixes, callables), masked L2 against numpy, AdamW's
identity and bad input, and the CLI's --weight-decay / --decoupled."""

import argparse
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from fnann import Dense
from fnann.optim import add_decayed_weights, adamw, resolve_mask, weights_only


class Linear(NamedTuple):  # an equinox/flax-like layer: its bias is named "bias"
    weight: jnp.ndarray
    bias: jnp.ndarray


def test_weights_only_masks_every_bias_by_name():
    params = {"mlp": (Dense(1.0, 2.0), Dense(3.0, 4.0)), "head": Linear(5.0, 6.0),
              "dict": {"w": 7.0, "b": 8.0, "bias": 9.0}, "gain": [10.0]}
    assert weights_only(params) == {"mlp": (Dense(True, False), Dense(True, False)),
                                    "head": Linear(True, False),
                                    "dict": {"w": True, "b": False, "bias": False}, "gain": [True]}


def test_masked_l2_equals_numpy():
    rng = np.random.default_rng(0)
    params = (Dense(rng.normal(size=(3, 2)), rng.normal(size=3)),)
    grads = (Dense(rng.normal(size=(3, 2)), rng.normal(size=3)),)
    opt = add_decayed_weights(0.1, mask=weights_only)
    out, _ = opt.update(grads, opt.init(params), params)
    np.testing.assert_allclose(out[0].W, grads[0].W + 0.1 * params[0].W, rtol=1e-6)
    np.testing.assert_array_equal(out[0].b, grads[0].b)  # the bias is not decayed
    everything = add_decayed_weights(0.1).update(grads, (), params)[0]
    np.testing.assert_allclose(everything[0].b, grads[0].b + 0.1 * params[0].b, rtol=1e-6)


def test_mask_prefix_and_errors():
    params = {"a": (1.0, 2.0), "b": 3.0}
    assert resolve_mask({"a": False, "b": True}, params) == {"a": (False, False), "b": True}
    assert resolve_mask(lambda p: {"a": True, "b": False}, params) == {"a": (True, True), "b": False}
    with pytest.raises(ValueError, match="mask does not match"):
        resolve_mask({"a": True}, params)
    with pytest.raises(TypeError, match="Python bools"):
        resolve_mask({"a": 1, "b": True}, params)


def test_adamw_identity_and_bad_input():
    assert adamw(1e-3) == adamw(lr=1e-3, weight_decay=1e-2) != adamw(1e-3, mask=weights_only)
    assert hash(adamw(1e-3, mask=weights_only)) == hash(adamw(1e-3, mask=weights_only))
    with pytest.raises(ValueError, match="weight_decay"):
        adamw(weight_decay=-0.1)
    opt, params = adamw(), {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="needs params"):
        opt.update(params, opt.init(params))


def _train_args(*argv):
    from fnann.app import cli

    parser = argparse.ArgumentParser()
    cli._add_train(parser.add_subparsers())
    return cli, parser.parse_args(["train", *argv])


def _optimizer_of(*argv):
    from fnann.app import cli

    opts, _ = cli.train_options(_train_args("--lr", "0.001", *argv)[1], None)
    return cli.build_optimizer(opts, steps_per_epoch=10, schedule_steps=100)


def test_cli_weight_decay_is_l2_unless_decoupled():
    from fnann.app import cli

    assert _optimizer_of("--weight-decay", "0.01") == fnann.chain(add_decayed_weights(0.01), fnann.adam(1e-3))
    assert _optimizer_of("--weight-decay", "0.01", "--decoupled", "--clip", "1") == fnann.chain(
        fnann.clip_by_global_norm(1.0), adamw(1e-3, weight_decay=0.01, mask=weights_only))
    with pytest.raises(cli.UsageError, match="needs --optimizer adam"):
        _optimizer_of("--decoupled", "--optimizer", "sgd")
