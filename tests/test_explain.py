"""``fnann explain``: a golden test of the default output, its numbers against a numpy
transcription of the textbook and against jax.grad, other configurations and bad input."""

import pathlib
import re

import jax
import numpy as np
import pytest

import fnann
from fnann.app import cli
from fnann.app.explain import _compiled_draw, explain

GOLDEN = pathlib.Path(__file__).parent / "golden" / "explain_default.txt"
DIFF = re.compile(r"(jax.grad\| over every δ and gradient: )\S+")  # last-bit rounding: not golden


def run(argv, capsys):
    try:
        status = cli.main(argv)
    except SystemExit as e:
        status = e.code
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.fixture(scope="module")
def default_output():
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert cli.main(["explain", "--no-cache"]) == 0
    return buffer.getvalue()


def block(text, equation):
    """The matrices printed under the line that starts with ``equation``: (left, right or None)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(equation))
    left, right = [], []
    for line in lines[start + 1:]:
        if not line.startswith("  ["):
            break
        parts = [p for p in line.split("]") if "[" in p]
        left.append([float(v) for v in parts[0].split("[")[1].split()])
        if len(parts) > 1:
            right.append([float(v) for v in parts[1].split("[")[1].split()])
    return np.array(left).squeeze(), (np.array(right).squeeze() if right else None)


def test_default_output_is_golden(default_output):
    want = GOLDEN.read_text(encoding="utf-8")
    assert DIFF.sub(r"\1*", default_output) == DIFF.sub(r"\1*", want), (
        "fnann explain's default output changed; if that is intended, regenerate the golden file: "
        "python -m fnann explain --no-cache > tests/golden/explain_default.txt")


def numpy_textbook(W1, b1, W2, b2, x, k, lr):
    """The 2-3-2 sigmoid/softmax network, cross-entropy, one SGD step, as the textbook writes it."""
    z1 = W1 @ x + b1
    a1 = 1 / (1 + np.exp(-z1))
    z2 = W2 @ a1 + b2
    a2 = np.exp(z2) / np.exp(z2).sum()
    y = np.eye(2)[k]
    d2 = a2 - y
    d1 = (W2.T @ d2) * a1 * (1 - a1)
    dW2, dW1 = np.outer(d2, a1), np.outer(d1, x)
    return dict(z1=z1, a1=a1, z2=z2, a2=a2, loss=-np.log(a2[k]), d2=d2, d1=d1, dW2=dW2, dW1=dW1,
                W1_new=W1 - lr * dW1, W2_new=W2 - lr * dW2, b1_new=b1 - lr * d1)


def test_printed_numbers_match_numpy_and_jax_grad(default_output):
    text = default_output
    W1, b1 = block(text, "W^(1)   shape")
    W2, b2 = block(text, "W^(2)   shape")
    x, y = block(text, "x = A^(0)")
    with jax.enable_x64(True):  # the unrounded parameters the command printed (compiled already)
        params = jax.device_get(_compiled_draw(fnann.MLP([2, 3, 2], "sigmoid"), "cross_entropy")(0)[0])
    exact = [np.asarray(a) for p in params for a in p]
    for printed, value in zip([W1, b1, W2, b2], exact):
        np.testing.assert_allclose(printed, value, atol=5e-5)
    ref = numpy_textbook(*exact, x, int(np.argmax(y)), lr=0.1)
    tol = dict(atol=5.1e-5, rtol=0)
    for equation, key in [("Z^(1) =", "z1"), ("A^(1) =", "a1"), ("Z^(2) =", "z2"), ("A^(2) =", "a2")]:
        np.testing.assert_allclose(block(text, equation)[0], ref[key], **tol, err_msg=equation)
    loss = float(re.search(r"L = -Σ_k y_k log ŷ_k = (\S+)", text).group(1))
    assert loss == pytest.approx(ref["loss"], abs=5e-7)
    for equation, key in [("δ^(2) =", "d2"), ("δ^(1) =", "d1"), ("∂L/∂W^(2) =", "dW2"),
                          ("∂L/∂W^(1) =", "dW1"),
                          ("∂L/∂b^(1) =", "d1")]:
        manual, autodiff = block(text, equation)
        np.testing.assert_allclose(manual, ref[key], **tol, err_msg=equation)
        np.testing.assert_array_equal(manual, autodiff)  # jax.grad's column, to every printed digit
    np.testing.assert_allclose(block(text, "W^(1) ← W^(1) + ΔW^(1)")[0], ref["W1_new"], **tol)
    np.testing.assert_allclose(block(text, "W^(2) ← W^(2) + ΔW^(2)")[0], ref["W2_new"], **tol)
    np.testing.assert_allclose(block(text, "b^(1) ← b^(1) + Δb^(1)")[0], ref["b1_new"], **tol)
    assert float(DIFF.search(text).group(0).split(": ")[1]) < 1e-15


def test_adam_step_textbook_chain_and_markdown():
    net = fnann.MLP([2, 2, 2], hidden="tanh", output="softmax")
    W1, W2 = np.array([[0.5, -0.3], [0.2, 0.8]]), np.array([[1.0, -1.0], [0.4, 0.1]])
    params = (fnann.Dense(W1, np.array([0.1, -0.1])), fnann.Dense(W2, np.zeros(2)))
    text = explain(net, "cross_entropy", params, [1.0, 2.0], 1, fnann.adam(0.01), fused=False, fmt="markdown")
    assert text.startswith("# fnann explain") and "## 5. One step of adam" in text and "```text" in text
    assert "∂L/∂A^(2) = ∂L/∂ŷ" in text  # the textbook chain instead of the fused A - y
    g, ref = block(text, "∂L/∂W^(1) =")
    np.testing.assert_array_equal(g, ref)
    m, v = block(text, "m for W^(1) after the step")[0], block(text, "v for W^(1) after the step")[0]
    np.testing.assert_allclose(m, 0.1 * g, atol=5e-5 + 0.1 * 5e-5)  # m = (1 - b1) g; both rounded to 4 decimals
    np.testing.assert_allclose(v, 0.001 * g ** 2, rtol=1e-2)  # v = (1 - b2) g^2, printed as 1.234e-06
    new, delta = block(text, "W^(1) ← W^(1) + ΔW^(1)")
    np.testing.assert_allclose(delta, -0.01 * np.sign(g), rtol=1e-3)  # m̂/√v̂ = sign(g) at t = 1
    np.testing.assert_allclose(new, W1 - 0.01 * np.sign(g), atol=5e-5)


@pytest.mark.parametrize("argv,message", [
    (["--x=1,2,3"], "--x has 3 values but the network takes 2 inputs"),
    (["--y", "5"], "label"),
    (["--y", "0.5"], "a class label is an integer"),
    (["--y=0.2,0.3,0.5"], "--y has 3 values but the network has 2 outputs"),
    (["--x", "a,b"], "expected comma-separated numbers"),
    (["--sizes", "2"], "sizes needs at least two entries"),
    (["--hidden", "nonesuch"], "unknown activation 'nonesuch'"),
    (["--format", "latex"], "invalid choice"),
])
def test_bad_input_is_one_line(argv, message, capsys):
    status, out, err = run(["explain", "--no-cache", *argv], capsys)
    assert status == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_explain_takes_one_example():
    net = fnann.MLP([2, 3, 2])
    params = (fnann.Dense(np.ones((3, 2)), np.zeros(3)), fnann.Dense(np.ones((2, 3)), np.zeros(2)))
    with pytest.raises(ValueError, match="one example"):
        explain(net, "cross_entropy", params, np.ones((2, 2)), [0, 1], fnann.sgd(0.1))
    with pytest.raises(ValueError, match="fmt must be one of"):
        explain(net, "cross_entropy", params, [1.0, 2.0], 0, fnann.sgd(0.1), fmt="html")
    with pytest.raises(ValueError, match="NaN"):
        explain(net, "cross_entropy", params, [1.0, np.nan], 0, fnann.sgd(0.1))


def test_the_fused_delta_of_binary_cross_entropy_keeps_its_1_over_n():
    net = fnann.MLP([2, 3, 2], hidden="sigmoid", output="sigmoid")  # BCE = -(1/n) Σ_k ...: δ^(2) = (A - y) / n
    params = (fnann.Dense(np.full((3, 2), 0.5), np.zeros(3)), fnann.Dense(np.eye(2, 3), np.zeros(2)))
    text = explain(net, "binary_cross_entropy", params, [0.5, -1.0], [1.0, 0.0], fnann.sgd(0.1))
    line = next(i for i, t in enumerate(text.splitlines()) if t.startswith("δ^(2) = ∂L/∂Z^(2)"))
    assert "(A^(2) - y) / n" in text.splitlines()[line]
    low = tuple(fnann.Dense(np.float32(p.W), np.float32(p.b)) for p in params)
    y_hat = np.asarray(fnann.forward(net, low, np.array([[0.5, -1.0]], np.float32)))[0]
    printed = [float(t.split()[1]) for t in text.splitlines()[line + 1:line + 3]]
    np.testing.assert_allclose(printed, (y_hat - [1.0, 0.0]) / 2, atol=1e-4)


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["explain", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "usage: fnann explain" in out and "--optimizer" in out
