"""Each loss's value against numpy by hand, its gradient against jax.grad, and the fused forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fnann
from fnann import losses


def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def draw(seed, m, k):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(m, k)) * 3
    labels = rng.integers(0, k, size=m)
    return z, labels, np.eye(k)[labels], rng.uniform(size=(m, k)).round()


# A few shapes only: every new shape compiles new XLA programs; the values vary by seed.
SHAPES = st.sampled_from([(1, 2), (4, 3), (7, 5)])


seeds = st.integers(0, 2**31 - 1)


@given(seed=seeds, shape=SHAPES)
def test_values_match_numpy(seed, shape):
    m, k = shape
    z, labels, onehot, bits = draw(seed, m, k)
    with jax.enable_x64(True):
        p = np_softmax(z)
        s = 1 / (1 + np.exp(-z))
        ce = -np.sum(onehot * np.log(p)) / m
        bce = -np.mean(bits * np.log(s) + (1 - bits) * np.log(1 - s))
        mse = np.mean((p - onehot) ** 2)
        np.testing.assert_allclose(fnann.cross_entropy.fn(jnp.asarray(p), jnp.asarray(onehot)), ce, rtol=1e-12)
        np.testing.assert_allclose(fnann.cross_entropy.fn(jnp.asarray(p), jnp.asarray(labels)), ce, rtol=1e-12)
        ce_logits = fnann.cross_entropy.fn_from_logits(jnp.asarray(z), jnp.asarray(labels))
        np.testing.assert_allclose(ce_logits, ce, rtol=1e-12)
        np.testing.assert_allclose(fnann.binary_cross_entropy.fn(jnp.asarray(s), jnp.asarray(bits)), bce, rtol=1e-12)
        bce_logits = fnann.binary_cross_entropy.fn_from_logits(jnp.asarray(z), jnp.asarray(bits))
        np.testing.assert_allclose(bce_logits, bce, rtol=1e-10)
        np.testing.assert_allclose(fnann.mse.fn(jnp.asarray(p), jnp.asarray(onehot)), mse, rtol=1e-12)


@pytest.mark.parametrize("loss", [fnann.mse, fnann.cross_entropy, fnann.binary_cross_entropy])
@given(seed=seeds, shape=SHAPES)
def test_grad_matches_jax_grad(loss, seed, shape):
    m, k = shape
    z, labels, onehot, bits = draw(seed, m, k)
    with jax.enable_x64(True):
        y_hat = jnp.asarray(np_softmax(z) if loss is fnann.cross_entropy else 1 / (1 + np.exp(-z)))
        y = jnp.asarray(bits if loss is fnann.binary_cross_entropy else onehot)
        np.testing.assert_allclose(loss.grad(y_hat, y), jax.grad(loss.fn)(y_hat, y), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("loss", [fnann.cross_entropy, fnann.binary_cross_entropy])
@given(seed=seeds, shape=SHAPES)
def test_fused_delta_is_grad_of_loss_from_logits_and_of_the_chain(loss, seed, shape):
    m, k = shape
    z, labels, onehot, bits = draw(seed, m, k)
    with jax.enable_x64(True):
        z = jnp.asarray(z)
        y = jnp.asarray(labels if loss is fnann.cross_entropy else bits)
        fused = loss.delta_from_logits(z, y)
        np.testing.assert_allclose(fused, jax.grad(loss.fn_from_logits)(z, y), rtol=1e-12, atol=1e-15)
        # The textbook chain: dL/dA then the link's backward rule.
        chain = loss.link.backward(z, loss.grad(loss.link.fn(z), y))
        np.testing.assert_allclose(fused, chain, rtol=1e-8, atol=1e-12)
        # and the value from logits equals the value from probabilities
        np.testing.assert_allclose(loss.fn_from_logits(z, y), loss.fn(loss.link.fn(z), y), rtol=1e-10)


def test_cross_entropy_delta_is_a_minus_y_over_m():
    z = jnp.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    y = jnp.array([2, 0])
    want = (np.asarray(fnann.softmax.fn(z)) - np.eye(3)[[2, 0]]) / 2
    np.testing.assert_allclose(fnann.cross_entropy.delta_from_logits(z, y), want, rtol=1e-6)


@pytest.mark.parametrize("loss", [fnann.cross_entropy, fnann.binary_cross_entropy])
def test_fused_forms_finite_at_huge_logits(loss):
    z = jnp.array([[1e4, -1e4], [-1e4, 1e4], [0.0, 1e4]])
    y = jnp.array([1, 1, 0]) if loss is fnann.cross_entropy else jnp.array([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    value = loss.fn_from_logits(z, y)
    delta = loss.delta_from_logits(z, y)
    grad = jax.grad(loss.fn_from_logits)(z, y)
    assert np.isfinite(float(value)) and float(value) > 1e3  # confidently wrong -> huge but finite
    assert bool(jnp.all(jnp.isfinite(delta))) and bool(jnp.all(jnp.isfinite(grad)))
    np.testing.assert_allclose(delta, grad, atol=1e-7)


def test_cross_entropy_zero_log_zero():
    # A probability of exactly 0 on a wrong class contributes 0, not nan.
    y_hat = jnp.array([[1.0, 0.0, 0.0]])
    assert float(fnann.cross_entropy.fn(y_hat, jnp.array([0]))) == 0.0
    assert bool(jnp.all(jnp.isfinite(fnann.cross_entropy.grad(y_hat, jnp.array([0])))))


def test_mse_reduction_is_mean_over_every_element():
    y_hat = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    y = jnp.zeros((3, 2))
    assert float(fnann.mse.fn(y_hat, y)) == pytest.approx(91 / 6)
    np.testing.assert_allclose(fnann.mse.grad(y_hat, y), 2 * np.asarray(y_hat) / 6)


def test_one_dimensional_y_for_single_output_is_a_column_not_broadcast():
    y_hat = jnp.array([[1.0], [2.0], [3.0]])
    y = jnp.array([1.0, 2.0, 4.0])
    assert float(fnann.mse.fn(y_hat, y)) == pytest.approx(1 / 3)  # broadcasting would give 8/3


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="y has shape"):
        fnann.mse.fn(jnp.ones((3, 2)), jnp.ones((3, 3)))
    with pytest.raises(ValueError, match="integer class labels"):
        fnann.cross_entropy.fn(jnp.ones((3, 2)) / 2, jnp.array([0.0, 1.0, 1.0]))


def test_lookup_by_name():
    assert losses.get_loss("ce") is fnann.cross_entropy
    assert losses.get_loss("binary-cross-entropy") is fnann.binary_cross_entropy
    with pytest.raises(ValueError, match="unknown loss 'hinge_squared'.*'mse'"):
        losses.get_loss("hinge_squared")
    with pytest.raises(TypeError, match="loss"):
        losses.get_loss(None)
