"""Dropout's training step, side by side in one run: fnann's manual (hand-derived, masked
delta recursion) and autodiff steps of a 784-512-512-10 net with dropout, a hand-written
``jax.value_and_grad`` + Adam step of the same network with the same masks, and fnann's
plain step (no dropout) for the cost of the masks.

Every figure is the median of ``--repeats`` timed runs of ``--steps`` steps in one
``lax.scan`` (step i's key is ``fold_in(key, i)``, as in ``fit``), after a compile-and-warm-up run.

    python benchmarks/bench_dropout.py
    python benchmarks/bench_dropout.py --repeats 3 --p 0.5
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

import fnann
from bench_train import timed_side_by_side
from fnann.mlp import dropout_masks

SIZES, BATCH = (784, 512, 512, 10), 128


def baseline_step(net, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """value_and_grad of the dropped-out MLP plus Adam, by hand (fnann only draws the masks)."""

    def loss(params, x, y, masks):
        a = x
        for i, (W, b) in enumerate(params):
            z = a @ W.T + b
            if i < len(params) - 1:
                a = jax.nn.relu(z) * masks[i] / (1 - net.dropout_rates[i])
        return -jnp.mean(jnp.sum(jax.nn.one_hot(y, z.shape[-1]) * jax.nn.log_softmax(z), -1))

    def step(params, state, x, y, key):
        t, m, v = state
        value, g = jax.value_and_grad(loss)(params, x, y, dropout_masks(net, key, x.shape[0], x.dtype))
        t = t + 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        params = jax.tree.map(lambda p, m, v: p - lr * (m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps),
                              params, m, v)
        return params, (t, m, v), value

    return step


def scan_of(step, keyed: bool):
    @jax.jit
    def run(params, state, xs, ys, key):
        def body(carry, batch):
            x, y, i = batch
            extra = (jax.random.fold_in(key, i),) if keyed else ()
            p, s, v = step(*carry, x, y, *extra)
            return (p, s), v
        return jax.lax.scan(body, (params, state), (xs, ys, jnp.arange(xs.shape[0], dtype=jnp.uint32)))

    return lambda *a: jax.block_until_ready(run(*a))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--p", type=float, default=0.1, help="dropout rate of both hidden layers")
    args = ap.parse_args(argv)
    net, plain = fnann.MLP(SIZES, dropout=args.p), fnann.MLP(SIZES)
    opt = fnann.adam(1e-3)
    params = fnann.init(jax.random.key(0), net)
    state = opt.init(params)
    xs = jax.random.normal(jax.random.key(1), (args.steps, BATCH, SIZES[0]))
    ys = jax.random.randint(jax.random.key(2), (args.steps, BATCH), 0, SIZES[-1])
    key = jax.random.key(3)
    base_state = (jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params))
    runs = {
        "fnann manual, dropout": (scan_of(fnann.train_step(net, "cross_entropy", opt), True), state),
        "fnann autodiff, dropout": (scan_of(fnann.train_step(net, "cross_entropy", opt, "autodiff"), True), state),
        "hand-written value_and_grad, dropout": (scan_of(baseline_step(net), True), base_state),
        "fnann manual, no dropout": (scan_of(fnann.train_step(plain, "cross_entropy", opt), False), state),
    }
    times = timed_side_by_side({name: (lambda f=f, s=s: f(params, s, xs, ys, key)) for name, (f, s) in runs.items()},
                               args.repeats)
    ref = times["fnann manual, dropout"]
    print(f"{'-'.join(map(str, SIZES))}, batch {BATCH}, dropout p = {args.p}, {jax.devices()[0].platform}; "
          f"median of {args.repeats} x {args.steps} steps")
    for name, t in times.items():
        print(f"  {name:40s} {1e3 * t / args.steps:8.3f} ms/step   manual's speed-up {t / ref:5.2f}x")


if __name__ == "__main__":
    main()
