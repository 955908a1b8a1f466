"""Verify your backprop: check a hand-derived derivative, and watch a wrong one get caught.

A new activation needs two things, g and its derivative g'. Here g is softplus,
g(z) = log(1 + e^z), whose derivative is the sigmoid. ``fnann.check_grads`` runs the
manual backward pass (which uses only the g' you wrote) in float64 and compares every
gradient array with ``jax.grad`` (which differentiates g itself) and with central finite
differences. Then we make a classic slip, using the sigmoid's own derivative
sigma(z)(1 - sigma(z)) for g', and the check fails on every layer below a softplus
(the output layer's gradient never uses g', so it still passes).

Teaches: ``fnann.elementwise``, ``check_grads`` and how to read its report.
"""

import os

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import fnann
import fnann.app.plots

QUICK = os.environ.get("FNANN_QUICK", "0") not in ("", "0")
FIGURES = os.environ.get("FNANN_FIGURES", os.path.join("runs", "examples"))  # README figures: examples/figures

softplus = fnann.elementwise("softplus", lambda z: jnp.logaddexp(z, 0.0), fnann.sigmoid.fn)
wrong = fnann.elementwise("softplus_wrong", softplus.fn,
                          lambda z: fnann.sigmoid.fn(z) * (1 - fnann.sigmoid.fn(z)))


def check(hidden, x, y):
    net = fnann.MLP([5, 8, 6, 3], hidden=hidden, output="softmax")
    params = fnann.init(jax.random.key(0), net)
    report = fnann.check_grads(net, "cross_entropy", params, x, y, n_fd=8 if QUICK else None)
    print(report, end="\n\n")
    return report


def main():
    x = jax.random.normal(jax.random.key(1), (16, 5))
    y = jax.random.randint(jax.random.key(2), (16,), 0, 3)   # integer class labels
    good, bad = check(softplus, x, y), check(wrong, x, y)
    print(f"g' = sigmoid:               passed = {good.passed}")
    print(f"g' = sigmoid (1 - sigmoid): passed = {bad.passed}  "
          f"(failing arrays: {', '.join(f'{r.param}{r.layer}' for r in bad.rows if not r.passed)})")

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True, layout="constrained")
    for ax, report, title in [(axes[0], good, "g' = sigmoid (correct)"),
                              (axes[1], bad, "g' = sigmoid(1 - sigmoid) (wrong)")]:
        labels = [f"{r.param}{r.layer}" for r in report.rows]
        pos = np.arange(len(labels))
        floor = 1e-18                                        # an exact 0 has no place on a log axis
        ax.bar(pos - 0.2, [max(r.autodiff_rel, floor) for r in report.rows], 0.4,
               label="vs jax.grad")
        ax.bar(pos + 0.2, [max(r.fd_rel, floor) for r in report.rows], 0.4,
               label="vs finite diff.")
        ax.axhline(report.autodiff_rtol, color="C0", ls=":", lw=1, label="tolerance")
        ax.axhline(report.fd_rtol, color="C1", ls=":", lw=1, label="tolerance")
        ax.set(xticks=pos, xticklabels=labels, yscale="log", ylim=(floor / 2, 10),
               title=f"{title}: {'passed' if report.passed else 'FAILED'}")
    axes[0].set_ylabel("max relative error per array")
    handles, names = axes[0].get_legend_handles_labels()     # bars first, each above its line
    axes[0].legend([handles[i] for i in (2, 0, 3, 1)], [names[i] for i in (2, 0, 3, 1)],
                   fontsize=7, ncols=2, loc="upper left")
    fig.suptitle("hand-derived gradients of a 5-8-6-3 softplus network, float64")
    path = fnann.app.plots.save_figure(fig, os.path.join(FIGURES, "verify_backprop.png"))
    print(f"saved {path}")
    if not good.passed or bad.passed:
        raise SystemExit("unexpected gradient check result")


if __name__ == "__main__":
    main()
