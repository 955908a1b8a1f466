"""Learn XOR with a tiny tanh network, writing the training loop out in full.

XOR is the classic problem a single layer cannot solve: no straight line separates the
points whose coordinates have equal signs from those whose signs differ. One hidden layer
of a few tanh units bends the boundary. The loop below is gradient descent by hand:
build the pure step once, jit it, then call it again and again, passing the parameters
and optimizer state in and getting new ones back. Nothing is hidden inside an object.

Teaches: ``train_step`` + ``jax.jit``, a sigmoid output with binary cross-entropy, and
reading a decision boundary off ``fnann.predict`` on a grid.
"""

import os

import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import fnann
import fnann.app.datasets
import fnann.app.plots

QUICK = os.environ.get("FNANN_QUICK", "0") not in ("", "0")
FIGURES = os.environ.get("FNANN_FIGURES", os.path.join("runs", "examples"))  # README figures: examples/figures


def main():
    data = fnann.app.datasets.load("xor", n_samples=400, noise=0.25, seed=0)
    y_train = data.y_train.astype(np.float32)         # 0/1 targets for the one sigmoid unit
    net = fnann.MLP([2, 4, 1], hidden="tanh", output="sigmoid")
    params = fnann.init(jax.random.key(0), net)
    opt = fnann.sgd(0.5)
    opt_state = opt.init(params)
    step = jax.jit(fnann.train_step(net, "binary_cross_entropy", opt))  # compiled once

    n_steps = 50 if QUICK else 1000
    for t in range(n_steps):                          # full-batch gradient descent
        params, opt_state, loss = step(params, opt_state, data.x_train, y_train)
        if t % (n_steps // 5) == 0 or t == n_steps - 1:
            print(f"step {t:4d}  loss {float(loss):.4f}")

    test_acc = fnann.accuracy(net, params, data.x_test, data.y_test.astype(np.float32))
    print(f"test accuracy {test_acc:.3f} on {len(data.y_test)} points")

    # The decision boundary: the network's probability of class 1 on a grid of inputs.
    grid = np.linspace(-3, 3, 200, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    p = np.asarray(fnann.predict(net, params, np.c_[gx.ravel(), gy.ravel()])).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=1.5)
    ax.scatter(*data.x_train.T, c=data.y_train, cmap="RdBu_r", s=10, edgecolors="k",
               linewidths=0.3)
    ax.set(xlabel="$x_1$ (standardized)", ylabel="$x_2$ (standardized)",
           title=f"XOR, 2-4-1 tanh network: test accuracy {test_acc:.2f}")
    path = fnann.app.plots.save_figure(fig, os.path.join(FIGURES, "xor.png"))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
