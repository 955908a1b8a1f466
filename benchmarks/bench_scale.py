"""Scale: ``fit_many`` (K models in one program) against one ``fit`` and a loop of K fits,
and data-parallel ``fit(mesh=...)`` on emulated CPU devices against one device.

The workload is the small one: 64-128-64-10 (ReLU, softmax), Adam, batch 32, the digits
training split (1437 x 64), validation on the test split every epoch. "warm" times are
the median of ``--repeats`` calls after a first call compiled everything (timed
round-robin, as in bench_train.py); "cold" times clear every compilation cache first, so
they include tracing and compiling, as a fresh process would see them.

    python benchmarks/bench_scale.py                  # both parts
    python benchmarks/bench_scale.py --part many --repeats 3
    python benchmarks/bench_scale.py --part mesh --devices 4
"""

from __future__ import annotations

import argparse
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


def flops_per_model(sizes, n_train: int, n_val: int, epochs: int) -> float:
    """Matrix-product FLOPs of one model's fit: forward 2 n_in n_out per layer and example,
    backward twice that (dW and dA_prev, no dA for the input), plus validation forwards."""
    forward = 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    backward = 2 * forward - 2 * sizes[0] * sizes[1]
    return epochs * ((forward + backward) * n_train + forward * n_val)


def matmul_ceiling(repeats: int) -> float:
    """GFLOP/s of one large float32 matrix product (1024^3) on this machine: the ceiling."""
    import jax

    a = jax.random.normal(jax.random.key(0), (1024, 1024))
    f = jax.jit(lambda a: a @ a)
    jax.block_until_ready(f(a))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f(a))
        times.append(time.perf_counter() - start)
    return 2 * 1024**3 / statistics.median(times) / 1e9


def bench_many(K: int, epochs: int, repeats: int) -> None:
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

    def many_lrs():
        return jax.block_until_ready(fnann.fit_many(
            net, "cross_entropy", fnann.adam, stacked, x, y, key=shuffle_keys,
            hyperparams={"lr": lrs}, **kw).params)

    def loop_seeds():
        for k in range(K):
            one_fit(k)

    def loop_lrs():  # a new optimizer per fit: every fit compiles its own epoch
        for k in range(K):
            one_fit(k, fnann.adam(lrs[k]))

    warm = timed_side_by_side({"fit (1 model)": one_fit,
                               f"fit_many ({K} seeds)": many_seeds,
                               f"fit_many ({K} learning rates)": many_lrs,
                               f"loop of {K} fits (seeds)": loop_seeds}, repeats)
    cold_times = {"fit (1 model)": cold(one_fit, repeats),
                  f"fit_many ({K} seeds)": cold(many_seeds, repeats),
                  f"fit_many ({K} learning rates)": cold(many_lrs, repeats),
                  f"loop of {K} fits (seeds)": cold(loop_seeds, 1),
                  f"loop of {K} fits (learning rates)": cold(loop_lrs, 1)}
    one_warm, one_cold = warm["fit (1 model)"], cold_times["fit (1 model)"]
    gflop = flops_per_model(SIZES, x.shape[0], val[0].shape[0], epochs) / 1e9
    print(f"\nfit_many: {'-'.join(map(str, SIZES))}, batch {BATCH}, {x.shape[0]}x{x.shape[1]} "
          f"digits, {epochs} epochs, validation every epoch; x = time / one fit's time; "
          f"GFLOP/s of the matrix products ({gflop:.2f} GFLOP per model)")
    print(f"  {'':36s} {'warm s':>8s} {'x':>6s} {'GFLOP/s':>8s}   {'cold s':>8s} {'x':>6s}")
    for name in cold_times:
        w, models = warm.get(name), 1 if name.startswith("fit (") else K
        ws = (f"{w:8.3f} {w / one_warm:6.2f} {models * gflop / w:8.1f}" if w is not None
              else f"{'-':>8s} {'-':>6s} {'-':>8s}")
        c = cold_times[name]
        print(f"  {name:36s} {ws}   {c:8.3f} {c / one_cold:6.2f}")
    ceiling = matmul_ceiling(repeats)
    print(f"  one 1024^3 float32 matmul: {ceiling:.1f} GFLOP/s; {K} models in 3x one fit's time "
          f"would need {K * gflop / (3 * one_warm):.1f} GFLOP/s")


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
    args = parser.parse_args(argv)
    if args.part in ("many", "all"):
        import jax

        print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} cores")
        bench_many(args.models, args.epochs, args.repeats)
    if args.part == "mesh":
        bench_mesh(args.devices, args.epochs, args.repeats)
    elif args.part == "all":  # emulated devices must be set before jax starts: a new process
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={args.devices}")
        subprocess.run([sys.executable, __file__, "--part", "mesh", "--devices", str(args.devices),
                        "--epochs", str(args.epochs), "--repeats", str(args.repeats)],
                       env=env, check=True)


if __name__ == "__main__":
    main()
