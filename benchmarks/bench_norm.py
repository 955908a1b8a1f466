"""Batch norm's and layer norm's training step, side by side in one run: fnann's manual
(hand-derived norm backward inside the delta recursion, running statistics carried) and
autodiff steps of a 784-512-512-10 net with a norm and dropout on both hidden layers, and a
hand-written ``jax.value_and_grad`` + Adam step of the same network (plain jax: W A, the
norm, relu, inverted dropout, softmax cross-entropy by logsumexp, the running statistics).

Every figure is the median of ``--repeats`` timed runs of ``--steps`` steps in one
``lax.scan`` (step i's key is ``fold_in(key, i)``, as in ``fit``), after a compile-and-warm-up
run, the variants timed round-robin. The compile run checks that the JAX variants do equal
work: their first step (the same params, batch and dropout masks) gives the same loss to 1e-5.
PyTorch eager on the CPU is timed beside them when torch is importable (else one line says so),
in a block of its own after theirs: torch's OpenMP threads keep spinning after each call, and
in the round-robin they slowed whichever JAX variant ran next by 3-5% (with
``OMP_WAIT_POLICY=PASSIVE`` the JAX figures were even again, torch's 1.6x slower).

Speed-up = a variant's time / fnann manual's time: above 1.0, fnann's manual step is faster.

    python benchmarks/bench_norm.py
    python benchmarks/bench_norm.py --quick        # smoke run: 2 steps, 3 repeats, batch norm (~10 s, mostly compiling)
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import fnann
from bench_dropout import scan_of
from bench_train import timed_side_by_side

SIZES, BATCH = (784, 512, 512, 10), 128
TOLERANCE = 1e-5


def carrying(step):
    """fnann's batch-norm step as ``(params, (opt_state, stats), x, y, key) -> (params,
    (opt_state, stats), loss)``, the shape ``bench_dropout.scan_of`` scans."""

    def stepped(params, state, x, y, key):
        opt_state, stats = state
        params, opt_state, value, stats = step(params, opt_state, x, y, key, stats=stats)
        return params, (opt_state, stats), value

    return stepped


def baseline_step(norm: str, p: float, momentum=0.1, norm_eps=1e-5, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """The same step with no fnann: value_and_grad of the normalized, dropped-out MLP and
    Adam, by hand. Params: ``[(W, gamma, beta), (W, gamma, beta), (W, b)]``; state:
    ``((t, m, v), running)``, ``running`` one ``(mean, var)`` per hidden layer (batch norm)
    or ``()``. Layer l's mask is Bernoulli(1 - p) from ``fold_in(key, l)``, fnann's draw."""
    axis = 0 if norm == "batch" else -1

    def loss(params, x, y, key):
        a, batch_stats = x, []
        for l, layer in enumerate(params[:-1], start=1):
            W, gamma, beta = layer
            z = a @ W.T
            mean = jnp.mean(z, axis=axis, keepdims=True)
            var = jnp.mean(jnp.square(z - mean), axis=axis, keepdims=True)
            a = jax.nn.relu(gamma * (z - mean) / jnp.sqrt(var + norm_eps) + beta)
            keep = jax.random.bernoulli(jax.random.fold_in(key, l), 1.0 - p, a.shape)
            a = jnp.where(keep, a / (1.0 - p), 0.0)
            batch_stats.append((mean[0], var[0]))
        W, b = params[-1]
        z = a @ W.T + b
        value = jnp.mean(jax.nn.logsumexp(z, axis=-1) - jnp.take_along_axis(z, y[:, None], -1)[:, 0])
        return value, batch_stats

    def step(params, state, x, y, key):
        (t, m, v), running = state
        (value, batch_stats), g = jax.value_and_grad(loss, has_aux=True)(params, x, y, key)
        if norm == "batch":
            n = x.shape[0]
            running = tuple(((1 - momentum) * rm + momentum * jax.lax.stop_gradient(bm),
                             (1 - momentum) * rv + momentum * n / (n - 1) * jax.lax.stop_gradient(bv))
                            for (rm, rv), (bm, bv) in zip(running, batch_stats))
        t = t + 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        params = jax.tree.map(lambda p, m, v: p - lr * (m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps),
                              params, m, v)
        return params, ((t, m, v), running), value

    return step


def variants(norm: str, p: float):
    """``{name: (step, params, state)}``: the three JAX steps of one normalized net, each
    ``(params, state, x, y, key) -> (params, state, loss)``, from the same initial weights."""
    net = fnann.MLP(SIZES, hidden="relu", output="softmax", norm=norm, dropout=p)
    opt = fnann.adam(1e-3)
    params = fnann.init(jax.random.key(0), net)
    stats = fnann.init_stats(net)
    base_params = [tuple(layer) for layer in params]
    base_running = tuple((s.mean, s.var) for s in stats)
    zeros = lambda: jax.tree.map(jnp.zeros_like, base_params)  # noqa: E731
    base_state = ((jnp.zeros((), jnp.int32), zeros(), zeros()), base_running)
    rows = {}
    for method in ("manual", "autodiff"):
        step = fnann.train_step(net, "cross_entropy", opt, method)
        if net.has_batch_norm:
            rows[f"fnann {method}"] = (carrying(step), params, (opt.init(params), stats))
        else:
            rows[f"fnann {method}"] = (step, params, opt.init(params))
    rows["hand-written value_and_grad"] = (baseline_step(norm, p), base_params, base_state)
    return net, rows


def check_same_work(norm: str, outputs: dict) -> str:
    """The compile-and-warm-up runs' outputs ``{name: ((params, state), losses)}``: step 0's
    loss (the same params, batch and masks) agrees to TOLERANCE across the variants, or this
    raises; the other steps' losses and batch norm's running statistics at the end are
    reported (they drift apart by rounding, which Adam's g / √v amplifies step after step;
    after one step the statistics agree to ~1e-7)."""
    ref_losses, ref_state = outputs["fnann manual"][1], outputs["fnann manual"][0][1]
    first = later = stats = 0.0
    for name, ((_, state), losses) in outputs.items():
        first = max(first, abs(float(losses[0]) - float(ref_losses[0])))
        later = max(later, float(jnp.max(jnp.abs(losses - ref_losses))))
        if norm == "batch":
            ours, theirs = jax.tree.leaves(state[1]), jax.tree.leaves(ref_state[1])
            stats = max(stats, *(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))) for a, b in zip(ours, theirs)))
        if not first <= TOLERANCE:
            raise AssertionError(f"{norm} norm: {name} computes other work than fnann manual: step 0's loss "
                                 f"{float(losses[0])!r} vs {float(ref_losses[0])!r}")
    text = (f"same work: step 0's loss (same params, batch and masks) {float(ref_losses[0]):.6f}, max |difference| "
            f"{first:.1e} (<= {TOLERANCE:g}); over all {len(ref_losses)} steps {later:.1e}")
    return text + (f"; running stats after them {stats:.1e} (relative)" if norm == "batch" else "")


def torch_rows(norm: str, p: float, xs, ys, steps: int):
    """PyTorch eager on the CPU, ``{name: fn}`` running ``steps`` steps, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    norm_layer = torch.nn.BatchNorm1d if norm == "batch" else torch.nn.LayerNorm
    model = torch.nn.Sequential(
        torch.nn.Linear(SIZES[0], SIZES[1], bias=False), norm_layer(SIZES[1]), torch.nn.ReLU(), torch.nn.Dropout(p),
        torch.nn.Linear(SIZES[1], SIZES[2], bias=False), norm_layer(SIZES[2]), torch.nn.ReLU(), torch.nn.Dropout(p),
        torch.nn.Linear(SIZES[2], SIZES[3]))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tx, ty = torch.from_numpy(np.asarray(xs)), torch.from_numpy(np.asarray(ys)).long()

    def run():
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            value = torch.nn.functional.cross_entropy(model(tx[i]), ty[i])
            value.backward()
            opt.step()
        return float(value)

    return {f"torch eager CPU ({torch.get_num_threads()} threads)": run}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="steps per timed run (one lax.scan)")
    ap.add_argument("--repeats", type=int, default=15, help="timed runs per variant (the median is reported)")
    ap.add_argument("--p", type=float, default=0.1, help="dropout rate of both hidden layers")
    ap.add_argument("--norms", nargs="+", default=["batch", "layer"], choices=["batch", "layer"])
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 steps, 3 repeats, batch norm only")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.norms = 2, 3, ["batch"]
    xs = jax.random.normal(jax.random.key(1), (args.steps, BATCH, SIZES[0]))
    ys = jax.random.randint(jax.random.key(2), (args.steps, BATCH), 0, SIZES[-1])
    key = jax.random.key(3)
    dev = jax.devices()[0]
    print(f"jax {jax.__version__} on {dev.platform} ({dev.device_kind}); {'-'.join(map(str, SIZES))}, relu, "
          f"softmax + cross_entropy, batch {BATCH}, float32, Adam, dropout p = {args.p} on both hidden layers; "
          f"median of {args.repeats} runs x {args.steps} steps (lax.scan), variants round-robin")
    print("speed-up = variant's time / fnann manual's time: > 1.0 means fnann's manual step is faster")
    have_torch = True
    for norm in args.norms:
        net, rows = variants(norm, args.p)
        print(f"\n{norm} norm on both hidden layers ({net.norm_name}) + dropout:")
        fns = {}
        for name, (step, params, state) in rows.items():
            run = scan_of(step, True)
            fns[name] = lambda run=run, params=params, state=state: run(params, state, xs, ys, key)
        print("  " + check_same_work(norm, {name: fn() for name, fn in fns.items()}))  # compiles them
        times = timed_side_by_side(fns, args.repeats)
        extra = torch_rows(norm, args.p, xs, ys, args.steps)
        have_torch = have_torch and extra is not None
        times.update(timed_side_by_side(extra, args.repeats) if extra else {})  # after: see the docstring
        ref = times["fnann manual"]
        for name, t in times.items():
            print(f"  {name:32s} {1e3 * t / args.steps:8.3f} ms/step   manual's speed-up {t / ref:5.2f}x")
        print(f"  manual/autodiff speed-up {times['fnann autodiff'] / ref:.2f}, manual/hand-written speed-up "
              f"{times['hand-written value_and_grad'] / ref:.2f}")
    if not have_torch:
        print("\ntorch is not installed: the PyTorch eager CPU row is skipped")


if __name__ == "__main__":
    main()
