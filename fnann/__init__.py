"""fnann: the textbook feed-forward neural network in pure JAX.

Layers Z = W A + b and A = sigma(Z), a hand-derived backward pass (the delta recursion)
verified against ``jax.grad`` and finite differences, optimizers as explicit pytree
transforms, and compiled training. The README states the mathematics and conventions.

Layout: the library (``activations``, ``losses``, ``mlp``, ``backprop``, ``gradcheck``,
``optim``, ``train``, ``predict``, ``checkpoint``) never imports the application
(``fnann.app``: the command line, datasets and plots). ``fnann.datasets`` and
``fnann.plots`` are the app's modules.

``import fnann`` is cheap: each public name is imported from its module on first use (PEP
562), so the command line answers ``--help`` or a usage error, and starts its helper
processes, before it pays for importing JAX. ``fnann.<name>`` and ``from fnann import
<name>`` work as with eager imports.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

_EXPORTS: dict[str, tuple[str, ...]] = {
    "fnann.activations": ("ACTIVATIONS", "Activation", "elementwise", "get_activation", "identity",
                          "relu", "sigmoid", "softmax", "tanh"),
    "fnann.backprop": ("backward", "backward_trace", "dense_backward", "loss_and_grad", "objective"),
    "fnann.gradcheck": ("GradCheckReport", "check_grads"),
    "fnann.losses": ("LOSSES", "Loss", "binary_cross_entropy", "cross_entropy", "get_loss", "mse"),
    "fnann.mlp": ("MLP", "Dense", "Trace", "dense_forward", "forward", "forward_trace", "init"),
    "fnann.optim": ("AdamState", "EmptyState", "MomentumState", "Optimizer", "RMSPropState", "SGDState",
                    "adam", "adamw", "add_decayed_weights", "apply_updates", "as_optimizer", "chain",
                    "clip_by_global_norm", "momentum", "rmsprop", "sgd", "weights_only"),
    "fnann.inference": ("accuracy", "compile_inference", "evaluate", "predict"),
    "fnann.train": ("TrainingDivergedError", "TrainState", "compile_fit", "fit", "train_step"),
    "fnann.caches": ("cache_info", "clear_caches"),
    "fnann.summaries": ("Summary", "summary"),
    "fnann.sweep": ("FitManyResult", "fit_many"),
    "fnann.checkpoint": ("Checkpoint", "load", "save"),
}
_MODULES = {"diagnostics": "fnann.diagnostics", "optim": "fnann.optim", "parallel": "fnann.parallel",
            "schedules": "fnann.optim.schedules", "datasets": "fnann.app.datasets",
            "plots": "fnann.app.plots"}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

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
    "compile_fit",
    "compile_inference",
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




def __getattr__(name: str):
    """Imports a public name's module (or a submodule) on first use and keeps it here."""
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"fnann.{name}") is not None:
        value = importlib.import_module(f"fnann.{name}")  # a submodule, e.g. fnann.train
    else:
        raise AttributeError(f"module 'fnann' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see: the eager imports
    from fnann import diagnostics, optim, parallel
    from fnann.activations import (ACTIVATIONS, Activation, elementwise, get_activation, identity, relu,
                                   sigmoid, softmax, tanh)
    from fnann.app import datasets, plots
    from fnann.backprop import backward, backward_trace, dense_backward, loss_and_grad, objective
    from fnann.caches import cache_info, clear_caches
    from fnann.checkpoint import Checkpoint, load, save
    from fnann.gradcheck import GradCheckReport, check_grads
    from fnann.inference import accuracy, compile_inference, evaluate, predict
    from fnann.losses import LOSSES, Loss, binary_cross_entropy, cross_entropy, get_loss, mse
    from fnann.mlp import MLP, Dense, Trace, dense_forward, forward, forward_trace, init
    from fnann.optim import (AdamState, EmptyState, MomentumState, Optimizer, RMSPropState, SGDState, adam,
                             adamw, add_decayed_weights, apply_updates, as_optimizer, chain,
                             clip_by_global_norm, momentum, rmsprop, sgd, schedules, weights_only)
    from fnann.summaries import Summary, summary
    from fnann.sweep import FitManyResult, fit_many
    from fnann.train import TrainingDivergedError, TrainState, compile_fit, fit, train_step
