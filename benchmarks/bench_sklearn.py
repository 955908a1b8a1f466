"""fnann.sklearn against scikit-learn itself: fit time and accuracy, side by side in one run.

scikit-learn runs in its own process, which never imports JAX (see ``in_sklearn_process``).
Equal work on both sides: a fixed number of epochs (``tol=0``, ``n_iter_no_change=max_iter``),
the same constructor arguments, the same data (float64, as scikit-learn computes). fnann's
"cold" fit is a fresh estimator's first fit in this process, compilation included (what a
script pays once); "warm" is the median of ``--repeats`` further fits of new estimators
with the same configuration (what every later fit, a cross-validation split or a refit,
pays). ``f32`` is fnann with ``dtype="float32"`` (scikit-learn's float32 input, computed in
float32 by both). Accuracy is on a held-out quarter of the rows.

The bundled part scores both estimators, default arguments, on scikit-learn's five bundled
datasets (digits, iris, wine, breast cancer; diabetes for the regressor) over 5 seeds.

The sweep part times a 16-point ``learning_rate_init`` x ``alpha`` grid with 3-fold
cross-validation: ``GridSweepCV`` (one program per split) against ``GridSearchCV`` over
scikit-learn's estimator and over fnann's (one fit per candidate and split).

    python benchmarks/bench_sklearn.py                      # digits, 10k, 100k, 1M rows; the sweep
    python benchmarks/bench_sklearn.py --rows 10000 --no-sweep
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np


def dataset(rows: int | None):
    """digits (1797 x 64, scaled to [0, 1]) or ``make_classification`` rows x 50, 10 classes."""
    from sklearn.datasets import load_digits, make_classification
    from sklearn.model_selection import train_test_split

    if rows is None:
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    else:
        X, y = make_classification(rows, 50, n_informative=30, n_classes=10, random_state=0)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sklearn_fit(rows, args: dict):
    """scikit-learn's fit, run in the scikit-learn process: (seconds, held-out score, coefs_)."""
    from sklearn import neural_network as sk

    X, X_test, y, y_test = dataset(rows)
    theirs = sk.MLPClassifier(**args)
    seconds = timed(lambda: theirs.fit(X, y))
    return seconds, theirs.score(X_test, y_test), theirs.coefs_


def sklearn_search(args: dict, grid: dict) -> float:
    from sklearn import neural_network as sk
    from sklearn.model_selection import GridSearchCV

    X, _, y, _ = dataset(None)
    return timed(lambda: GridSearchCV(sk.MLPClassifier(**args), grid, cv=3).fit(X, y))


def sklearn_bundled(name: str, seed: int, max_iter: int):
    X_train, X_test, y_train, y_test = bundled_split(name, seed)
    from sklearn import neural_network as sk

    est = (sk.MLPRegressor if name == "diabetes" else sk.MLPClassifier)(random_state=seed, max_iter=max_iter)
    return timed(lambda: est.fit(X_train, y_train)), est.score(X_test, y_test)


def in_sklearn_process(fn, *args):
    """``fn(*args)`` in a separate process that never imports JAX: XLA's CPU threads keep
    spinning for a moment after each program, and numpy's BLAS threads in the same process
    then run several times slower (measured: 1.0 s alone, 6-10 s right after a fnann fit)."""
    global _POOL
    if _POOL is None:
        import concurrent.futures
        import multiprocessing

        _POOL = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                       initializer=warnings.simplefilter, initargs=("ignore",))
    return _POOL.submit(fn, *args).result()


_POOL = None


def compare(rows, hidden, epochs: int, repeats: int) -> dict:
    from fnann.sklearn import MLPClassifier

    X, X_test, y, y_test = dataset(rows)
    args = dict(hidden_layer_sizes=hidden, max_iter=epochs, tol=0.0, n_iter_no_change=epochs, random_state=0)
    seconds, score, coefs = in_sklearn_process(sklearn_fit, rows, args)
    ours = [MLPClassifier(**args) for _ in range(repeats + 1)]
    f32 = [MLPClassifier(**args, dtype="float32") for _ in range(repeats + 1)]
    row = {"sklearn": seconds, "cold": timed(lambda: ours[0].fit(X, y))}
    row["warm"] = statistics.median(timed(lambda e=e: e.fit(X, y)) for e in ours[1:])
    timed(lambda: f32[0].fit(X, y))
    row["f32"] = statistics.median(timed(lambda e=e: e.fit(X, y)) for e in f32[1:])
    row["acc sklearn"], row["acc fnann"] = score, ours[0].score(X_test, y_test)
    row["acc f32"] = f32[0].score(X_test, y_test)
    row["same weights"] = max(np.max(np.abs(a - b)) / np.max(np.abs(b)) for a, b in zip(ours[0].coefs_, coefs))
    return row


def sweep(epochs: int) -> dict:
    from sklearn.model_selection import GridSearchCV

    from fnann.sklearn import GridSweepCV, MLPClassifier

    X, _, y, _ = dataset(None)
    grid = {"learning_rate_init": [1e-3, 3e-3, 1e-2, 3e-2], "alpha": [1e-5, 1e-4, 1e-3, 1e-2]}
    args = dict(hidden_layer_sizes=(100,), max_iter=epochs, tol=0.0, n_iter_no_change=epochs, random_state=0)
    out = {"GridSearchCV(sklearn)": in_sklearn_process(sklearn_search, args, grid)}
    out["GridSearchCV(fnann)"] = timed(lambda: GridSearchCV(MLPClassifier(**args), grid, cv=3).fit(X, y))
    out["GridSweepCV cold"] = timed(lambda: GridSweepCV(MLPClassifier(**args), grid, cv=3).fit(X, y))
    out["GridSweepCV warm"] = timed(lambda: GridSweepCV(MLPClassifier(**args), grid, cv=3).fit(X, y))
    return out


LOADERS = ("digits", "iris", "wine", "breast_cancer", "diabetes")


def bundled_split(name: str, seed: int):
    """A bundled dataset's standardized 75/25 split for ``seed``."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def bundled(seeds: int = 5) -> None:
    """Held-out accuracy (R² for diabetes) over ``seeds`` seeds on scikit-learn's bundled
    datasets, default arguments (adam, at most 200 epochs, 500 for diabetes, tol 1e-4) on
    standardized features, both estimators from the same ``random_state``."""
    from fnann.sklearn import MLPClassifier, MLPRegressor

    for name in LOADERS:
        scores, times = {"fnann": [], "sklearn": []}, {"fnann": 0.0, "sklearn": 0.0}
        max_iter = 500 if name == "diabetes" else 200
        for seed in range(seeds):
            X_train, X_test, y_train, y_test = bundled_split(name, seed)
            est = (MLPRegressor if name == "diabetes" else MLPClassifier)(random_state=seed, max_iter=max_iter)
            times["fnann"] += timed(lambda est=est: est.fit(X_train, y_train))
            scores["fnann"].append(est.score(X_test, y_test))
            seconds, score = in_sklearn_process(sklearn_bundled, name, seed, max_iter)
            times["sklearn"] += seconds
            scores["sklearn"].append(score)
        print(f"{name:>14}: " + "  ".join(f"{k} {np.mean(v):.4f} ± {np.std(v):.4f} ({times[k]:.1f} s)"
                                        for k, v in scores.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[0, 10_000, 100_000, 1_000_000],
                        help="make_classification rows (0: digits)")
    parser.add_argument("--hidden", default="100;256,256", help="networks, ';'-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--no-datasets", action="store_true", help="skip the bundled datasets' scores")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import jax
    import sklearn
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, scikit-learn {sklearn.__version__}")
    epochs = {0: 50, 10_000: 10, 100_000: 3, 1_000_000: 1}
    print(f"{'data':>9} {'hidden':>9} {'ep':>3} {'sklearn':>8} {'cold':>7} {'warm':>7} {'f32':>7} "
          f"{'skl/warm':>8} {'skl/cold':>8} {'skl/f32':>7}  acc sklearn/fnann/f32   weights")
    for rows in args.rows:
        for hidden in args.hidden.split(";"):
            sizes = tuple(int(h) for h in hidden.split(","))
            n_epochs = epochs.get(rows, 3)
            r = compare(rows or None, sizes, n_epochs, args.repeats if rows <= 10_000 else 1)
            print(f"{rows or 'digits':>9} {hidden:>9} {n_epochs:>3} {r['sklearn']:8.2f} {r['cold']:7.2f} "
                  f"{r['warm']:7.2f} {r['f32']:7.2f} {r['sklearn'] / r['warm']:8.2f} {r['sklearn'] / r['cold']:8.2f} "
                  f"{r['sklearn'] / r['f32']:7.2f}  {r['acc sklearn']:.4f}/{r['acc fnann']:.4f}/{r['acc f32']:.4f}"
                  f"  {r['same weights']:.1e}", flush=True)
    if not args.no_datasets:
        bundled()
    if not args.no_sweep:
        out = sweep(30)
        base = out["GridSearchCV(sklearn)"]
        for name, seconds in out.items():
            print(f"sweep 16 x 3 folds, 30 epochs: {name:>22} {seconds:7.2f} s  ({base / seconds:.2f}x sklearn)")


if __name__ == "__main__":
    main()
