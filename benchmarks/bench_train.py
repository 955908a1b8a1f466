"""Training-step throughput: fnann's manual and autodiff steps against a hand-written
baseline, and the compiled ``lax.scan`` epoch against a Python loop of jitted steps.

Every figure is the median of ``--repeats`` timed runs in the steady state (after a
compile-and-warm-up run), each of ``--steps`` steps, synchronised with
``block_until_ready``. The baseline is what a user would write by hand with no library:
``jax.value_and_grad`` of a ReLU/softmax MLP plus Adam, in one ``jit``.

    python benchmarks/bench_train.py              # all three sizes
    python benchmarks/bench_train.py --sizes small --repeats 3
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import jax
import jax.numpy as jnp

import fnann
from fnann.train import compiled_epoch, epoch_order

CONFIGS = {
    "small": ((64, 128, 64, 10), 32),
    "medium": ((784, 512, 512, 10), 128),
    "large": ((784, 2048, 2048, 10), 512),
}


def baseline_step(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """A hand-written value_and_grad + Adam step, no fnann: the reference point."""

    def loss(params, x, y):
        a = x
        for i, (W, b) in enumerate(params):
            z = a @ W.T + b
            a = jax.nn.relu(z) if i < len(params) - 1 else z
        return -jnp.mean(jnp.sum(jax.nn.one_hot(y, z.shape[-1]) * jax.nn.log_softmax(z), -1))

    def step(params, state, x, y):
        t, m, v = state
        value, g = jax.value_and_grad(loss)(params, x, y)
        t = t + 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        params = jax.tree.map(
            lambda p, m, v: p - lr * (m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps),
            params, m, v)
        return params, (t, m, v), value

    return step


def timed_side_by_side(fns: dict, repeats: int) -> dict:
    """Median seconds per call of each function, timed round-robin so that every variant
    sees the same machine conditions (a shared machine drifts by 10-20% over a minute)."""
    for fn in fns.values():
        fn()  # compile and warm up
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def loop_of(step, n_steps):
    """Runs n_steps of a jitted step from Python (one dispatch per step)."""

    def run(params, state, xs, ys):
        for i in range(n_steps):
            params, state, value = step(params, state, xs[i], ys[i])
        return jax.block_until_ready((params, state, value))

    return run


def scan_of(step):
    @jax.jit
    def run(params, state, xs, ys):
        def body(carry, batch):
            p, s, v = step(*carry, *batch)
            return (p, s), v
        return jax.lax.scan(body, (params, state), (xs, ys))

    return lambda *a: jax.block_until_ready(run(*a))


def bench(name, steps, repeats):
    sizes, batch = CONFIGS[name]
    net = fnann.MLP(sizes, hidden="relu", output="softmax")
    params = fnann.init(jax.random.key(0), net)
    n = batch * steps
    x = jax.random.normal(jax.random.key(1), (n, sizes[0]))
    y = jax.random.randint(jax.random.key(2), (n,), 0, sizes[-1])
    xs, ys = x.reshape(steps, batch, -1), y.reshape(steps, batch)
    opt = fnann.adam(1e-3)
    state = opt.init(params)
    base_params = [(p.W, p.b) for p in params]
    base_state = (jnp.zeros([], jnp.int32), jax.tree.map(jnp.zeros_like, base_params),
                  jax.tree.map(jnp.zeros_like, base_params))
    base = baseline_step()
    jit_base = jax.jit(base)
    rows = {"baseline step (value_and_grad + Adam)":
            lambda: loop_of(jit_base, steps)(base_params, base_state, xs, ys)}
    for method in ("manual", "autodiff"):
        step = jax.jit(fnann.train_step(net, "cross_entropy", opt, method))
        rows[f"fnann train_step {method}"] = functools.partial(loop_of(step, steps), params, state, xs, ys)
    base_scan = scan_of(base)
    rows["baseline in lax.scan"] = lambda: base_scan(base_params, base_state, xs, ys)
    key = jax.random.key(3)
    for method in ("manual", "autodiff"):
        epoch = compiled_epoch(net, fnann.cross_entropy, opt, method, batch)
        rows[f"fnann fit epoch (scan) {method}"] = functools.partial(  # the shuffle included
            lambda e: jax.block_until_ready(e(params, state, epoch_order(key, 0, n), x, y)), epoch)
    rows = timed_side_by_side(rows, repeats)
    return {k: n / t for k, t in rows.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=0,
                        help="steps per timed run (default: 200 small, 50 medium, 10 large)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.devices()[0].device_kind}); "
          f"median of {args.repeats} runs, examples/second")
    for name in args.sizes:
        steps = args.steps or {"small": 200, "medium": 50, "large": 10}[name]
        sizes, batch = CONFIGS[name]
        result = bench(name, steps, args.repeats)
        base = result["baseline step (value_and_grad + Adam)"]
        base_scan = result["baseline in lax.scan"]
        print(f"\n{name}: {'-'.join(map(str, sizes))}, batch {batch}, {steps} steps per run")
        for label, rate in result.items():
            ref = base_scan if "scan" in label else base
            print(f"  {label:40s} {rate:12,.0f} ex/s   x{rate / ref:5.2f} vs baseline"
                  f"{' (scan)' if 'scan' in label else ''}")
        manual, auto = result["fnann train_step manual"], result["fnann train_step autodiff"]
        print(f"  manual / autodiff step: {manual / auto:.2f};  scan epoch / Python loop "
              f"(manual): {result['fnann fit epoch (scan) manual'] / manual:.2f}")


if __name__ == "__main__":
    main()
