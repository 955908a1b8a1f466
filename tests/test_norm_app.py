"""Layer and batch norm through the application: checkpoints (round trip, hostile headers),
``summary``, ``fnann explain``, diagnostics and ``fnann train --norm`` (in-process, one run)."""

from __future__ import annotations

import contextlib
import io
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from fnann.app import cli
from fnann.app.explain import _compiled_compute, explain
from fnann.diagnostics import diagnose
from fnann.summaries import summary
from test_explain import block


def _stats(net, shift=0.0):
    return tuple(fnann.RunningStats(s.mean + 0.25 + shift, s.var * 1.5) for s in fnann.init_stats(net))


def _bits(tree):
    return [(np.asarray(a).dtype, np.asarray(a).tobytes()) for a in jax.tree.leaves(tree)]


# --- checkpoints -----------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["layer", "batch", [None, fnann.BatchNorm(0.2, 1e-3)], ["layer", "batch"]])
def test_a_checkpoint_round_trips_bit_exactly(tmp_path, norm):
    net = fnann.MLP([3, 5, 4, 2], hidden="tanh", norm=norm)
    params = fnann.init(jax.random.key(0), net)
    opt = fnann.adam(1e-2)
    grads = jax.tree.map(jnp.ones_like, params)
    opt_state = opt.update(grads, opt.init(params), params)[1]  # moments that are not zeros
    stats = _stats(net) if net.has_batch_norm else None
    path = fnann.save(tmp_path / "c.npz", net, params, opt_state, stats=stats)
    ck = fnann.load(path, net=net, opt=opt)
    assert ck.net == net and ck.net.norms == net.norms
    assert [type(l) for l in ck.params] == [type(l) for l in params]
    assert _bits(ck.params) == _bits(params) and _bits(ck.opt_state) == _bits(opt_state)
    assert _bits(ck.stats) == _bits(stats or ())
    assert all(type(s) is fnann.RunningStats for s in ck.stats)


def test_the_plain_mlps_header_is_unchanged(tmp_path):
    net = fnann.MLP([3, 4, 2])
    fnann.save(tmp_path / "c.npz", net, fnann.init(jax.random.key(0), net))
    header = fnann.checkpoint.read_header(tmp_path / "c.npz")
    assert header["net"] == {"sizes": [3, 4, 2], "hidden": "relu", "output": "softmax"}
    assert set(header) == {"format", "version", "net", "params", "opt_state", "key", "epoch", "step",
                           "history", "meta"}
    assert fnann.load(tmp_path / "c.npz").stats == ()


def test_save_requires_the_stats_of_batch_norm_and_refuses_them_elsewhere(tmp_path):
    bn, plain = fnann.MLP([3, 4, 2], norm="batch"), fnann.MLP([3, 4, 2], norm="layer")
    with pytest.raises(ValueError, match="stats.*running statistics"):
        fnann.save(tmp_path / "a.npz", bn, fnann.init(jax.random.key(0), bn))
    with pytest.raises(ValueError, match="stats.*no batch norm"):
        fnann.save(tmp_path / "b.npz", plain, fnann.init(jax.random.key(0), plain), stats=_stats(bn))
    with pytest.raises(ValueError, match="stats"):
        fnann.save(tmp_path / "c.npz", bn, fnann.init(jax.random.key(0), bn),
                   stats=(fnann.RunningStats(jnp.zeros(3), jnp.ones(3)),))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A batch-norm net's checkpoint: ``(header, arrays)`` to tamper with."""
    net = fnann.MLP([3, 4, 4, 2], norm=["batch", "layer"])
    path = tmp_path_factory.mktemp("ck") / "c.npz"
    fnann.save(path, net, fnann.init(jax.random.key(0), net), stats=_stats(net))
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(arrays.pop("header").tobytes()), arrays


def _tampered(tmp_path, saved, edit):
    header, arrays = json.loads(json.dumps(saved[0])), dict(saved[1])
    edit(header, arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    return path


def _set(*keys, value):
    def edit(header, arrays):
        node = header
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return edit


def _stats_array(field: int, value):
    def edit(header, arrays):
        name = header["stats"]["tuple"][0]["fields"][field]["array"]
        arrays[name] = np.asarray(value, arrays[name].dtype)
    return edit


def _drop_norm(header, arrays):
    del header["net"]["norm"]
    del header["stats"]


HOSTILE = {
    "unknown norm name": (_set("net", "norm", 0, "name", value="group"), r"net\.norm\[0\]: .*name one of"),
    "negative eps": (_set("net", "norm", 1, "eps", value=-1e-5), r"net\.norm\[1\]: .*eps"),
    "eps a bool": (_set("net", "norm", 1, "eps", value=True), r"net\.norm\[1\]\.eps: must be a number"),
    "momentum above 1": (_set("net", "norm", 0, "momentum", value=1.5), r"net\.norm\[0\]: .*momentum"),
    "layer norm with a momentum": (_set("net", "norm", 1, "momentum", value=0.1), r"net\.norm\[1\]: .*exactly"),
    "wrong length": (_set("net", "norm", value=[None]), r"net\.norm: has 1 entries .* 2 hidden"),
    "norm not a list": (_set("net", "norm", value="batch"), r"net\.norm: must be a list"),
    "no stats": (lambda h, a: h.pop("stats"), r"stats: missing .*batch norm"),
    "stats of the wrong shape": (_stats_array(0, np.zeros(3)), r"stats: .*shape \(3,\).*\(4,\)"),
    "a negative variance": (_stats_array(1, [1.0, -1.0, 1.0, 1.0]), r"stats: .*negative variance"),
    "a NaN mean": (_stats_array(0, [0.0, np.nan, 0.0, 0.0]), r"stats: .*NaN"),
    "Normed where Dense is expected": (_drop_norm, r"params\[0\]: must be a Dense .*got Normed"),
    "a Normed layer the net says is plain": (_set("net", "norm", 0, value=None), r"params\[0\]: must be a Dense"),
    "stats not RunningStats": (_set("stats", value={"tuple": []}), r"stats: .*one RunningStats.*got 0"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_checkpoint_is_one_clear_error(tmp_path, saved, case):
    edit, message = HOSTILE[case]
    with pytest.raises(ValueError, match=message):
        fnann.load(_tampered(tmp_path, saved, edit))


def test_stats_in_the_header_of_a_net_without_batch_norm_are_refused(tmp_path, saved):
    def edit(header, arrays):
        header["net"]["norm"][0] = {"name": "layer", "eps": 1e-5}
    with pytest.raises(ValueError, match="stats: .*no batch norm"):
        fnann.load(_tampered(tmp_path, saved, edit))


# --- summary, diagnostics --------------------------------------------------------------


def test_summary_counts_gamma_and_beta_and_the_norms_flops():
    s = summary(fnann.MLP([4, 8, 6, 3], norm=["batch", "layer"]))
    # layer 1: W 8x4 + γ, β 8 each; Z = W a: 2·4·8, batch norm at evaluation 4·8
    # layer 2: W 6x8 + γ, β 6 each; 2·8·6, layer norm 7·6;  layer 3: dense, 6·3 + 3; 2·6·3 + 3
    assert [L.params for L in s.layers] == [32 + 16, 48 + 12, 18 + 3]
    assert [L.flops for L in s.layers] == [64 + 32, 96 + 42, 36 + 3]
    assert s.stats_size == 2 * 8 and s.nbytes == 129 * 4
    text = str(s)
    assert "γ, β (8,)" in text and "batch norm + relu" in text and "layer norm + relu" in text
    assert "running statistics (batch norm, not trained): 16 values (64 B in float32)" in text
    plain = summary(fnann.MLP([4, 8, 3]))
    assert plain.params == 67 and plain.stats_size == 0 and "running" not in str(plain)


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_diagnostics_work_for_normalized_layers(norm):
    net = fnann.MLP([4, 6, 5, 3], hidden="tanh", norm=norm)
    params = fnann.init(jax.random.key(0), net)
    x, y = jax.random.normal(jax.random.key(1), (16, 4)), jnp.arange(16) % 3
    d = diagnose(net, params, x, y, "cross_entropy", fnann.sgd(0.1))
    assert all(np.all(np.isfinite(np.asarray(f))) for f in (d.W_norm, d.dW_norm, d.delta_norm, d.update_ratio))
    if net.has_batch_norm:
        with pytest.raises(ValueError, match="2 rows or more"):
            diagnose(net, params, x[:1], y[:1], "cross_entropy")


# --- explain ---------------------------------------------------------------------------


def test_explain_shows_the_layer_norm_and_its_numbers_equal_jax_grad():
    net = fnann.MLP([2, 3, 3, 2], hidden="tanh", norm=["layer", None])
    with jax.enable_x64(True):
        params = fnann.init(jax.random.key(0), net, jnp.float64)
        x, y = jnp.asarray([[0.5, -1.0]]), jnp.asarray([1])
        opt = fnann.sgd(0.1)
        text = explain(net, "cross_entropy", params, x[0], 1, opt)
        n = jax.device_get(_compiled_compute(net, fnann.get_loss("cross_entropy"), opt, True)(params, x, y, None))
    for line in ("Z^(1) = W^(1) A^(0)\n", "μ^(1) = mean of Z^(1) over its units", "σ²^(1) = mean of",
                 "Ẑ^(1) = (Z^(1) - μ^(1)) / √(σ²^(1) + ε),  ε = 1e-05", "Y^(1) = γ^(1) ⊙ Ẑ^(1) + β^(1)",
                 "A^(1) = tanh(Y^(1))", "σ'(Y^(1))", "∂L/∂Y^(1) = ", "∂L/∂Ẑ^(1) = γ^(1) ⊙ ∂L/∂Y^(1)",
                 "δ^(1) = (1/√(σ²^(1) + ε)) (∂L/∂Ẑ^(1) - mean(∂L/∂Ẑ^(1)) - Ẑ^(1) ⊙ mean(∂L/∂Ẑ^(1) ⊙ Ẑ^(1)))",
                 "jax.grad: ∂L/∂γ^(1)", "jax.grad: ∂L/∂β^(1)", "Z^(2) = W^(2) A^(1) + b^(2)", "γ^(1) ← γ^(1)"):
        assert line in text, line
    assert "b^(1)" not in text.replace("no b^(1)", "")
    np.testing.assert_allclose(n["deltas"][0], n["ref_deltas"][0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(n["grads"][0].gamma, n["ref_grads"][0].gamma, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(n["grads"][0].beta, n["ref_grads"][0].beta, rtol=1e-12, atol=1e-15)
    # ∂L/∂Y printed and the hand-derived δ agree: norm_backward of the printed ∂L/∂Y is the printed δ
    with jax.enable_x64(True):
        t = jax.tree.map(lambda a: jnp.asarray(a)[None], n["N"][0])
        dz, dgamma, _ = fnann.norms.norm_backward(net.norms[0], t, params[0].gamma, jnp.asarray(n["dY"][0])[None])
    np.testing.assert_allclose(dz[0], n["deltas"][0], rtol=1e-12, atol=1e-15)


def test_explain_follows_a_batch_through_batch_norm_and_its_numbers_equal_jax_grad():
    """Batch norm then layer norm, a batch of m = 4: the equations, the printed δ, ∂L/∂γ, ∂L/∂β
    beside jax.grad's, the δ rebuilt from the printed Ẑ, ∂L/∂Y and σ²_B, the running statistics."""
    net = fnann.MLP([2, 3, 3, 2], hidden="tanh", norm=["batch", "layer"])
    m, opt, loss = 4, fnann.sgd(0.1), fnann.get_loss("cross_entropy")
    with jax.enable_x64(True):
        params = fnann.init(jax.random.key(0), net, jnp.float64)
        x = jnp.asarray([[0.5, -1.0], [1.0, 0.2], [-0.3, 0.7], [0.1, 0.1]])
        y = jnp.asarray([1, 0, 1, 0])
        stats = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), _stats(net))  # as explain computes them
        text = explain(net, loss, params, x, y, opt, stats=stats)
        n = jax.device_get(_compiled_compute(net, loss, opt, True)(params, x, y, None, stats))
    assert text.startswith("fnann explain: ") and f"a batch of m = {m} examples (L: the batch mean)" in text
    for line in ("X = A^(0)   (a column per example)", "Z^(1) = W^(1) A^(0)\n",
                 "μ_B^(1) = mean of Z^(1) over the batch", "σ²_B^(1) = mean of (Z^(1) - μ_B^(1))² over the batch",
                 "Ẑ^(1) = (Z^(1) - μ_B^(1)) / √(σ²_B^(1) + ε)", "Y^(1) = γ^(1) ⊙ Ẑ^(1) + β^(1)", "A^(1) = tanh(Y^(1))",
                 "μ^(2) = mean of Z^(2) over its units", "L = (1/m) Σ_i L_i   (the mean over the batch, m = 4)",
                 "δ^(3) = ∂L/∂Z^(3) = (A^(3) - y) / m", "∂L/∂Ẑ^(1) = γ^(1) ⊙ ∂L/∂Y^(1)",
                 "δ^(1) = (1/√(σ²_B^(1) + ε)) (∂L/∂Ẑ^(1) - mean_batch(∂L/∂Ẑ^(1))"
                 " - Ẑ^(1) ⊙ mean_batch(∂L/∂Ẑ^(1) ⊙ Ẑ^(1)))",
                 "∂L/∂γ^(1) = Σ_batch ∂L/∂Y^(1) ⊙ Ẑ^(1)", "∂L/∂β^(1) = Σ_batch ∂L/∂Y^(1)", "∂L/∂b^(3) = Σ_batch δ^(3)",
                 "μ_run^(1) ← (1 - 0.1) μ_run^(1) + 0.1 μ_B^(1)",
                 "σ²_run^(1) ← (1 - 0.1) σ²_run^(1) + 0.1 · 4/3 · σ²_B^(1)"):
        assert line in text, line
    for equation in ("δ^(1) = ∂L/∂Z^(1)", "δ^(2) = ∂L/∂Z^(2)", "∂L/∂W^(1) =", "∂L/∂γ^(1) =", "∂L/∂β^(1) ="):
        printed, autodiff = block(text, equation)
        assert printed.size and printed.shape == autodiff.shape, equation
        np.testing.assert_array_equal(printed, autodiff, err_msg=equation)  # to every printed digit
    np.testing.assert_allclose(block(text, "Ẑ^(1) =")[0], n["N"][0].Z_hat, atol=5e-5)  # columns: examples
    assert n["N"][0].Z_hat.shape == (3, m)
    for l in (0, 1):  # the hand-derived numbers against jax.grad's, unrounded
        np.testing.assert_allclose(n["deltas"][l], n["ref_deltas"][l], rtol=1e-12, atol=1e-15)
        for f in ("W", "gamma", "beta"):
            np.testing.assert_allclose(getattr(n["grads"][l], f), getattr(n["ref_grads"][l], f), rtol=1e-12, atol=1e-15)
    # the printed equations from the printed quantities (columns: the batch's examples)
    t, dY, gamma = n["N"][0], n["dY"][0], np.asarray(params[0].gamma)[:, None]
    dz_hat = gamma * dY
    delta = t.inv_sigma * (dz_hat - dz_hat.mean(1, keepdims=True) - t.Z_hat * (dz_hat * t.Z_hat).mean(1, keepdims=True))
    np.testing.assert_allclose(delta, n["ref_deltas"][0], rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose((dY * t.Z_hat).sum(1), n["ref_grads"][0].gamma, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(dY.sum(1), n["ref_grads"][0].beta, rtol=1e-10, atol=1e-15)
    old, new = n["stats"][0], n["new_stats"][0]
    np.testing.assert_allclose(new.mean, 0.9 * old.mean + 0.1 * t.mean[:, 0], rtol=1e-12)
    np.testing.assert_allclose(new.var, 0.9 * old.var + 0.1 * m / (m - 1) * t.var[:, 0], rtol=1e-12)


def test_explain_of_batch_norm_needs_a_batch(capsys):
    net = fnann.MLP([2, 3, 2], norm="batch")
    with pytest.raises(ValueError, match=r"x must be a batch of m >= 2 examples.*got shape \(1, 2\)"):
        explain(net, "cross_entropy", fnann.init(jax.random.key(0), net), [0.5, -1.0], 1, fnann.sgd(0.1))
    assert cli.main(["explain", "--no-cache", "--norm", "batch", "--batch", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fnann explain: error: --batch 1: batch norm") and len(err.strip().splitlines()) == 1
    assert cli.main(["explain", "--no-cache", "--batch", "3"]) == 2  # a batch only for a batch-norm net
    assert "--norm batch" in capsys.readouterr().err


def test_fnann_explain_norm_batch_draws_a_batch_of_four(capsys):
    assert cli.main(["explain", "--no-cache", "--norm", "batch"]) == 0
    out = capsys.readouterr().out
    assert "a batch of m = 4 examples" in out and "6. The running statistics" in out
    x, y = block(out, "X = A^(0)")
    assert x.shape == (2, 4) and y.shape == (2, 4)  # a column per example; y one-hot
    assert float(out.split("over every δ and gradient: ")[1].split()[0]) < 1e-15


# --- fnann train --norm (in-process: one run, one resume) ------------------------------


@pytest.fixture(scope="module")
def norm_run(tmp_path_factory):
    """One tiny ``fnann train --norm batch`` run: ``(folder, norm, printed)``."""
    out = tmp_path_factory.mktemp("run") / "r"
    norm = "batch"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = cli.main(["train", "--data", "xor", "--epochs", "1", "--hidden-sizes", "8", "--norm", norm,
                           "--out", str(out), "--no-plot", "--no-progress", "--no-gradcheck", "--no-cache"])
    assert status == 0, printed.getvalue()
    return out, norm, printed.getvalue()


def test_train_norm_is_recorded_and_checkpointed(norm_run):
    out, norm, printed = norm_run
    ck = fnann.load(out / "checkpoint.npz")
    assert ck.net.norm_name == norm and ck.meta["run"]["norm"] == norm
    assert f", {norm} norm, loss" in printed
    assert len(ck.stats) == 1 and ck.stats[0].mean.shape == (8,)
    assert not np.array_equal(np.asarray(ck.stats[0].mean), np.zeros(8))  # trained, not init_stats


def test_resume_with_another_norm_is_refused(norm_run, capsys):
    out, norm, _ = norm_run
    other = "layer"
    status = cli.main(["train", "--out", str(out), "--resume", "--norm", other, "--no-plot", "--no-cache"])
    err = capsys.readouterr().err
    assert status == 2 and f"--norm {other} (recorded: {norm})" in err and len(err.strip().splitlines()) == 1


def test_evaluate_reads_the_run_back(norm_run, capsys):
    out, _, printed = norm_run
    assert cli.main(["evaluate", str(out / "checkpoint.npz"), "--no-cache"]) == 0
    assert capsys.readouterr().out.split("  loss")[0] in printed  # the test accuracy the run reported
