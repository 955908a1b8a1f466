"""scikit-learn's MLP on fnann: drop-in ``MLPClassifier`` and ``MLPRegressor``.

Change one import::

    from sklearn.neural_network import MLPClassifier   # before
    from fnann.sklearn import MLPClassifier            # after

Same constructor, attributes, validation and results (the same ``random_state`` gives the
same initial weights, batches and, in float64, the same weights after training to ~1e-8);
the forward and the hand-derived backward pass, the optimizers and L-BFGS are fnann's,
compiled by XLA for CPU, GPU or TPU. scikit-learn is an extra (``pip install
fnann[sklearn]``); the core never imports this package.
"""

from fnann.sklearn.estimators import MLPClassifier, MLPRegressor
from fnann.sklearn.sweep import GridSweepCV

__all__ = ["GridSweepCV", "MLPClassifier", "MLPRegressor"]
