"""Optimizer cost inside ``fit``'s compiled epoch: fnann's Adam against the PyTorch, optax
and Keras conventions, AdamW with a mask, and optax's own transforms passed to fnann.

Every figure is the median of ``--repeats`` timed epochs in the steady state (compiled and
warmed up first), timed round-robin (``bench_train.timed_side_by_side``), on the digits-sized
64-128-64-10 network with batch 32 (the optimizer is the largest part of a small step).

    python benchmarks/bench_conventions.py
    python benchmarks/bench_conventions.py --repeats 5 --rows 4096
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

import fnann
from fnann.optim import conventions as cv
from fnann.train import compiled_epoch, epoch_order
from bench_train import timed_side_by_side


def optimizers() -> dict:
    opts = {
        "fnann adam": fnann.adam(1e-3),
        "torch_adam": cv.torch_adam(1e-3),
        "keras_adam": cv.keras_adam(1e-3),
        "fnann adamw, weights_only": fnann.adamw(1e-3, mask=fnann.weights_only),
        "torch_sgd, nesterov": cv.torch_sgd(1e-2, momentum=0.9, nesterov=True),
        "torch_rmsprop, centered": cv.torch_rmsprop(1e-3, momentum=0.9, centered=True),
    }
    try:
        import optax
    except ImportError:
        return opts
    opts["optax.adam (as_optimizer)"] = optax.adam(1e-3)
    opts["optax.adamw, weights_only"] = optax.adamw(1e-3, mask=fnann.weights_only)
    return opts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rows", type=int, default=2048, help="examples per epoch")
    args = parser.parse_args(argv)

    net = fnann.MLP((64, 128, 64, 10))
    params = fnann.init(jax.random.key(0), net)
    x = jax.random.normal(jax.random.key(1), (args.rows, 64))
    y = jax.random.randint(jax.random.key(2), (args.rows,), 0, 10)
    order = epoch_order(jax.random.key(3), 0, args.rows)
    loss = fnann.get_loss("cross_entropy")

    fns = {}
    for name, opt in optimizers().items():
        opt = fnann.as_optimizer(opt)
        epoch, state = compiled_epoch(net, loss, opt, "manual", 32), opt.init(params)
        fns[name] = lambda epoch=epoch, state=state: jax.block_until_ready(epoch(params, state, order, x, y))
    seconds = timed_side_by_side(fns, args.repeats)
    base = seconds["fnann adam"]
    print(f"fit epoch, 64-128-64-10, batch 32, {args.rows} rows, median of {args.repeats} "
          f"(jax {jax.__version__}, {jax.devices()[0].platform})")
    print(f"{'optimizer':<28} {'examples/s':>11} {'time vs fnann adam':>19}")
    for name, s in seconds.items():
        print(f"{name:<28} {args.rows / s:>11,.0f} {s / base:>19.2f}")


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing
    main()
