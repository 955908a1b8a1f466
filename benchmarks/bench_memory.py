"""Resident memory of a long-running process that calls ``fit`` on ever new shapes.

Each mode runs in a fresh interpreter (so the resident set is its own): ``--fits`` calls of
``fnann.fit`` (one epoch), each on a random network and data shape, which compiles a new
epoch every time and keeps fnann's caches at their bound. It prints the resident set
(``/proc/self/statm``, Linux) before and after, the median growth per fit over the last half
of the calls (once the caches are full), and, for mode ``clear``, the resident set after
``fnann.clear_caches()`` at the end. No assertions: tests/test_memory.py bounds it.

    python benchmarks/bench_memory.py              # 200 fits per mode
    python benchmarks/bench_memory.py --fits 60 --modes plain
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import gc, json, os, statistics, sys
import numpy as np
import jax
import fnann

fits, mode = int(sys.argv[1]), sys.argv[2]
PAGE = os.sysconf("SC_PAGE_SIZE")

def rss_mb():
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20

rng = np.random.default_rng(0)
start, rss = rss_mb(), []
for call in range(fits):
    sizes = [int(rng.integers(2, 40)) for _ in range(int(rng.integers(2, 4)))] + [int(rng.integers(2, 6))]
    net = fnann.MLP(sizes)
    n = int(rng.integers(16, 96))
    x = rng.normal(size=(n, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], size=n).astype(np.int32)
    params = fnann.init(jax.random.key(call), net)
    fnann.fit(net, "cross_entropy", fnann.adam(1e-3), params, x, y, key=jax.random.key(call),
              epochs=1, batch_size=int(rng.choice([8, 16, 32])))
    rss.append(rss_mb())
half = rss[len(rss) // 2:]
out = {"mode": mode, "fits": fits, "start_mb": start, "end_mb": rss[-1],
       "median_growth_per_fit_mb": statistics.median(np.diff(half)) if len(half) > 1 else 0.0,
       "mean_growth_per_fit_mb": (half[-1] - half[0]) / max(len(half) - 1, 1)}
if mode == "clear":
    fnann.clear_caches()
    out["after_clear_caches_mb"] = rss_mb()
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=200)
    parser.add_argument("--modes", nargs="+", default=["plain", "clear"], choices=["plain", "clear"])
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for mode in args.modes:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(args.fits), mode], env=env,
                              capture_output=True, text=True, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        line = (f"{mode:5s} {r['fits']} fits: RSS {r['start_mb']:.0f} -> {r['end_mb']:.0f} MB, "
                f"growth per fit (last half) median {r['median_growth_per_fit_mb']:.2f} MB, "
                f"mean {r['mean_growth_per_fit_mb']:.2f} MB")
        if "after_clear_caches_mb" in r:
            line += f"; after clear_caches {r['after_clear_caches_mb']:.0f} MB"
        print(line, flush=True)


if __name__ == "__main__":
    main()
