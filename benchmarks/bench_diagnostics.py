"""What gradient-flow diagnostics cost ``fit``: off (the default) against a Recorder every k epochs.

``fit(..., params_callback=None)`` must cost what ``fit`` cost before the hook existed; with
a ``diagnostics.Recorder`` each recorded epoch adds one compiled call (forward, backward
and one optimizer update on the probe batch; "one record alone" times just that call).
Every figure is the median of ``--repeats`` timed ``fit`` calls in the steady state
(compiled and warmed up first), all variants timed round-robin in one process so that
they see the same machine load. ``--baseline`` adds
the ``fit`` of another ``train.py`` (an older checkout's) as one more variant:

    git show abfd27a:fnann/train.py > /tmp/train_before.py
    python benchmarks/bench_diagnostics.py --baseline /tmp/train_before.py
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

import jax

import fnann
from fnann.diagnostics import Recorder

CONFIGS = {"64-128-64-10 relu": ((64, 128, 64, 10), "relu"),
           "10-layer sigmoid": ((64,) + (32,) * 9 + (10,), "sigmoid")}


def load_fit(path):
    """``fit`` from another train.py (it imports the rest of fnann from this checkout)."""
    spec = importlib.util.spec_from_file_location("fnann_train_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fit


def bench(sizes, hidden, args, baseline_fit):
    net = fnann.MLP(sizes, hidden=hidden, output="softmax")
    params = fnann.init(jax.random.key(0), net)
    x = jax.random.normal(jax.random.key(1), (args.n, sizes[0]))
    y = jax.random.randint(jax.random.key(2), (args.n,), 0, sizes[-1])
    opt = fnann.adam(1e-3)

    def run(fit, every=None):
        rec = None if every is None else Recorder(net, "cross_entropy", x[:args.probe], y[:args.probe], opt,
                                                  every=every)
        kwargs = {} if rec is None else {"params_callback": rec}
        out = fit(net, "cross_entropy", opt, params, x, y, key=jax.random.key(3), epochs=args.epochs,
                  batch_size=args.batch, **kwargs)
        jax.block_until_ready((out, rec.records if rec else None))

    variants = {"off": lambda: run(fnann.fit), "every 10": lambda: run(fnann.fit, 10),
                "every 1": lambda: run(fnann.fit, 1)}
    if baseline_fit is not None:
        variants = {"baseline": lambda: run(baseline_fit), **variants}
    rec = Recorder(net, "cross_entropy", x[:args.probe], y[:args.probe], opt)
    state = opt.init(params)
    variants["one record alone"] = lambda: [jax.block_until_ready(rec.record(0, params, state))
                                            for _ in range(args.epochs)]
    for fn in variants.values():
        fn()  # compile and warm up
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) / args.epochs for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--n", type=int, default=1437, help="training examples (digits' training split)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--probe", type=int, default=256, help="examples the diagnostics look at")
    parser.add_argument("--baseline", help="a train.py whose fit to time side by side (e.g. before the hook)")
    args = parser.parse_args(argv)
    baseline_fit = load_fit(args.baseline) if args.baseline else None
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.n} examples, batch {args.batch}, "
          f"{args.epochs} epochs per fit, probe {args.probe}; median of {args.repeats}, ms per epoch, "
          "ratio to 'off'")
    for name, (sizes, hidden) in CONFIGS.items():
        t = bench(sizes, hidden, args, baseline_fit)
        cells = "   ".join(f"{k} {v * 1e3:6.2f} (x{v / t['off']:.2f})" for k, v in t.items())
        print(f"  {name:18s} {cells}")


if __name__ == "__main__":
    main()
