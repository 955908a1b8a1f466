"""Vanishing gradients: per-layer gradient norms of a deep sigmoid network against a ReLU one.

Backprop multiplies the error by one factor per layer on its way down,
delta^(l) = (W^(l+1))^T delta^(l+1) * sigma'(Z^(l)). The sigmoid's derivative is at most
1/4, so in a deep sigmoid network ||dL/dW^(l)|| shrinks roughly geometrically towards the
input and the first layers barely learn. ReLU's derivative is 0 or 1 and, with He
initialization, the gradient keeps its size through every layer.

Teaches: ``forward_trace`` keeps every Z^(l) and A^(l); ``backward`` turns them into the
gradient layer by layer, and ``grads[l - 1].W`` is dL/dW^(l). Measured at initialization.
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
DEPTH = 10  # weight layers, W^(1) .. W^(10)


def layer_grad_norms(hidden, x, y, n_keys):
    """||dL/dW^(l)|| for l = 1..DEPTH, averaged over ``n_keys`` random initializations."""
    net = fnann.MLP([x.shape[1]] + [32] * (DEPTH - 1) + [10], hidden=hidden, output="softmax")
    norms = []
    for k in range(n_keys):
        params = fnann.init(jax.random.key(k), net)  # Glorot for sigmoid, He for ReLU
        # trace.Z[l - 1] is Z^(l) and trace.A[l] is A^(l); grads[l - 1].W is dL/dW^(l).
        _, trace = fnann.forward_trace(net, params, x)
        grads = fnann.backward(net, params, trace, y, "cross_entropy")
        norms.append([float(np.linalg.norm(g.W)) for g in grads])  # Frobenius norm per layer
    return np.mean(norms, axis=0)


def main():
    data = fnann.app.datasets.load("digits", seed=0)
    n = 64 if QUICK else 512
    x, y = data.x_train[:n], data.y_train[:n]
    n_keys = 2 if QUICK else 10
    layers = np.arange(1, DEPTH + 1)

    fig, ax = plt.subplots(figsize=(6, 4))
    for hidden, color in [("sigmoid", "C0"), ("relu", "C3")]:
        norms = layer_grad_norms(hidden, x, y, n_keys)
        print(f"{hidden:8s} ||dL/dW^(l)||, l = 1..{DEPTH}: " + " ".join(f"{v:.1e}" for v in norms))
        print(f"{'':8s} layer 1 / layer {DEPTH}: {norms[0] / norms[-1]:.1e}")
        ax.plot(layers, norms, "o-", color=color, label=f"{hidden} hidden layers")
    ax.set(xlabel="layer l (1 = next to the input)", yscale="log", xticks=layers,
           ylabel=r"$\|\partial L / \partial W^{(l)}\|_F$",
           title=f"gradient norms at init, {DEPTH}-layer net on digits ({n_keys} inits)")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    path = fnann.app.plots.save_figure(fig, os.path.join(FIGURES, "vanishing_gradients.png"))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
