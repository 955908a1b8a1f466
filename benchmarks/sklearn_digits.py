"""The scikit-learn reference for ``fnann train``'s default run (issue 11): what a user
would write by hand for the same job, timed as a whole by ``benchmarks/bench_cli.py``.

Import, load the bundled digits, stratified 80/20 split (``random_state=0``), standardise,
fit ``MLPClassifier(hidden_layer_sizes=(128, 64), random_state=0)``, print the test accuracy
and pickle the fitted scaler and model to the path given.

    python benchmarks/sklearn_digits.py /tmp/digits.pkl
"""

import pickle
import sys

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler


def main(path: str) -> None:
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y,
                                                        random_state=0)
    scaler = StandardScaler().fit(x_train)
    model = MLPClassifier(hidden_layer_sizes=(128, 64), random_state=0)
    model.fit(scaler.transform(x_train), y_train)
    print(f"test accuracy {model.score(scaler.transform(x_test), y_test):.4f}")
    with open(path, "wb") as f:
        pickle.dump((scaler, model), f)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/sklearn_digits.py MODEL.pkl")
    main(sys.argv[1])
