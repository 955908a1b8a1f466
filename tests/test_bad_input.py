"""Bad input over the whole public API, as a property.

Each example calls one public function with up to two of its arguments replaced by a drawn
malformation (wrong shapes, dtypes, non-finite values, wrong types; some drawn values are
in fact valid). The property: a call either fails with ValueError or TypeError raised in
fnann's own code (not inside JAX or numpy) whose message names one of the replaced
arguments, or it succeeds and everything it returns is finite. An unaltered call succeeds.
"""

import math
import os
import re
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import fnann

FNANN_DIR = os.path.dirname(os.path.abspath(fnann.__file__))
NET = fnann.MLP([3, 4, 2])
PARAMS = fnann.init(jax.random.key(0), NET)
X = np.asarray(jax.random.normal(jax.random.key(1), (5, 3)))
Y = np.array([0, 1, 1, 0, 1])
VALID = dict(net=NET, params=PARAMS, x=X, y=Y, loss="cross_entropy", key=jax.random.key(0), chunk_size=4,
             batch_size=2, epochs=1, dtype=jnp.float32, opt_state=None, callback=None, patience=None,
             min_delta=0.0, precision=None, history={"loss": [0.5]}, meta={"a": 1}, epoch=0, step=0)
NAN = st.sampled_from([math.nan, math.inf, -math.inf])


def with_value(a, value, i, j=None):
    a = np.array(a, dtype=np.float32)
    a[(i, j) if j is not None else i] = value
    return a


def strings(shape):
    return np.full(shape, "a")


BAD = {
    "x": st.one_of(
        st.lists(st.sampled_from([0, 1, 3, 5]), max_size=3).map(lambda s: np.ones(s, np.float32)),
        st.sampled_from([np.float16, jnp.bfloat16, np.int32, np.bool_, np.complex64]).map(X.astype),
        st.tuples(st.integers(0, 4), st.integers(0, 2), NAN).map(lambda t: with_value(X, t[2], t[0], t[1])),
        st.sampled_from([None, 3, 2.5, "abc", {}, [], [[1.0, 2.0, 3.0], [1.0]], strings((5, 3))])),
    "y": st.one_of(
        st.integers(0, 7).map(lambda n: np.arange(n) % 2),
        st.sampled_from([-1, 2, 99]).map(lambda v: np.r_[Y[:4], v]),
        st.tuples(st.integers(0, 4), st.integers(0, 1), NAN).map(
            lambda t: with_value(np.eye(2)[Y], t[2], t[0], t[1])),
        st.sampled_from([np.eye(3)[Y % 3], np.ones((5, 2, 1)), Y.astype(np.float32), np.eye(2)[Y] * -1,
                         None, "abc", strings(5), [[1, 0], [0]] * 3])),
    "params": st.sampled_from([
        PARAMS[:1], PARAMS + PARAMS[-1:], (PARAMS[0]._replace(W=PARAMS[0].W.T), PARAMS[1]),
        (PARAMS[0]._replace(W=PARAMS[0].W.at[1, 2].set(jnp.nan)), PARAMS[1]),
        (PARAMS[0], PARAMS[1]._replace(b=jnp.array([1.0, jnp.inf]))),
        (PARAMS[0]._replace(W=PARAMS[0].W.astype(jnp.int32)), PARAMS[1]),
        (PARAMS[0]._replace(b=[0.0] * 4), PARAMS[1]),
        jax.tree.map(lambda a: a.astype(jnp.float16), PARAMS),
        {"W": 1}, None, [dict(W=1, b=2)] * 2, "params"]),
    "net": st.sampled_from([[3, 4, 2], None, "mlp", (3, 4, 2)]),
    "loss": st.sampled_from(["hinge_squared", 3, None, "bce", "binary_cross_entropy", fnann.mse.fn]),
    "key": st.sampled_from([None, 0, 1.5, "abc", jax.random.split(jax.random.key(0)),
                            jax.random.split(jax.random.PRNGKey(0)), np.zeros(3, np.float32),
                            jax.random.PRNGKey(3)]),
    "chunk_size": st.sampled_from([0, -1, 2.5, None, "8", True, 1, 10**6]),
    "batch_size": st.sampled_from([0, -1, 2.5, "32", True, None, 1]),
    "epochs": st.sampled_from([-1, 1.5, None, True, "1", 0]),
    "dtype": st.sampled_from(["foo", jnp.int32, 3, "float16", jnp.bfloat16, object]),
    "opt_state": st.sampled_from([fnann.sgd(0.1).init(PARAMS), "x", {"a": 1},
                                  fnann.adam(0.1).init(fnann.init(jax.random.key(0), fnann.MLP([3, 5, 2])))]),
    "callback": st.sampled_from([5, "f", lambda epoch, logs: None, lambda epoch, logs, state: False]),
    "patience": st.sampled_from([True, -1, 1.5, "2", 2]),
    "min_delta": st.sampled_from([math.nan, -1.0, math.inf, "0", 0.1]),
    "precision": st.sampled_from(["bogus", 3, ("highest",), "highest", jax.lax.Precision.HIGH]),
    "history": st.sampled_from(["x", {"loss": "x"}, {"loss": [object()]}, {1: [1.0]}, 5,
                                {"loss": [np.float32(1.0)]}]),
    "meta": st.sampled_from([{1, 2}, {"a": {1}}, {"a": object()}, 3, {1: "x"}, {"a": np.arange(2)}]),
    "epoch": st.sampled_from(["x", -1, 1.5, True, None, 3]),
    "step": st.sampled_from(["x", -1, 1.5, None, 7]),
}


def save_and_load(a):
    with tempfile.TemporaryDirectory() as folder:
        path = fnann.save(os.path.join(folder, "c.npz"), a["net"], a["params"], a["opt_state"], epoch=a["epoch"],
                          step=a["step"], key=a["key"], history=a["history"], meta=a["meta"])
        return fnann.load(path).params


FUNCTIONS = {
    "forward": (("net", "params", "x", "precision"),
                lambda a: fnann.forward(a["net"], a["params"], a["x"], precision=a["precision"])),
    "predict": (("net", "params", "x", "chunk_size"),
                lambda a: fnann.predict(a["net"], a["params"], a["x"], chunk_size=a["chunk_size"])),
    "evaluate": (("net", "params", "x", "y", "loss", "chunk_size"),
                 lambda a: fnann.evaluate(a["net"], a["params"], a["x"], a["y"], a["loss"], a["chunk_size"])),
    "accuracy": (("net", "params", "x", "y", "chunk_size"),
                 lambda a: fnann.accuracy(a["net"], a["params"], a["x"], a["y"], a["chunk_size"])),
    "loss_and_grad": (("net", "loss", "params", "x", "y", "precision"),
                      lambda a: fnann.loss_and_grad(a["net"], a["loss"], precision=a["precision"])(
                          a["params"], a["x"], a["y"])),
    "check_grads": (("net", "loss", "params", "x", "y"),
                    lambda a: fnann.check_grads(a["net"], a["loss"], a["params"], a["x"], a["y"]).loss_value),
    "fit": (("net", "loss", "params", "x", "y", "key", "epochs", "batch_size", "opt_state", "callback",
             "patience", "min_delta"),
            lambda a: fnann.fit(a["net"], a["loss"], fnann.adam(0.01), a["params"], a["x"], a["y"], key=a["key"],
                                epochs=a["epochs"], batch_size=a["batch_size"], opt_state=a["opt_state"],
                                callback=a["callback"], patience=a["patience"], min_delta=a["min_delta"],
                                monitor="loss")),
    "init": (("key", "net", "dtype"), lambda a: fnann.init(a["key"], a["net"], a["dtype"])),
    "save": (("net", "params", "opt_state", "epoch", "step", "key", "history", "meta"), save_and_load),
}


def raised_in_fnann(error: BaseException) -> bool:
    tb = error.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(FNANN_DIR)


def all_finite(result) -> bool:
    leaves = [leaf for leaf in jax.tree.leaves(result) if not isinstance(leaf, (str, bool))]
    return all(bool(np.all(np.isfinite(np.asarray(leaf, np.float64)))) for leaf in leaves)


@settings(max_examples=50)
@given(data=st.data())
def test_every_failure_is_fnanns_and_names_the_argument_and_every_success_is_finite(data):
    name = data.draw(st.sampled_from(sorted(FUNCTIONS)), label="function")
    names, call = FUNCTIONS[name]
    altered = data.draw(st.sets(st.sampled_from(names), max_size=2), label="altered")
    args = dict(VALID)
    for arg in sorted(altered):
        args[arg] = data.draw(BAD[arg], label=arg)
    try:
        result = call(args)
    except (ValueError, TypeError) as e:
        assert altered, f"{name} failed on valid input: {e!r}"
        assert raised_in_fnann(e), f"{name}: {type(e).__name__} raised outside fnann: {e}"
        assert any(re.search(rf"(?<![\w.]){re.escape(a)}(?!\w)", str(e)) for a in altered), \
            f"{name}: the message does not name {sorted(altered)}: {e}"
    else:
        assert all_finite(result), f"{name} returned non-finite values"
