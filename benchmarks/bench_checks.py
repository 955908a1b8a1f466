"""What the boundary checks cost: value checks on concrete inputs, fit's checks before it
compiles, and a checkpoint's save and validated load.

Every figure is the median of ``--repeats`` timed runs after a warm-up run, in milliseconds,
next to the call it guards (the ratio says how much of that call the check is).

    python benchmarks/bench_checks.py
    python benchmarks/bench_checks.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import jax
import numpy as np

import fnann
from fnann import checks, train
from fnann.checks import check_inputs


def median_ms(fn, repeats: int) -> float:
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    net = fnann.MLP([64, 128, 64, 10])
    params = fnann.init(jax.random.key(0), net)
    rng = np.random.default_rng(0)
    rows = []
    for n in (32, 100_000):
        x = rng.standard_normal((n, 64)).astype(np.float32)
        check = median_ms(lambda: check_inputs(net, params, x), args.repeats)
        call = median_ms(lambda: fnann.predict(net, params, x), args.repeats)
        rows.append((f"predict, x ({n}, 64) numpy", check, call))
        xj = jax.numpy.asarray(x)
        check = median_ms(lambda: check_inputs(net, params, xj), args.repeats)
        call = median_ms(lambda: fnann.predict(net, params, xj), args.repeats)
        rows.append((f"predict, x ({n}, 64) jax.Array", check, call))

    opt = fnann.adam(fnann.schedules.cosine_decay(1e-3, 10_000))
    state = opt.init(params)
    x = rng.standard_normal((1437, 64)).astype(np.float32)
    y = rng.integers(0, 10, 1437)
    guards = median_ms(lambda: (checks.check_opt_state(opt, state, params),
                                train.check_schedules(opt, 0, 45 * 60)), args.repeats)
    fit = median_ms(lambda: fnann.fit(net, "ce", opt, params, x, y, key=jax.random.key(0), epochs=1,
                                      opt_state=state)[0], args.repeats)
    rows.append(("fit's opt_state + schedule checks (2700 steps) vs a 1-epoch fit", guards, fit))

    folder = tempfile.mkdtemp()
    save = median_ms(lambda: fnann.save(f"{folder}/c.npz", net, params, state, epoch=3,
                                        history={"loss": [0.1] * 60}), args.repeats)
    load = median_ms(lambda: fnann.load(f"{folder}/c.npz", net=net).params, args.repeats)
    load_opt = median_ms(lambda: fnann.load(f"{folder}/c.npz", net=net, opt=opt).params, args.repeats)
    rows.append(("load (registry) vs save, 64-128-64-10 + Adam", load, save))
    rows.append(("load (opt=, template) vs save", load_opt, save))

    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'check ms':>9}  {'call ms':>9}  {'ratio':>6}")
    for what, check, call in rows:
        print(f"{what:<{width}}  {check:9.3f}  {call:9.3f}  {check / call:6.2f}")


if __name__ == "__main__":
    main()
