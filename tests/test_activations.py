"""Each activation's hand-derived backward rule against jax.vjp, at ordinary and extreme inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fnann
from fnann.activations import ACTIVATIONS, get_activation

NAMES = sorted(ACTIVATIONS)
EXTREME = np.array([[-1e4, -750.0, -40.0, -1.0, 0.0, 1e-8, 1.0, 40.0, 750.0, 1e4]])


def vjp_reference(act, z, da):
    return jax.vjp(act.fn, z)[1](da)[0]


@pytest.mark.parametrize("name", NAMES)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from([(1, 1), (3, 4), (6, 9)]),
       scale=st.sampled_from([0.1, 1.0, 10.0]))
def test_backward_matches_vjp_float64(name, seed, shape, scale):
    act = ACTIVATIONS[name]
    with jax.enable_x64(True):
        kz, kd = jax.random.split(jax.random.key(seed))
        z = scale * jax.random.normal(kz, shape, jnp.float64)
        da = jax.random.normal(kd, shape, jnp.float64)
        got = act.backward(z, da)
        want = vjp_reference(act, z, da)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_vjp_float32(name):
    act = ACTIVATIONS[name]
    z = jax.random.normal(jax.random.key(0), (4, 7), jnp.float32) * 3
    da = jax.random.normal(jax.random.key(1), (4, 7), jnp.float32)
    got = act.backward(z, da)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, vjp_reference(act, z, da), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extreme_inputs_finite_and_exact(name, dtype):
    with jax.enable_x64(dtype == "float64"):
        act = ACTIVATIONS[name]
        z = jnp.asarray(EXTREME, dtype)
        a = act.fn(z)
        dz = act.backward(z, jnp.ones_like(z))
        assert bool(jnp.all(jnp.isfinite(a))) and bool(jnp.all(jnp.isfinite(dz)))
        auto = vjp_reference(act, z, jnp.ones_like(z))
        assert bool(jnp.all(jnp.isfinite(auto)))
        np.testing.assert_allclose(dz, auto, rtol=1e-5, atol=1e-30)


def test_sigmoid_exact_at_extremes():
    z = jnp.array([-1e4, 1e4, 0.0])
    np.testing.assert_array_equal(fnann.sigmoid.fn(z), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(fnann.sigmoid.backward(z, jnp.ones(3)), [0.0, 0.0, 0.25])


def test_sigmoid_matches_numpy_and_derivative_is_accurate_for_large_z():
    with jax.enable_x64(True):
        z = np.linspace(-30, 30, 61)
        np.testing.assert_allclose(fnann.sigmoid.fn(jnp.asarray(z)), 1 / (1 + np.exp(-z)), rtol=1e-14)
        # sigma'(z) = e^-z / (1 + e^-z)^2 exactly; s(1-s) would lose ~1e-3 relative at z = 30.
        want = np.exp(-z) / (1 + np.exp(-z)) ** 2
        got = fnann.sigmoid.backward(jnp.asarray(z), jnp.ones(61))
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_softmax_exact_at_extremes_and_rows_sum_to_one():
    z = jnp.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]])
    s = fnann.softmax.fn(z)
    np.testing.assert_array_equal(s[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(s[1], [1 / 3] * 3, rtol=1e-6)


@given(seed=st.integers(0, 2**31 - 1), shift=st.floats(-50, 50))
def test_softmax_shift_invariant_and_matches_numpy(seed, shift):
    with jax.enable_x64(True):
        z = np.asarray(jax.random.normal(jax.random.key(seed), (3, 5), jnp.float64)) * 5
        e = np.exp(z - z.max(axis=1, keepdims=True))
        want = e / e.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(fnann.softmax.fn(jnp.asarray(z)), want, rtol=1e-13)
        np.testing.assert_allclose(fnann.softmax.fn(jnp.asarray(z + shift)), want, rtol=1e-11)
        np.testing.assert_allclose(np.sum(want, axis=1), 1.0, rtol=1e-14)


def test_softmax_backward_is_not_elementwise():
    z = jnp.array([[1.0, 2.0, 3.0]])
    da = jnp.array([[1.0, 0.0, 0.0]])
    s = fnann.softmax.fn(z)
    elementwise = da * s * (1 - s)
    assert not np.allclose(fnann.softmax.backward(z, da), elementwise)


def test_relu_kink_matches_autodiff():
    z = jnp.zeros((1, 3))
    assert float(jax.grad(lambda t: fnann.relu.fn(t).sum())(z).sum()) == 0.0
    np.testing.assert_array_equal(fnann.relu.backward(z, jnp.ones_like(z)), 0.0)


NUMPY = {"sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh, "relu": lambda v: np.where(v > 0, v, 0),
         "identity": lambda v: v, "leaky_relu": lambda v: np.where(v > 0, v, 0.01 * v),
         "elu": lambda v: np.where(v > 0, v, np.expm1(np.minimum(v, 0))), "softplus": lambda v: np.logaddexp(0, v),
         "silu": lambda v: v / (1 + np.exp(-v)), "leaky_relu(0.2)": lambda v: np.where(v > 0, v, 0.2 * v)}
DERIVATIVES = {"leaky_relu": lambda v: np.where(v > 0, 1, 0.01), "elu": lambda v: np.where(v > 0, 1, np.exp(v)),
               "softplus": lambda v: 1 / (1 + np.exp(-v)),
               "silu": lambda v: 1 / (1 + np.exp(-v)) + v * np.exp(-v) / (1 + np.exp(-v)) ** 2}


@pytest.mark.parametrize("name", NUMPY)
def test_elementwise_forward_matches_numpy(name):
    z = np.linspace(-5, 5, 21).reshape(3, 7).astype(np.float32)
    np.testing.assert_allclose(get_activation(name).fn(jnp.asarray(z)), NUMPY[name](z), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", DERIVATIVES)
def test_the_new_derivatives_match_their_numpy_transcription_in_float64(name):
    z = np.concatenate([np.linspace(-30, 30, 61), [-1e-9, 0.0, 1e-9]])[None]
    with jax.enable_x64(True):
        got = np.asarray(ACTIVATIONS[name].backward(jnp.asarray(z), jnp.ones(z.shape)))
    np.testing.assert_allclose(got, DERIVATIVES[name](z), rtol=1e-13, atol=2e-16)  # elu: e^z as ELU(z) + 1


def test_leaky_relu_is_a_family_found_by_its_slope():
    a = get_activation("leaky_relu(0.2)")
    assert a is fnann.leaky_relu_with(0.2) and a.name == "leaky_relu(0.2)" and ACTIVATIONS["leaky_relu(0.2)"] is a
    assert get_activation("leaky_relu(0.01)") is fnann.leaky_relu and fnann.leaky_relu.name == "leaky_relu"
    assert "leaky_relu(0.2)" not in list(ACTIVATIONS)  # listed by its default only
    assert fnann.MLP([2, 3, 2], hidden="leaky_relu(0.2)") == fnann.MLP([2, 3, 2], hidden=fnann.leaky_relu_with(0.2))
    assert fnann.activations.is_built_in(a)
    for bad, message in (("leaky_relu(1.5)", r"slope must be a finite number in \[0, 1\)"),
                         ("leaky_relu(nan)", "slope must be"), ("leaky_relu(x)", "must be a number; got 'x'")):
        with pytest.raises(ValueError, match=message):
            get_activation(bad, argname="hidden")
    with pytest.raises(TypeError, match="slope must be a real number"):
        fnann.leaky_relu_with("0.2")
    with pytest.raises(ValueError, match="built-in"):
        fnann.activations.unregister_activation("leaky_relu(0.2)")


@pytest.mark.parametrize("name, variance", [("leaky_relu", lambda n_in, n_out: 2 / (1.0001 * n_in)),
                                            ("leaky_relu(0.5)", lambda n_in, n_out: 2 / (1.25 * n_in)),
                                            ("elu", lambda n_in, n_out: 2 / n_in),
                                            ("softplus", lambda n_in, n_out: 2 / n_in),
                                            ("silu", lambda n_in, n_out: 2 / n_in)])
def test_the_new_activations_take_he_s_initialization(name, variance):
    assert fnann.activations.init_variance(get_activation(name), 50, 20) == pytest.approx(variance(50, 20), rel=1e-15)


def test_lookup_by_name_and_errors():
    assert get_activation("ReLU") is fnann.relu
    assert get_activation(fnann.tanh) is fnann.tanh
    with pytest.raises(ValueError, match="unknown activation 'swish'.*'relu'"):
        get_activation("swish")
    with pytest.raises(TypeError, match="activation"):
        get_activation(3)


def test_custom_elementwise_activation_backward():
    softplus = fnann.elementwise("softplus", lambda z: jnp.logaddexp(0.0, z), jax.nn.sigmoid)
    z = jnp.linspace(-3, 3, 7)[None]
    np.testing.assert_allclose(softplus.backward(z, jnp.ones_like(z)),
                               vjp_reference(softplus, z, jnp.ones_like(z)), rtol=1e-6)
