"""Time to the first result: the whole ``fnann train`` command against the equivalent
scikit-learn script (issue 11), wall time of each process as a user waits for it.

Every variant runs as its own subprocess (a fresh interpreter: imports, data loading,
compilation, training, evaluation, saving), timed from this parent, round-robin so that all
of them see the same machine conditions, after one untimed round that warms the OS file
cache and primes the warm compilation cache:

- ``sklearn``: ``benchmarks/sklearn_digits.py`` (import, load digits, stratified 80/20
  split, StandardScaler, ``MLPClassifier(hidden_layer_sizes=(128, 64))``, score, pickle).
- ``fnann warm``: the default ``fnann train`` (gradient check, 60 epochs, test accuracy,
  checkpoint, PNG) into a fresh ``--out``, with a ``--cache-dir`` primed by the untimed round.
- ``fnann empty``: the same with a fresh, empty ``--cache-dir`` on every run.
- ``fnann bare warm``: ``fnann train --no-gradcheck --no-plot``, warm cache.

``fnann`` runs as ``sys.executable -m fnann`` with this checkout first on ``PYTHONPATH``.
The table shows the median, min and max seconds of ``--repeats`` runs, the ratio of the
median to sklearn's, and the test accuracy each run printed (issue 11's goals: warm <= 1.0x,
empty <= 2x). The header records the thread settings and CPU count, which move all figures.

    python benchmarks/bench_cli.py              # 5 rounds
    python benchmarks/bench_cli.py --repeats 3 --variants sklearn,warm
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKLEARN_SCRIPT = os.path.join(ROOT, "benchmarks", "sklearn_digits.py")
ACCURACY = re.compile(r"test accuracy (\d+\.\d+)")
ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS",
            "JAX_PLATFORMS", "FNANN_CACHE_DIR")


def fnann_train(*options: str):
    """The argv of ``fnann train`` run ``i`` in the scratch folder ``tmp``: a fresh --out."""
    def argv(tmp: str, i: str, cache: str):
        return [sys.executable, "-m", "fnann", "train", "--out", os.path.join(tmp, f"out-{i}"),
                "--cache-dir", cache, *options]
    return argv


WARM = fnann_train()
BARE = fnann_train("--no-gradcheck", "--no-plot")
VARIANTS = {  # name: (label, argv(tmp, run id)); the warm ones share one primed cache
    "sklearn": ("sklearn script", lambda tmp, i: [sys.executable, SKLEARN_SCRIPT,
                                                   os.path.join(tmp, f"model-{i}.pkl")]),
    "warm": ("fnann warm", lambda tmp, i: WARM(tmp, i, os.path.join(tmp, "cache-warm"))),
    "empty": ("fnann empty", lambda tmp, i: WARM(tmp, i, os.path.join(tmp, f"cache-{i}"))),
    "bare": ("fnann bare warm", lambda tmp, i: BARE(tmp, i, os.path.join(tmp, "cache-warm"))),
}


def run_once(argv: list[str], env: dict) -> tuple[float, float | None]:
    """Wall seconds of one process, as the parent sees them, and the accuracy it printed."""
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}")
    found = ACCURACY.findall(proc.stdout)
    return seconds, float(found[-1]) if found else None


def header(names: list[str], repeats: int) -> str:
    versions = []
    for package in ("jax", "jaxlib", "scikit-learn", "numpy"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = "  ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in ENV_VARS)
    return (f"bench_cli: {', '.join(names)}; {repeats} timed rounds after 1 untimed\n"
            f"python {platform.python_version()}, {', '.join(versions)}; nproc {cpus}\n{env}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {','.join(VARIANTS)} (default: all)")
    args = parser.parse_args()
    names = [v.strip() for v in args.variants.split(",")]
    unknown = set(names) - set(VARIANTS)
    if unknown or args.repeats < 1:
        parser.error(f"unknown variants {sorted(unknown)}" if unknown else "--repeats must be >= 1")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    print(header(names, args.repeats), flush=True)

    times = {name: [] for name in names}
    accuracies = {name: set() for name in names}
    with tempfile.TemporaryDirectory(prefix="bench_cli-") as tmp:
        for round_ in range(args.repeats + 1):  # round 0: untimed, primes the warm cache
            for name in names:
                seconds, accuracy = run_once(VARIANTS[name][1](tmp, f"{name}-{round_}"), env)
                if round_:
                    times[name].append(seconds)
                    accuracies[name].add(accuracy)
            print(f"round {round_}{' (untimed)' if not round_ else ''}: "
                  + "  ".join(f"{n} {times[n][-1]:.2f}s" for n in names if round_), flush=True)

    base = statistics.median(times["sklearn"]) if "sklearn" in times else None
    print(f"\n{'variant':<18}{'median s':>10}{'min s':>8}{'max s':>8}{'x sklearn':>11}  accuracy")
    for name in names:
        t = times[name]
        median = statistics.median(t)
        ratio = f"{median / base:.2f}" if base else "-"
        accuracy = ", ".join("none" if a is None else f"{a:.4f}" for a in sorted(
            accuracies[name], key=lambda a: -1 if a is None else a))
        print(f"{VARIANTS[name][0]:<18}{median:>10.2f}{min(t):>8.2f}{max(t):>8.2f}{ratio:>11}"
              f"  {accuracy}")


if __name__ == "__main__":
    main()
