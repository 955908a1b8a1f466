"""fnann: the textbook feed-forward neural network in pure JAX.

Layers Z = W A + b and A = sigma(Z), a hand-derived backward pass (the delta recursion)
verified against ``jax.grad`` and finite differences, optimizers as explicit pytree
transforms, and compiled training. The README states the mathematics and conventions.

Layout: the math (``activations``, ``losses``, ``mlp``, ``backprop``, ``gradcheck``,
``optim``, ``train``, ``predict``) never imports the application (``fnann.app``: the
command line, datasets, plots and checkpoint files). ``fnann.datasets`` and ``fnann.plots``
are the app's modules, imported on first use.
"""

from fnann.activations import (
    ACTIVATIONS,
    Activation,
    elementwise,
    get_activation,
    identity,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from fnann.backprop import backward, backward_trace, dense_backward, loss_and_grad, objective
from fnann.gradcheck import GradCheckReport, check_grads
from fnann.losses import LOSSES, Loss, binary_cross_entropy, cross_entropy, get_loss, mse
from fnann.mlp import MLP, Dense, Trace, dense_forward, forward, forward_trace, init
from fnann import diagnostics, optim
from fnann.optim import schedules
from fnann.optim import (
    AdamState,
    EmptyState,
    MomentumState,
    Optimizer,
    RMSPropState,
    SGDState,
    adam,
    adamw,
    add_decayed_weights,
    apply_updates,
    as_optimizer,
    chain,
    clip_by_global_norm,
    momentum,
    rmsprop,
    sgd,
    weights_only,
)
from fnann.predict import accuracy, evaluate, predict
from fnann.train import TrainingDivergedError, TrainState, fit, train_step
from fnann.caches import cache_info, clear_caches
from fnann.summaries import Summary, summary
from fnann.sweep import FitManyResult, fit_many
from fnann import parallel
from fnann.app.checkpoint import Checkpoint, load, save

__version__ = "0.1.0"

__all__ = [
    "AdamState",
    "Checkpoint",
    "EmptyState",
    "MomentumState",
    "Optimizer",
    "RMSPropState",
    "SGDState",
    "TrainState",
    "TrainingDivergedError",
    "accuracy",
    "adam",
    "cache_info",
    "clear_caches",
    "adamw",
    "as_optimizer",
    "add_decayed_weights",
    "apply_updates",
    "chain",
    "clip_by_global_norm",
    "datasets",
    "diagnostics",
    "plots",
    "evaluate",
    "fit",
    "fit_many",
    "FitManyResult",
    "parallel",
    "load",
    "momentum",
    "optim",
    "predict",
    "rmsprop",
    "save",
    "schedules",
    "sgd",
    "summary",
    "Summary",
    "train_step",
    "weights_only",
    "ACTIVATIONS",
    "Activation",
    "Dense",
    "GradCheckReport",
    "LOSSES",
    "Loss",
    "MLP",
    "Trace",
    "backward",
    "backward_trace",
    "binary_cross_entropy",
    "check_grads",
    "cross_entropy",
    "dense_backward",
    "dense_forward",
    "elementwise",
    "forward",
    "forward_trace",
    "get_activation",
    "get_loss",
    "identity",
    "init",
    "loss_and_grad",
    "mse",
    "objective",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]


_APP_MODULES = ("datasets", "plots")


def __getattr__(name: str):
    """``fnann.datasets`` and ``fnann.plots``: the app's modules, imported on first use."""
    if name in _APP_MODULES:
        import importlib

        module = importlib.import_module(f"fnann.app.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'fnann' has no attribute {name!r}")
