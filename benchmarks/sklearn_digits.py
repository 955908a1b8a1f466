"""The scikit-learn reference for ``fnann train``'s default run, on the same split.

What a user would write by hand for the same job, timed as a whole by
``benchmarks/bench_cli.py``: import, load the bundled digits with **fnann's** stratified
80/20 split for ``--seed`` (the rows ``fnann train --seed S`` trains and tests on; the split
is plain numpy, ``import fnann`` loads no JAX), standardise with the training rows'
statistics, fit ``MLPClassifier(hidden_layer_sizes=(128, 64), random_state=S)``, print the
test accuracy and pickle the fitted scaler and model to the path given:

    python benchmarks/sklearn_digits.py /tmp/digits.pkl [--seed S]

``--compare 0-8`` instead runs, for each seed, this script's model and the default
``fnann train --seed S`` (a fresh process each, ``--no-gradcheck --no-plot``) on that same
split, and prints both test accuracies and their medians (README, "Start-up"):

    python benchmarks/sklearn_digits.py --compare 0-8
"""

import argparse
import os
import pickle
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
ACCURACY = re.compile(r"test accuracy (\d+\.\d+)")


def sklearn_accuracy(seed: int, path: str | None = None) -> float:
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    from fnann.app.datasets import load

    data = load("digits", seed=seed, standardize=False)     # fnann's split for this seed
    scaler = StandardScaler().fit(data.x_train)
    model = MLPClassifier(hidden_layer_sizes=(128, 64), random_state=seed)
    model.fit(scaler.transform(data.x_train), data.y_train)
    accuracy = model.score(scaler.transform(data.x_test), data.y_test)
    if path is not None:
        with open(path, "wb") as f:
            pickle.dump((scaler, model), f)
    return accuracy


def fnann_accuracy(seed: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-m", "fnann", "train", "--seed", str(seed),
                              "--out", tmp, "--no-gradcheck", "--no-plot"],
                             capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return float(ACCURACY.findall(out)[-1])


def seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def compare(seed_list: list[int]) -> None:
    rows = [(s, sklearn_accuracy(s), fnann_accuracy(s)) for s in seed_list]
    print(f"{'seed':>4}  {'scikit-learn':>12}  {'fnann train':>11}")
    for s, a, b in rows:
        print(f"{s:>4}  {a:>12.4f}  {b:>11.4f}")
    print(f"{'median':>4}  {statistics.median(r[1] for r in rows):>12.4f}  "
          f"{statistics.median(r[2] for r in rows):>11.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="where to pickle (scaler, model)")
    parser.add_argument("--seed", type=int, default=0, help="fnann's split seed (default 0)")
    parser.add_argument("--compare", type=seeds, metavar="A-B",
                        help="seeds to compare scikit-learn with fnann train on")
    args = parser.parse_args()
    if args.compare:
        compare(args.compare)
    elif args.model:
        print(f"test accuracy {sklearn_accuracy(args.seed, args.model):.4f}")
    else:
        parser.error("give MODEL.pkl or --compare A-B")


if __name__ == "__main__":
    main()
