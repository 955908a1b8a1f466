"""The textbook network: a 64-128-64-10 MLP (ReLU, softmax, Adam) on 8x8 handwritten digits.

Two hidden ReLU layers, a softmax output read as class probabilities, cross-entropy loss
taken straight from integer labels, and Adam with mini-batches of 32. The training set is
split once more: ``fit`` reports loss and accuracy on a validation part after every epoch,
and the test set is touched exactly once, at the end, for the number you would report.

Teaches: ``fnann.fit`` with ``validation_data``, its history dict, ``fnann.evaluate`` and
``fnann.app.plots.plot_history``.
"""

import os

import jax

import fnann
import fnann.app.datasets
import fnann.app.plots

QUICK = os.environ.get("FNANN_QUICK", "0") not in ("", "0")
FIGURES = os.environ.get("FNANN_FIGURES", os.path.join("runs", "examples"))  # README figures: examples/figures


def main():
    data = fnann.app.datasets.load("digits", seed=0)             # 1797 images, 8x8 = 64 pixels
    n_val = len(data.x_train) // 5                           # hold out 20% for validation
    x_train, y_train = data.x_train[n_val:], data.y_train[n_val:]
    x_val, y_val = data.x_train[:n_val], data.y_train[:n_val]
    print(f"train {len(x_train)}, validation {n_val}, test {len(data.x_test)} images")

    net = fnann.MLP([data.n_features, 128, 64, data.n_outputs], hidden="relu", output="softmax")
    params = fnann.init(jax.random.key(0), net)             # He init for the ReLU layers
    params, history = fnann.fit(net, "cross_entropy", fnann.adam(1e-3), params, x_train, y_train,
                                key=jax.random.key(1), epochs=3 if QUICK else 40, batch_size=32,
                                validation_data=(x_val, y_val))
    n = len(history["epoch"])
    for e in sorted({*range(0, n, max(1, n // 4)), n - 1}):  # a few epochs and the last
        print(f"epoch {e + 1:3d}  loss {history['loss'][e]:.4f}  val_loss "
              f"{history['val_loss'][e]:.4f}  val_accuracy {history['val_accuracy'][e]:.3f}")

    test = fnann.evaluate(net, params, data.x_test, data.y_test, "cross_entropy")
    print(f"test loss {test['loss']:.4f}, test accuracy {test['accuracy']:.4f}")
    title = f"digits, 64-128-64-10 ReLU + Adam: test accuracy {test['accuracy']:.3f}"
    path = fnann.app.plots.plot_history(history, os.path.join(FIGURES, "digits.png"), title=title)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
