"""Bad input raises ValueError/TypeError naming the argument, at the public boundary."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann

NET = fnann.MLP([4, 5, 3])
PARAMS = fnann.init(jax.random.key(0), NET)
X = jnp.ones((6, 4))
Y = jnp.array([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize("sizes,err,match", [
    ([4], ValueError, "at least two"),
    ([], ValueError, "at least two"),
    ([4, 0, 3], ValueError, r"sizes\[1\] must be a width >= 1"),
    ([4, -2], ValueError, r"sizes\[1\]"),
    ([4, 2.5], TypeError, r"sizes\[1\] must be an integer"),
    ("43", TypeError, "sizes must be a list or tuple"),
    (7, TypeError, "sizes must be a list or tuple"),
])
def test_bad_sizes(sizes, err, match):
    with pytest.raises(err, match=match):
        fnann.MLP(sizes)


def test_unknown_activation_names():
    with pytest.raises(ValueError, match="hidden: unknown activation 'nonesuch'.*known names"):
        fnann.MLP([2, 3], hidden="nonesuch")
    with pytest.raises(ValueError, match="output: unknown activation"):
        fnann.MLP([2, 3], output="softsign")


def test_unknown_loss_name():
    with pytest.raises(ValueError, match="unknown loss 'hinge_squared'"):
        fnann.loss_and_grad(NET, "hinge_squared")
    with pytest.raises(ValueError, match="method must be one of"):
        fnann.loss_and_grad(NET, "mse", method="numeric")


@pytest.mark.parametrize("x,match", [
    (jnp.ones((6, 5)), "x has 5 features.*expects 4"),
    (jnp.ones(4), r"x must have shape \(batch, 4\).*x\[None, :\]"),
    (jnp.ones((2, 3, 4)), r"x must have shape \(batch, 4\)"),
])
def test_bad_x(x, match):
    with pytest.raises(ValueError, match=match):
        fnann.forward(NET, PARAMS, x)
    with pytest.raises(ValueError, match=match):
        jax.jit(fnann.forward, static_argnums=0)(NET, PARAMS, x)


def test_params_that_do_not_match_the_net():
    other = fnann.init(jax.random.key(0), fnann.MLP([4, 6, 3]))
    with pytest.raises(ValueError, match=r"params\[0\] has W \(6, 4\).*expects W \(5, 4\)"):
        fnann.forward(NET, other, X)
    with pytest.raises(ValueError, match="params has 1 layers but the network"):
        fnann.forward(NET, PARAMS[:1], X)
    with pytest.raises(TypeError, match=r"params\[0\] must be a Dense"):
        fnann.forward(NET, ({"W": 1},) * 2, X)
    with pytest.raises(TypeError, match="params must be a tuple of Dense"):
        fnann.forward(NET, {"a": PARAMS}, X)


@pytest.mark.parametrize("method", ["manual", "autodiff"])
def test_bad_targets(method):
    f = fnann.loss_and_grad(NET, "cross_entropy", method)
    with pytest.raises(ValueError, match="x has 6 rows but y has 5"):
        f(PARAMS, X, Y[:5])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        f(PARAMS, X, Y.at[0].set(3))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        f(PARAMS, X, Y.at[0].set(-1))
    with pytest.raises(ValueError, match="y has 4 columns but the network has 3 outputs"):
        f(PARAMS, X, jnp.ones((6, 4)))
    with pytest.raises(ValueError, match="NaN or inf"):
        fnann.loss_and_grad(NET, "mse", method)(PARAMS, X, jnp.full((6, 3), jnp.nan))
    with pytest.raises(ValueError, match="y has shape"):
        fnann.loss_and_grad(NET, "mse", method)(PARAMS, X, jnp.ones(6))


def test_labels_out_of_range_in_check_grads():
    with pytest.raises(ValueError, match="labels"):
        fnann.check_grads(NET, "cross_entropy", PARAMS, X, np.array([0, 1, 2, 3, 0, 1]))


def test_init_rejects_bad_arguments():
    with pytest.raises(TypeError, match="net must be an fnann.MLP"):
        fnann.init(jax.random.key(0), [4, 5, 3])
    with pytest.raises(TypeError, match="dtype must be a floating"):
        fnann.init(jax.random.key(0), NET, jnp.int32)
