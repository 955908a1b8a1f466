"""Regression: fit a noisy sine with an identity output and the mean squared error.

For classification the last layer squashes (softmax, sigmoid); for regression it must not,
so the output activation is the identity and the loss is MSE, the mean of (y_hat - y)^2
over every element. ``fnann.app.datasets.load("sine")`` standardizes x and y with the
training split's statistics, so the network sees inputs and targets of unit scale; the
dataset's ``scale_x`` and ``unscale_y`` map new inputs in and predictions back out.

Teaches: identity output + MSE, ``fnann.fit`` with validation data, and un-standardizing
predictions. A test MSE near noise^2 = 0.01 means the fit is as good as the noise allows.
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
NOISE = 0.1


def main():
    data = fnann.app.datasets.load("sine", n_samples=256, noise=NOISE, seed=0)
    net = fnann.MLP([1, 32, 32, 1], hidden="tanh", output="identity")
    params = fnann.init(jax.random.key(0), net)
    params, history = fnann.fit(net, "mse", fnann.adam(1e-2), params, data.x_train, data.y_train,
                                key=jax.random.key(1), epochs=10 if QUICK else 300,
                                batch_size=32, validation_data=(data.x_test, data.y_test))
    print(f"epochs {len(history['loss'])}: final training loss {history['loss'][-1]:.4f}, "
          f"validation loss {history['val_loss'][-1]:.4f} (standardized units)")

    # Back in the original units: predictions and targets times the target std, plus its mean.
    y_test_hat = data.unscale_y(np.asarray(fnann.predict(net, params, data.x_test)))
    test_mse = float(np.mean((y_test_hat - data.unscale_y(data.y_test)) ** 2))
    print(f"test MSE in original units {test_mse:.4f} (noise variance {NOISE ** 2:.4f})")

    x_plot = np.linspace(-np.pi, np.pi, 300, dtype=np.float32)[:, None]
    y_plot = data.unscale_y(np.asarray(fnann.predict(net, params, data.scale_x(x_plot))))
    fig, ax = plt.subplots(figsize=(6, 3.8))
    x_train = data.x_train * data.x_std + data.x_mean            # undo the standardization
    ax.scatter(x_train, data.unscale_y(data.y_train), s=8, color="0.6", label="training data")
    ax.plot(x_plot, np.sin(x_plot), "k--", lw=1.2, label="truth: sin(x)")
    ax.plot(x_plot, y_plot, color="C3", lw=2, label="network")
    ax.set(xlabel="x", ylabel="y", title=f"1-32-32-1 tanh, MSE; test MSE {test_mse:.4f}")
    ax.legend(loc="upper left", fontsize=8)
    path = fnann.app.plots.save_figure(fig, os.path.join(FIGURES, "sine_regression.png"))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
