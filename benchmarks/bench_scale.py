"""Scale: ``fit_many`` (K models in one program) against one ``fit`` and a loop of K fits,
and data-parallel ``fit(mesh=...)`` on emulated CPU devices against one device.

The workload is the small one: 64-128-64-10 (ReLU, softmax), Adam, batch 32, the digits
training split (1437 x 64), validation on the test split every epoch. "warm" times are
the median of ``--repeats`` calls after a first call compiled everything (timed
round-robin, as in bench_train.py); "cold" times clear every compilation cache first, so
they include tracing and compiling, as a fresh process would see them: what a sweep costs
end to end.

Beside the fits, the same round-robin times each compiled epoch alone (no host work, no
validation) and the float32 matrix products of one training step, for one model and
batched over K models as ``jax.vmap`` gives them, and one 1024^3 product (the machine's
practical peak). From these it prints the GFLOP/s of each and the least fit_many(K) / fit
warm ratio that the matrix products alone allow: K models' products at the measured rate
against one fit's whole time.

    python benchmarks/bench_scale.py                  # both parts
    python benchmarks/bench_scale.py --part many --repeats 3
    python benchmarks/bench_scale.py --part mesh --devices 4
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time

SIZES, BATCH = (64, 128, 64, 10), 32


def data():
    from fnann.app import datasets

    ds = datasets.load("digits")
    return ds.x_train, ds.y_train, (ds.x_test, ds.y_test)


def clear_caches():
    import jax

    from fnann import sweep, train
    from fnann.inference import _chunk_fns

    jax.clear_caches()
    for cached in (train.compiled_epoch, sweep.compiled_many, sweep._stats_many, _chunk_fns):
        cached.cache_clear()


def cold(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` with every compilation cache cleared before each call."""
    times = []
    for _ in range(repeats):
        clear_caches()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_matmuls(sizes, batch: int) -> list[tuple[int, int, int]]:
    """The (m, k, n) of the matrix products of one training step: per layer the forward
    (batch, n_in) @ (n_in, n_out) and the backward dW (n_out, batch) @ (batch, n_in) and,
    except for the first layer, dA (batch, n_out) @ (n_out, n_in)."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    return ([(batch, a, b) for a, b in layers] + [(b, batch, a) for a, b in layers]
            + [(batch, b, a) for a, b in layers[1:]])


def flops(sizes, n_train: int, n_val: int, batch: int) -> dict[str, float]:
    """One model's FLOPs in one epoch: the matrix products of training (forward and
    backward), of the validation forward, and Adam's elementwise update (about 13 FLOPs per
    parameter and step: two moments, the bias-corrected ratio with a square root, the add)."""
    per_example = sum(2 * m * k * n for m, k, n in step_matmuls(sizes, 1))
    forward = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return {"train matmuls": per_example * n_train, "validation matmuls": forward * n_val,
            "adam": 13 * n_params * -(-n_train // batch)}


def matmul_programs(sizes, batch: int, K: int) -> dict[str, tuple]:
    """Float32 matrix products to time side by side with the fits: ``name -> (fn, FLOPs)``.

    The products of one training step (``step_matmuls``) for one model and batched over K
    models (``(K, m, k) @ (K, k, n)``, what ``jax.vmap`` gives ``fit_many``), each repeated
    200 times inside a ``lax.scan`` so that dispatch does not count; and one 1024^3 product,
    16 times in a scan (the machine's practical peak, on all its cores)."""
    import jax
    import jax.numpy as jnp

    def program(xs, ws, reps):
        def body(c, _):
            return c + sum(jnp.sum(jnp.matmul(x + c, w)[..., :1, :1]) for x, w in zip(xs, ws)) * 1e-30, None
        return jax.jit(lambda xs, ws: jax.lax.scan(body, jnp.float32(0), None, length=reps)[0])

    out, key = {}, jax.random.key(0)
    cases = [(1, step_matmuls(sizes, batch), 200), (K, step_matmuls(sizes, batch), 200),
             (1, [(1024, 1024, 1024)], 16)]
    for models, shapes, reps in cases:
        lead = () if models == 1 else (models,)
        xs = [jax.random.normal(key, (*lead, m, k)) for m, k, _ in shapes]
        ws = [jax.random.normal(key, (*lead, k, n)) for _, k, n in shapes]
        f = program(xs, ws, reps)
        name = ("one 1024^3 product" if len(shapes) == 1 else
                f"step's products, {models} model{'s' * (models > 1)}")
        out[name] = (lambda f=f, xs=xs, ws=ws: jax.block_until_ready(f(xs, ws)),
                     reps * models * sum(2 * m * k * n for m, k, n in shapes))
    return out


def compiled_epochs(net, stacked, x, y, keys) -> dict:
    """One epoch of fit's and of fit_many's compiled programs, called directly."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import fnann
    from fnann import inference, sweep, train
    from fnann.losses import get_loss

    loss, adam, K = get_loss("cross_entropy"), fnann.adam(1e-3), len(keys)
    x, y = inference.as_device(x, y, jnp.float32)
    orders = jnp.asarray(np.stack([train.permutation(jax.random.fold_in(k, 0), len(x)) for k in keys]))
    one = jax.tree.map(lambda a: a[0], stacked)
    state, states = adam.init(one), jax.vmap(adam.init)(stacked)
    epoch = train.compiled_epoch(net, loss, adam, "manual", BATCH)
    go = (jnp.ones(K, bool), jnp.full(K, jnp.inf))
    many, shared = (sweep.compiled_many(net, loss, adam, (), "manual", BATCH, None, None, None, s)
                    for s in (False, True))
    done = jax.block_until_ready
    return {"epoch: fit (1 model)": lambda: done(epoch(one, state, orders[0], x, y)),
            f"epoch: fit_many ({K} shuffles)": lambda: done(many(stacked, states, orders, (), *go, x, y)),
            f"epoch: fit_many ({K}, one shuffle)": lambda: done(shared(stacked, states, orders[0], (),
                                                                        *go, x, y))}


def bench_many(K: int, epochs: int, repeats: int, cold_runs: bool = True) -> None:
    import jax

    import fnann
    from bench_train import timed_side_by_side

    x, y, val = data()
    net = fnann.MLP(SIZES, hidden="relu", output="softmax")
    init_keys = jax.random.split(jax.random.key(0), K)
    shuffle_keys = jax.random.split(jax.random.key(1), K)
    stacked = jax.vmap(lambda k: fnann.init(k, net))(init_keys)
    lrs = [float(v) for v in 10.0 ** jax.numpy.linspace(-4, -2, K)]
    kw = dict(epochs=epochs, batch_size=BATCH, validation_data=val)

    adam = fnann.adam(1e-3)  # one optimizer object: fits with it share one compilation

    def one_fit(k=0, opt=adam):
        p = jax.tree.map(lambda a: a[k], stacked)
        return jax.block_until_ready(
            fnann.fit(net, "cross_entropy", opt, p, x, y, key=shuffle_keys[k], **kw)[0])

    def many_seeds():
        return jax.block_until_ready(fnann.fit_many(
            net, "cross_entropy", adam, stacked, x, y, key=shuffle_keys, **kw).params)

    def many_lrs(key=shuffle_keys):
        return jax.block_until_ready(fnann.fit_many(
            net, "cross_entropy", fnann.adam, stacked, x, y, key=key,
            hyperparams={"lr": lrs}, **kw).params)

    def loop_seeds():
        for k in range(K):
            one_fit(k)

    def loop_lrs():  # a new optimizer per fit: every fit compiles its own epoch
        for k in range(K):
            one_fit(k, fnann.adam(lrs[k]))

    variants = {"fit (1 model)": one_fit,
                f"fit_many ({K} seeds)": many_seeds,
                f"fit_many ({K} learning rates)": many_lrs,
                f"fit_many ({K} lrs, one shuffle)": lambda: many_lrs(shuffle_keys[0]),
                f"loop of {K} fits (seeds)": loop_seeds}
    epochs_only = compiled_epochs(net, stacked, x, y, shuffle_keys)
    products = matmul_programs(SIZES, BATCH, K)
    warm = timed_side_by_side(variants | epochs_only | {n: f for n, (f, _) in products.items()},
                              repeats)
    if cold_runs:
        cold_times = {name: cold(fn, 1 if name.startswith("loop") else min(repeats, 3))
                      for name, fn in variants.items()}
        cold_times[f"loop of {K} fits (learning rates)"] = cold(loop_lrs, 1)
    else:  # --no-cold: the warm figures only (gpu_check --quick)
        cold_times = dict.fromkeys([*variants, f"loop of {K} fits (learning rates)"], math.nan)
    one_warm, one_cold = warm["fit (1 model)"], cold_times["fit (1 model)"]
    work = {name: epochs * f for name, f in flops(SIZES, x.shape[0], val[0].shape[0], BATCH).items()}
    mm = work["train matmuls"] + work["validation matmuls"]
    print(f"\nfit_many: {'-'.join(map(str, SIZES))}, batch {BATCH}, Adam, {x.shape[0]}x{x.shape[1]} "
          f"digits, {epochs} epochs, validation ({val[0].shape[0]} rows) every epoch; x = time / "
          f"one fit's time, side by side; warm: median of {repeats} after compiling, cold: "
          "every compilation cache cleared first (what a sweep costs end to end)")
    print("  one model's work: " + ", ".join(f"{n} {v / 1e9:.3f} GFLOP" for n, v in work.items()))
    print(f"  {'':36s} {'warm s':>8s} {'x':>6s} {'GFLOP/s':>8s}   {'cold s':>8s} {'x':>6s}")
    for name in cold_times:
        w, models = warm.get(name), 1 if name.startswith("fit (") else K
        ws = (f"{w:8.3f} {w / one_warm:6.2f} {models * mm / w / 1e9:8.1f}" if w is not None
              else f"{'-':>8s} {'-':>6s} {'-':>8s}")
        c = cold_times[name]
        print(f"  {name:36s} {ws}   {c:8.3f} {c / one_cold:6.2f}")
    one_epoch = warm["epoch: fit (1 model)"]
    print(f"  one compiled epoch alone (no host work, no validation; x = time / fit's epoch):")
    for name in epochs_only:
        models = 1 if name.endswith("(1 model)") else K
        t = warm[name]
        print(f"    {name:34s} {t * 1e3:8.2f} ms {t / one_epoch:6.2f} "
              f"{models * work['train matmuls'] / epochs / t / 1e9:8.1f} GFLOP/s")
    rates = {name: work_ / warm[name] / 1e9 for name, (_, work_) in products.items()}
    print(f"  float32 matrix products on this machine (GFLOP/s): "
          + ", ".join(f"{n} {r:.1f}" for n, r in rates.items()))
    print(f"  3x one fit's time would need {K * mm / (3 * one_warm) / 1e9:.1f} GFLOP/s of matrix "
          f"products alone. Bound on fit_many({K}) / fit warm from the matrix products alone "
          f"(K x one model's products at the rate, against one fit's whole time):")
    for name, rate in rates.items():
        if not name.endswith("1 model"):
            print(f"    at the {name} rate: >= {K * mm / (rate * 1e9) / one_warm:.2f}x")


def bench_mesh(devices: int, epochs: int, repeats: int) -> None:
    """Runs in a process started with ``devices`` emulated CPU devices."""
    import jax

    import fnann
    from bench_train import timed_side_by_side

    x, y, val = data()
    net = fnann.MLP(SIZES, hidden="relu", output="softmax")
    params = fnann.init(jax.random.key(0), net)
    mesh = jax.make_mesh((devices,), ("data",))
    print(f"\ndata-parallel fit on {devices} emulated CPU devices ({jax.device_count()} in this "
          f"process, {os.cpu_count()} cores), {epochs} epochs of {x.shape[0]} examples")
    adam = fnann.adam(1e-3)  # one optimizer object: every call reuses its compiled epoch
    for batch in (BATCH, 256):
        kw = dict(key=jax.random.key(1), epochs=epochs, batch_size=batch, validation_data=val)
        rows = timed_side_by_side({
            "1 device": lambda: jax.block_until_ready(
                fnann.fit(net, "cross_entropy", adam, params, x, y, **kw)[0]),
            f"mesh of {devices}": lambda: jax.block_until_ready(
                fnann.fit(net, "cross_entropy", adam, params, x, y, mesh=mesh, **kw)[0]),
        }, repeats)
        one = rows["1 device"]
        for name, t in rows.items():
            print(f"  batch {batch:4d}  {name:12s} {t:8.3f} s  {epochs * x.shape[0] / t:10,.0f} ex/s"
                  f"   x{t / one:5.2f} time vs 1 device")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("many", "mesh", "all"), default="all")
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold (compiling) timings")
    args = parser.parse_args(argv)
    if args.part in ("many", "all"):
        import jax

        print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} cores")
        bench_many(args.models, args.epochs, args.repeats, cold_runs=not args.no_cold)
    if args.part == "mesh":
        bench_mesh(args.devices, args.epochs, args.repeats)
    elif args.part == "all":  # emulated devices must be set before jax starts: a new process
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={args.devices}")
        subprocess.run([sys.executable, __file__, "--part", "mesh", "--devices", str(args.devices),
                        "--epochs", str(args.epochs), "--repeats", str(args.repeats)],
                       env=env, check=True)


if __name__ == "__main__":
    main()
