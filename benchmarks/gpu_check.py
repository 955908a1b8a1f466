"""The prepared accelerator check: one command, one report, under 8 minutes on one GPU.

Run it the moment a GPU (or TPU) is at hand, from the repository root, with fnann importable
(an install, or ``PYTHONPATH=.``)::

    python benchmarks/gpu_check.py --out gpu_report.md          # the full check
    python benchmarks/gpu_check.py --quick --out report.md      # tiny sizes: any CPU, in CI

Each section runs as its own subprocess with its own time limit, so one that fails or hangs
is recorded (its exit status, its last lines) and the others still run. The report, in this
order:

1. the device and versions (jax, jaxlib, fnann, numpy; ``nvidia-smi`` where there is one);
2. ``fnann gradcheck`` (the README's network, then it with batch norm and dropout 0.1 on its
   hidden layers; float64, ``Precision.HIGHEST``);
3. ``fnann train`` wall time with an empty compilation cache (cold) and with the cache it
   filled (warm);
4. the test suite, with ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (so parallel workers do not
   each reserve most of the device's memory) and ``-n auto`` when pytest-xdist is installed;
5. ``benchmarks/bench_train.py`` at its sizes (fnann's steps beside a hand-written jax step);
6. large networks, 784-4096-4096-10 at batch 4096 and 1024-8192-8192-8192-10 at batch 8192,
   float32 and bfloat16 params: examples/s, TFLOP/s (6 · Σ n_in n_out FLOPs per example for
   forward + backward) and the fraction of the matmul peak measured in the same run at that
   dtype, fnann's ``train_step`` beside a hand-written ``jax.value_and_grad`` step, and torch
   eager where torch is installed;
7. ``benchmarks/bench_scale.py --part many``: 16 models by ``fit_many`` against one ``fit``;
8. ``benchmarks/bench_norm.py``: batch norm's and layer norm's step (with dropout), manual
   beside autodiff and a hand-written jax step, and torch eager where torch is installed.

``--quick`` shrinks every size (and runs one test file instead of the suite) so that the
whole check takes well under a minute on a CPU: the suite runs it, so it never rots. Nothing
here asserts a speed; the figures are for the README and the closing note.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LARGE = {"full": [((784, 4096, 4096, 10), 4096, 10), ((1024, 8192, 8192, 8192, 10), 8192, 5)],
         "quick": [((32, 64, 64, 10), 64, 2)]}
PEAK_N = {"full": 8192, "quick": 256}

LARGE_SCRIPT = textwrap.dedent("""
    import json, statistics, sys, time
    import jax, jax.numpy as jnp
    import fnann

    configs, peak_n, repeats = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

    def timed(fn, *args):
        jax.block_until_ready(fn(*args))  # compile and warm up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    def peak(dtype):
        a = jnp.ones((peak_n, peak_n), dtype)
        mm = jax.jit(lambda a: a @ a)
        return 2 * peak_n ** 3 / timed(mm, a) / 1e12

    def hand_written(params, x, y):
        def loss(params):
            a = x
            for i, (W, b) in enumerate(params):
                z = a @ W.T + b
                a = jax.nn.relu(z) if i < len(params) - 1 else z
            return jnp.mean(jax.nn.logsumexp(a, -1) - jnp.take_along_axis(a, y[:, None], -1)[:, 0])
        value, g = jax.value_and_grad(loss)(params)
        return value, [(W - 1e-3 * gW, b - 1e-3 * gb) for (W, b), (gW, gb) in zip(params, g)]

    for dtype in ("float32", "bfloat16"):
        p = peak(jnp.dtype(dtype))
        print(f"matmul peak {dtype}: {p:.2f} TFLOP/s ({peak_n}x{peak_n})")
        for sizes, batch, steps in configs:
            net = fnann.MLP(sizes)
            params = fnann.init(jax.random.key(0), net, dtype=jnp.dtype(dtype))
            x = jax.random.normal(jax.random.key(1), (batch, sizes[0]), dtype)
            y = jax.random.randint(jax.random.key(2), (batch,), 0, sizes[-1])
            opt = fnann.sgd(1e-3)
            step = jax.jit(fnann.train_step(net, "cross_entropy", opt))
            state = opt.init(params)
            flops = 6 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
            rows = {"fnann train_step": timed(lambda: step(params, state, x, y)),
                    "hand-written jax": timed(jax.jit(hand_written), [(l.W, l.b) for l in params], x, y)}
            try:
                import torch
                dev = "cuda" if torch.cuda.is_available() else "cpu"
                tdt = getattr(torch, dtype)
                layers = [torch.randn(b, a, device=dev, dtype=tdt, requires_grad=True) for a, b in zip(sizes[:-1], sizes[1:])]
                tx, ty = torch.randn(batch, sizes[0], device=dev, dtype=tdt), torch.randint(0, sizes[-1], (batch,), device=dev)
                def torch_step():
                    a = tx
                    for i, W in enumerate(layers):
                        a = a @ W.T
                        a = torch.relu(a) if i < len(layers) - 1 else a
                    torch.nn.functional.cross_entropy(a.float(), ty).backward()
                    if dev == "cuda":
                        torch.cuda.synchronize()
                torch_step()
                t0 = []
                for _ in range(repeats):
                    t = time.perf_counter(); torch_step(); t0.append(time.perf_counter() - t)
                rows["torch eager"] = statistics.median(t0)
            except ImportError:
                pass
            for name, t in rows.items():
                print(f"{'-'.join(map(str, sizes))} batch {batch} {dtype} {name:18s} {batch / t:12,.0f} ex/s "
                      f"{flops / t / 1e12:8.2f} TFLOP/s  {flops / t / 1e12 / p:6.1%} of peak")
""")


def sections(quick: bool, tmp: str) -> list[tuple[str, list[str], dict, int]]:
    """``(title, argv, extra environment, time limit in seconds)`` of every section, in order."""
    py, size = sys.executable, "quick" if quick else "full"
    small = ["--sizes", "4,6,3"] if quick else []
    cache = os.path.join(tmp, "cache")
    train = [py, "-m", "fnann", "train", "--no-progress", "--no-plot", "--cache-dir", cache]
    train += ["--data", "xor", "--epochs", "2"] if quick else []
    suite = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if quick:
        suite += ["tests/test_forward.py", "-k", "float64_end_to_end or hashable"]
    elif _has("xdist"):
        suite += ["-n", "auto"]

    versions = ("import jax, jaxlib, numpy, fnann; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, "
                "'numpy', numpy.__version__, 'fnann', fnann.__version__); print(jax.devices())")
    return [
        ("device and versions", [py, "-c", versions], {}, 120),
        ("nvidia-smi", ["nvidia-smi"] if shutil.which("nvidia-smi") else [py, "-c", "print('no nvidia-smi')"], {}, 30),
        ("fnann gradcheck", [py, "-m", "fnann", "gradcheck", *small], {}, 300),
        ("fnann gradcheck, batch norm and dropout", [py, "-m", "fnann", "gradcheck", "--norm", "batch", "--dropout", "0.1",
                                                     *small], {}, 300),
        ("fnann train, cold cache", [*train, "--out", os.path.join(tmp, "cold")], {}, 300),
        ("fnann train, warm cache", [*train, "--out", os.path.join(tmp, "warm")], {}, 300),
        ("the test suite", suite, {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}, 120 if quick else 330),
        ("bench_train.py", [py, "benchmarks/bench_train.py", *(["--sizes", "small", "--steps", "3", "--repeats", "1"]
                                                               if quick else ["--repeats", "3"])], {}, 300),
        ("large networks", [py, "-c", LARGE_SCRIPT, json.dumps(LARGE[size]), str(PEAK_N[size]), "1" if quick else "3"],
         {}, 400),
        ("bench_scale.py fit_many", [py, "benchmarks/bench_scale.py", "--part", "many",
                                     *(["--models", "2", "--epochs", "1", "--repeats", "1", "--no-cold"] if quick else [])], {}, 300),
        ("bench_norm.py", [py, "benchmarks/bench_norm.py", *(["--quick"] if quick else [])], {}, 300),
    ]


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run(quick: bool, out: str) -> int:
    """Runs every section and writes the report; returns how many sections failed."""
    failed, lines = 0, [f"# fnann accelerator check ({'quick' if quick else 'full'}), "
                        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}", ""]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for title, argv, extra, limit in sections(quick, tmp):
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
                   **extra}
            t = time.perf_counter()
            try:
                done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
                status, text = done.returncode, done.stdout + done.stderr
            except subprocess.TimeoutExpired as e:
                status, text = "timeout", f"stopped after {limit} s\n" + (e.stdout or b"").decode(errors="replace")
            seconds = time.perf_counter() - t
            failed += status != 0
            tail = "\n".join(text.strip().splitlines()[-40:])
            lines += [f"## {title}: {'ok' if status == 0 else f'FAILED ({status})'}, {seconds:.1f} s", "",
                      "```", tail, "```", ""]
            print(f"{title}: {'ok' if status == 0 else f'FAILED ({status})'} in {seconds:.1f} s", flush=True)
    lines.append(f"total {time.perf_counter() - start:.0f} s, {failed} section(s) failed")
    from fnann.atomic import atomic_write

    atomic_write(out, ("\n".join(lines) + "\n").encode())
    print(f"wrote {out}")
    return failed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one test file (any CPU, under a minute)")
    parser.add_argument("--out", default="gpu_report.md", help="the report to write (default gpu_report.md)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    if os.path.lexists(args.out) and not args.overwrite:
        parser.error(f"{args.out} exists; pass --overwrite to replace it")
    sys.path.insert(0, ROOT)  # fnann.atomic, from this checkout
    return 1 if run(args.quick, args.out) else 0


if __name__ == "__main__":
    sys.exit(main())
