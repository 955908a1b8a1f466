"""Four optimizers on one problem: SGD, momentum, RMSProp and Adam on two spirals.

A fair race: the same network, the same initial parameters, the same data order (the same
``key``), the same number of steps; only the update rule changes. Each optimizer is an
``init``/``update`` pair over the parameter pytree: momentum keeps a velocity
(v <- gamma v + lr g), RMSProp a running mean of g^2 that scales each coordinate's step,
and Adam both, with bias correction. SGD and momentum get the same learning rate, so the
gap between their curves is momentum's own doing; RMSProp and Adam share a larger one.

Teaches: ``fnann.sgd``/``momentum``/``rmsprop``/``adam`` are interchangeable arguments
of ``fit``; plotting loss curves on a log scale to compare rates of convergence.
"""

import os

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import fnann
import fnann.app.datasets
import fnann.app.plots

QUICK = os.environ.get("FNANN_QUICK", "0") not in ("", "0")
FIGURES = os.environ.get("FNANN_FIGURES", os.path.join("runs", "examples"))  # README figures: examples/figures

OPTIMIZERS = {
    "sgd (lr 0.05)": fnann.sgd(0.05),
    "momentum (lr 0.05, gamma 0.9)": fnann.momentum(0.05, gamma=0.9),
    "rmsprop (lr 0.01)": fnann.rmsprop(0.01),
    "adam (lr 0.01)": fnann.adam(0.01),
}


def main():
    data = fnann.app.datasets.load("spirals", n_samples=600, noise=0.2, seed=0)
    net = fnann.MLP([2, 32, 32, 2], hidden="tanh", output="softmax")
    params0 = fnann.init(jax.random.key(0), net)             # one initialization for all
    epochs = 5 if QUICK else 300

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, opt in OPTIMIZERS.items():
        params, history = fnann.fit(net, "cross_entropy", opt, params0, data.x_train,
                                    data.y_train, key=jax.random.key(1), epochs=epochs,
                                    batch_size=32)
        test_acc = fnann.accuracy(net, params, data.x_test, data.y_test)
        print(f"{name:30s} final loss {history['loss'][-1]:.4f}  test accuracy {test_acc:.3f}")
        ax.plot([e + 1 for e in history["epoch"]], history["loss"], label=name)
    ax.set(xlabel="epoch", ylabel="training loss (cross-entropy)", yscale="log",
           title="two spirals, 2-32-32-2 tanh: same init, same batches")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    path = fnann.app.plots.save_figure(fig, os.path.join(FIGURES, "optimizers.png"))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
