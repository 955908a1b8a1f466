"""Vanishing gradients: where a deep sigmoid network's error signal fades, seen with fnann.diagnostics.

Backprop multiplies the error by one factor per layer on its way down,
delta^(l) = (W^(l+1))^T delta^(l+1) * sigma'(Z^(l)). The sigmoid's derivative is at most
1/4, so in a deep sigmoid network ||dL/dW^(l)|| shrinks roughly geometrically towards the
input and the first layers barely learn. ReLU's derivative is 0 or 1 and, with He
initialization, the gradient keeps its size through every layer.

Teaches: ``diagnostics.diagnose`` gives every layer's ||W||, ||dL/dW||, ||delta||, update
ratio (here for Adam's first step), dead and saturated units in one pure call, vmapped
over the initializations. While training, ``fnann train --diagnostics`` (or a
``diagnostics.Recorder`` passed to ``fit``) records them every epoch.
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
from fnann.diagnostics import diagnose, format_diagnostics

QUICK = os.environ.get("FNANN_QUICK", "0") not in ("", "0")
FIGURES = os.environ.get("FNANN_FIGURES", os.path.join("runs", "examples"))  # README figures: examples/figures
DEPTH = 10  # weight layers, W^(1) .. W^(10)


def deep_net(hidden, n_in):
    return fnann.MLP([n_in] + [32] * (DEPTH - 1) + [10], hidden=hidden, output="softmax")


def main():
    data = fnann.app.datasets.load("digits", seed=0)
    n = 64 if QUICK else 512
    x, y = data.x_train[:n], data.y_train[:n]
    keys = jax.random.split(jax.random.key(0), 2 if QUICK else 10)
    layers = np.arange(1, DEPTH + 1)

    fig, ax = plt.subplots(figsize=(6, 4))
    for hidden, color in [("sigmoid", "C0"), ("relu", "C3")]:
        net = deep_net(hidden, x.shape[1])
        inits = [fnann.init(k, net) for k in keys]  # Glorot for sigmoid, He for ReLU
        stack = jax.tree.map(lambda *a: np.stack(a), *inits)  # one leading axis over the inits
        diag = jax.jit(jax.vmap(lambda p: diagnose(net, p, x, y, "cross_entropy", fnann.adam(1e-3))))(stack)
        print(f"{net}, first initialization:\n{format_diagnostics(jax.tree.map(lambda f: f[0], diag), net)}")
        norms = np.asarray(diag.dW_norm).mean(axis=0)  # ||dL/dW^(l)||, averaged over the inits
        print(f"{hidden}: layer 1 / layer {DEPTH} gradient norm {norms[0] / norms[-1]:.1e}\n")
        ax.plot(layers, norms, "o-", color=color, label=f"{hidden} hidden layers")
    ax.set(xlabel="layer l (1 = next to the input)", yscale="log", xticks=layers,
           ylabel=r"$\|\partial L / \partial W^{(l)}\|_F$",
           title=f"gradient norms at init, {DEPTH}-layer net on digits ({len(keys)} inits)")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    print(f"saved {fnann.app.plots.save_figure(fig, os.path.join(FIGURES, 'vanishing_gradients.png'))}")


if __name__ == "__main__":
    main()
